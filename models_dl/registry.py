"""Estimators by name: what the training pipeline and the benchmark call.

``"default"`` is the estimator the platform trains first. It was chosen by
``benchmarks/uplift_quality.py`` (see that script's docstring for the
figures): the settings below are what :func:`make_estimator` applies before
the caller's own keyword arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .estimators import (
    CFRNet,
    DeepUpliftEstimator,
    DragonNet,
    ExplicitUpliftEstimator,
    NeuralSLearner,
    NeuralTLearner,
    TARNet,
)

__all__ = [
    "DEFAULT_ESTIMATOR",
    "available_estimators",
    "estimator_class",
    "load_estimator",
    "make_estimator",
]

_ESTIMATORS: dict[str, type[DeepUpliftEstimator]] = {
    cls.estimator_name: cls
    for cls in (TARNet, CFRNet, DragonNet, ExplicitUpliftEstimator, NeuralSLearner, NeuralTLearner)
}

#: (registered name, preset hyperparameters) of the estimator behind ``"default"``.
DEFAULT_ESTIMATOR: tuple[str, dict[str, Any]] = (
    "cfrnet",
    {
        "representation_layers": (128, 128, 128),
        "head_layers": (64, 64),
        "alpha": 0.3,
        "ipm_when": "imbalanced",
        "n_ensemble": 5,
        "ensemble_row_budget": 400_000,
        "max_rows_processed": 1_600_000,
    },
)


def available_estimators() -> list[str]:
    """Names accepted by :func:`make_estimator`, ``"default"`` first."""
    return ["default", *sorted(_ESTIMATORS)]


def estimator_class(name: str) -> type[DeepUpliftEstimator]:
    """The class registered under ``name`` (``"default"`` resolves to its family)."""
    if name == "default":
        name = DEFAULT_ESTIMATOR[0]
    try:
        return _ESTIMATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown estimator {name!r}; available: {available_estimators()}"
        ) from None


def make_estimator(name: str = "default", **params: Any) -> DeepUpliftEstimator:
    """Build an unfitted estimator; ``params`` override the preset hyperparameters."""
    if name == "default":
        family, preset = DEFAULT_ESTIMATOR
        return estimator_class(family)(**{**preset, **params})
    return estimator_class(name)(**params)


def load_estimator(path: str | Path, device: str = "auto") -> DeepUpliftEstimator:
    """Load any estimator written by ``estimator.save(path)``."""
    return DeepUpliftEstimator.load(path, device=device)
