"""How every model in :mod:`models_dl` is written to disk and read back.

A model is a folder with ``config.json`` (everything needed to rebuild it:
class, hyperparameters, preprocessing, calibration) and ``weights.pt``, a
plain state dict of tensors. Reading uses ``torch.load(weights_only=True)``:
a model file can never run code when it is opened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

__all__ = ["FORMAT_VERSION", "read_artifact", "write_artifact"]

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"


def write_artifact(path: str | Path, config: dict[str, Any], state: dict[str, torch.Tensor]) -> Path:
    """Write ``config`` (plus the format version) and the state dict into folder ``path``."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, "torch_version": torch.__version__, **config}
    (folder / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))
    torch.save({k: v.detach().cpu() for k, v in state.items()}, folder / WEIGHTS_FILE)
    return folder


def read_artifact(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a folder written by :func:`write_artifact`; tensors land on the CPU."""
    folder = Path(path)
    config = json.loads((folder / CONFIG_FILE).read_text())
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported model format {config.get('format_version')!r} in {folder}")
    state = torch.load(folder / WEIGHTS_FILE, weights_only=True, map_location="cpu")
    return config, state
