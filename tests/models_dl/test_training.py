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
    train_members,
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


def test_learning_rate_grows_with_large_batches_up_to_its_cap():
    assert resolve_learning_rate(64, max_factor=3) == pytest.approx(5e-4)
    assert resolve_learning_rate(256, max_factor=3) == pytest.approx(2e-3)
    assert resolve_learning_rate(2048, max_factor=3) == pytest.approx(3e-3)


def test_batch_size_follows_its_share_of_the_rows():
    assert resolve_batch_size(16_000, share=0.02) == 256
    assert resolve_batch_size(400, share=0.02) == 64
    assert resolve_batch_size(800_000, share=0.02) == 2048


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


def _line_problem(n=256, seed=0):
    with seeded(seed):
        x = torch.randn(n, 1)
    return {"x": x, "y": 3 * x[:, 0] + 1, "w": torch.ones(n)}


def _member_squared_error(output, batch, penalise):
    per_member = ((output.outcomes[..., 0] - batch["y"]) ** 2 * batch["w"]).sum(1) / batch["w"].sum(1)
    return per_member, per_member


class _LineNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        from models_dl.networks import NetworkOutput

        return NetworkOutput(self.linear(x))


def test_members_trained_together_learn_what_each_learns_alone():
    # full batches: the order of rows cannot matter, so a member's weights may
    # depend only on its own data and initialisation, not on its neighbour
    data = _line_problem()
    rows = np.arange(256)
    config = TrainingConfig(max_epochs=30, batch_size=256, learning_rate=0.05, patience=100,
                            gradient_clip=0.5)
    with seeded(1):
        pair = [_LineNet(), _LineNet()]
    with seeded(1):
        alone = [_LineNet()]
    pair[1].linear.weight.data.fill_(50.0)  # a neighbour with huge gradients, clipped on its own
    train_members(pair, _member_squared_error, data, [rows, rows], [rows, rows], config)
    train_members(alone, _member_squared_error, data, [rows], [rows], config)
    torch.testing.assert_close(pair[0].linear.weight, alone[0].linear.weight)
    torch.testing.assert_close(pair[0].linear.bias, alone[0].linear.bias)


def test_members_stop_on_their_own_and_restore_their_best_epoch():
    data = _line_problem(512)
    rng = np.random.default_rng(0)
    splits = [validation_split(512, 0.25, rng) for _ in range(3)]
    with seeded(0):
        members = [_LineNet() for _ in range(3)]
    histories = train_members(
        members, _member_squared_error, data, [s[0] for s in splits], [s[1] for s in splits],
        TrainingConfig(max_epochs=300, learning_rate=0.05, batch_size=64, patience=5),
    )
    for member, history, (_, val) in zip(members, histories, splits, strict=True):
        assert abs(member.linear.weight.item() - 3) < 0.05 and abs(member.linear.bias.item() - 1) < 0.05
        with torch.no_grad():
            restored = ((member(data["x"][val]).outcomes[:, 0] - data["y"][val]) ** 2).mean().item()
        assert restored == pytest.approx(min(history["val_loss"]), rel=1e-4, abs=1e-7)
