import math

import pytest
import torch

from models_dl.losses import (
    expected_outcome,
    ipm_penalty,
    mmd2_linear,
    mmd2_rbf,
    sinkhorn_wasserstein,
    targeted_regularization_loss,
    ziln_negative_log_likelihood,
)


def test_wasserstein_is_near_the_shift_between_two_clouds():
    torch.manual_seed(0)
    a = torch.randn(300, 2)
    # W1 between a cloud and itself shifted by (3, 0) is 3; entropic smoothing adds a little
    assert sinkhorn_wasserstein(a, a + torch.tensor([3.0, 0.0]), lam=50, iterations=100) == (
        pytest.approx(3.0, rel=0.05)
    )
    assert sinkhorn_wasserstein(a, a.clone()) < sinkhorn_wasserstein(a, a + 1.0)


def test_mmd_is_zero_for_identical_samples_and_grows_with_distance():
    torch.manual_seed(0)
    a = torch.randn(100, 3)
    assert mmd2_rbf(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert mmd2_rbf(a, a + 0.5) < mmd2_rbf(a, a + 2.0)
    assert mmd2_linear(a, a + 1.0).item() == pytest.approx(3.0, rel=1e-5)


def test_ipm_penalty_averages_arms_and_skips_missing_ones():
    rep = torch.cat([torch.zeros(4, 2), torch.ones(4, 2), torch.full((1, 2), 5.0)])
    t = torch.tensor([0] * 4 + [1] * 4 + [2])
    # arm 2 has one row: skipped; arm 1 vs control under linear MMD: ||(1, 1)||^2 = 2
    assert ipm_penalty(rep, t, 3, "mmd_linear").item() == pytest.approx(2.0)


def test_targeted_regularisation_reduces_to_shi_et_al_for_one_arm():
    outcomes = torch.tensor([[[0.2], [1.0]], [[0.5], [0.7]]])  # (batch, arms, 1)
    g1 = torch.tensor([0.25, 0.6])
    logits = torch.stack([torch.zeros(2), torch.log(g1 / (1 - g1))], dim=1)
    eps = torch.tensor([0.3])
    t = torch.tensor([1, 0])
    y = torch.tensor([1.5, 0.1])
    loss = targeted_regularization_loss(outcomes, logits, eps, t, y, "continuous")
    # Q~ = Q(t, x) + eps * (t / g - (1 - t) / (1 - g))
    expected = torch.tensor([
        (1.5 - (1.0 + 0.3 / 0.25)) ** 2,
        (0.1 - (0.5 - 0.3 / 0.4)) ** 2,
    ])
    torch.testing.assert_close(loss, expected)


def test_ziln_likelihood_and_mean():
    out = torch.tensor([[0.0, 1.0, 0.0]])
    sigma = math.log1p(math.exp(0.0)) + 1e-3
    y = torch.tensor([math.e])
    # BCE(logit 0, 1) + log y + log sigma + log sqrt(2 pi) + (log y - mu)^2 / (2 sigma^2)
    expected = math.log(2) + 1.0 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    assert ziln_negative_log_likelihood(out, y).item() == pytest.approx(expected, rel=1e-5)
    assert ziln_negative_log_likelihood(out, torch.tensor([0.0])).item() == pytest.approx(math.log(2))
    assert expected_outcome(out, "zero_inflated").item() == pytest.approx(
        0.5 * math.exp(1.0 + sigma**2 / 2), rel=1e-5
    )
