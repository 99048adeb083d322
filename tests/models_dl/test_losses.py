import math

import pytest
import torch

from models_dl.losses import (
    cross_losses,
    entire_space_loss,
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


def test_entire_space_loss_is_propensity_times_response_against_arm_indicator_times_y():
    # continuous: pi = softmax(0, log 3) = (1/4, 3/4), mu = (2, 4)
    outcomes = torch.tensor([[[2.0], [4.0]]])
    logits = torch.tensor([[0.0, math.log(3.0)]])
    # a treated row with y = 5: arm 0 target 0, arm 1 target 5
    loss = entire_space_loss(outcomes, logits, torch.tensor([1]), torch.tensor([5.0]), "continuous")
    assert loss.item() == pytest.approx((0.25 * 2 - 0) ** 2 + (0.75 * 4 - 5) ** 2)
    # binary: probability pi_a * sigmoid(0) = pi_a / 2 against 1[t = a] y
    binary = entire_space_loss(torch.zeros(1, 2, 1), logits, torch.tensor([0]), torch.tensor([1.0]),
                               "binary")
    assert binary.item() == pytest.approx(-math.log(0.125) - math.log(1 - 0.375), rel=1e-5)


def test_cross_losses_shift_the_other_arms_head_by_the_pseudo_effect():
    outcomes = torch.tensor([[[1.0], [2.0], [3.0]], [[1.0], [2.0], [3.0]]])  # mu_0, mu_1, mu_2
    tau = torch.tensor([[[0.5], [1.0]], [[0.5], [1.0]]])  # tau'_1, tau'_2
    t, y = torch.tensor([2, 0]), torch.tensor([4.0, 1.0])
    treated, control = cross_losses(outcomes, tau, t, y, "continuous")
    # row 0 (arm 2): mu_0 + tau'_2 = 2 against 4; row 1 (control): mu_k - tau'_k = 1.5, 2 against 1
    assert treated.tolist() == pytest.approx([4.0, 0.0])
    assert control.tolist() == pytest.approx([0.0, (0.25 + 1.0) / 2])
