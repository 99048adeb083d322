import numpy as np
import pytest
import torch
from torch import nn

from models_dl.training import (
    EarlyStopping,
    TrainingConfig,
    resolve_batch_size,
    resolve_learning_rate,
    seeded,
    torch_threads,
    train_network,
    validation_split,
)


def test_validation_split_is_stratified_and_disjoint():
    strata = np.r_[np.zeros(90, int), np.ones(10, int)]
    train, val = validation_split(100, 0.2, np.random.default_rng(0), strata)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 100
    assert (strata[val] == 1).sum() == 2 and (strata[val] == 0).sum() == 18


def test_validation_split_is_capped():
    _, val = validation_split(1_000_000, 0.2, np.random.default_rng(0), max_rows=1000)
    assert len(val) == 1000


def test_batch_size_grows_with_rows():
    assert resolve_batch_size(400) == 64
    assert resolve_batch_size(21_000) == 256
    assert resolve_batch_size(800_000) == 2048


def test_learning_rate_shrinks_with_small_batches_only():
    assert resolve_learning_rate(64) == pytest.approx(5e-4)
    assert resolve_learning_rate(32, base=2e-3) == pytest.approx(5e-4)
    assert resolve_learning_rate(128) == pytest.approx(1e-3)
    assert resolve_learning_rate(2048) == pytest.approx(1e-3)


def test_train_network_resolves_a_missing_learning_rate(monkeypatch):
    used = []
    real_adamw = torch.optim.AdamW

    def spy(params, lr, weight_decay):
        used.append(lr)
        return real_adamw(params, lr=lr, weight_decay=weight_decay)

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    x = torch.randn(300, 1)
    data = {"x": x, "y": 2 * x[:, 0], "w": torch.ones(300)}

    def loss(module, batch, penalise):
        value = ((module(batch["x"])[:, 0] - batch["y"]) ** 2).mean()
        return value, value

    config = TrainingConfig(max_epochs=1, batch_size=64, learning_rate=None)
    train_network(nn.Linear(1, 1), loss, data, None, config)
    train_network(nn.Linear(1, 1), loss, data, None, TrainingConfig(max_epochs=1, batch_size=64))
    assert used == [pytest.approx(5e-4), pytest.approx(1e-3)]


def test_early_stopping_waits_for_patience_and_keeps_best_weights():
    module = nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2)
    assert not stopper.update(1.0, 1, module)
    best = {k: v.clone() for k, v in module.state_dict().items()}
    with torch.no_grad():
        module.weight.add_(1.0)
    assert not stopper.update(1.5, 2, module)
    assert stopper.update(1.2, 3, module)
    assert stopper.best_epoch == 1
    torch.testing.assert_close(stopper.best_state["weight"], best["weight"])


def test_train_network_fits_a_line_and_restores_the_best_epoch():
    with seeded(0):
        x = torch.randn(512, 1)
        y = 3 * x[:, 0] + 1
        module = nn.Linear(1, 1)

        def loss(net, batch, penalise):
            value = ((net(batch["x"])[:, 0] - batch["y"]) ** 2 * batch["w"]).mean()
            return value, value

        data = {"x": x, "y": y, "w": torch.ones(512)}
        history = train_network(
            module, loss, data, data, TrainingConfig(max_epochs=200, learning_rate=0.05, patience=5)
        )
    assert min(history["val_loss"]) < 1e-3
    assert abs(module.weight.item() - 3) < 0.05


def test_seeded_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    with seeded(7):
        torch.rand(5)
    assert torch.equal(torch.rand(1), expected)


def test_torch_threads_restores_the_setting():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
