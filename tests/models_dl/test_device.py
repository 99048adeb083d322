"""Device choice: CUDA when present, ``device="cpu"`` forces the CPU.

The CI machine has no GPU, so ``torch.cuda.is_available`` is monkeypatched;
the fits below would fail if anything tried to use the (absent) GPU anyway.
"""

import numpy as np
import pytest
import torch

from models_dl import load_estimator, make_estimator
from models_dl.estimators import base
from models_dl.response import PropensityToBuyClassifier
from models_dl.training import resolve_device

from .conftest import FAST, linear_effect_problem


@pytest.fixture
def cuda_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.fixture
def cuda_absent(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_picks_cuda_when_it_is_available(cuda_present):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device(None) == torch.device("cuda")


def test_auto_falls_back_to_the_cpu(cuda_absent):
    assert resolve_device("auto") == torch.device("cpu")


def test_an_explicit_device_wins_over_auto_detection(cuda_present):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_device_cpu_keeps_the_fit_on_the_cpu_when_cuda_is_present(cuda_present, tmp_path):
    x, t, y, _ = linear_effect_problem(n=200)
    est = make_estimator("cfrnet", random_state=0, device="cpu", **FAST).fit(x, t, y)
    assert est.device_ == torch.device("cpu")
    assert {p.device.type for p in est.networks_.parameters()} == {"cpu"}
    assert est.predict(x[:5]).shape == (5,)
    loaded = load_estimator(est.save(tmp_path / "m"), device="cpu")
    assert {p.device.type for p in loaded.networks_.parameters()} == {"cpu"}


def test_the_response_model_honours_device_cpu(cuda_present):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + rng.normal(size=200) > 0).astype(float)
    model = PropensityToBuyClassifier(random_state=0, device="cpu", max_epochs=3, n_threads=1)
    model.fit(x, y)
    assert model.device_ == torch.device("cpu")
    assert {p.device.type for p in model.network_.parameters()} == {"cpu"}


def test_fit_sends_the_networks_and_every_batch_to_the_resolved_device(monkeypatch):
    """The estimator asks :func:`resolve_device` once and uses its answer for
    the networks and for the training and validation tensors. The answer is
    the CPU here (no GPU to move to), but it is recorded as the choice."""
    asked, moved_to = [], []
    real_subset, real_together = base.subset_to_device, base.train_members

    def fake_resolve(device):
        asked.append(device)
        return torch.device("cpu")

    def spy_subset(tensors, index, device):
        moved_to.append(device)
        return real_subset(tensors, index, device)

    def spy_together(networks, loss, data, *args, **kwargs):
        moved_to.extend({tensor.device for tensor in data.values()})
        moved_to.extend({p.device for n in networks for p in n.parameters()})
        return real_together(networks, loss, data, *args, **kwargs)

    monkeypatch.setattr(base, "resolve_device", fake_resolve)
    monkeypatch.setattr(base, "subset_to_device", spy_subset)
    monkeypatch.setattr(base, "train_members", spy_together)
    x, t, y, _ = linear_effect_problem(n=200)
    est = make_estimator("tarnet", random_state=0, n_ensemble=2, **FAST).fit(x, t, y)
    assert asked == ["auto"]
    # members trained together: the data and both networks, once each
    assert moved_to == [est.device_] * 2
    moved_to.clear()
    est = make_estimator("descn", random_state=0, n_ensemble=2, **FAST).fit(x, t, y)
    # members trained in turn: train and validation split of each of the 2
    assert moved_to == [est.device_] * 4
