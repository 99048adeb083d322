import numpy as np
import pytest
from scipy import integrate
from scipy import stats as scipy_stats

from experiments.stats.arm_estimates import ArmEstimate
from experiments.stats.bayesian import (
    beta_binomial_posterior,
    chance_to_be_best,
    normal_posterior,
    normal_posterior_draws,
)
from experiments.stats.frequentist import compare_arms
from experiments.stats.sufficient import ArmStatistics

CONTROL = ArmEstimate(n=2000, mean=10.0, variance=36.0, df=1999)
TREATMENT = ArmEstimate(n=2100, mean=10.4, variance=40.0, df=2099)


def test_normal_losses_match_numerical_integration():
    result = normal_posterior(CONTROL, TREATMENT)
    mean, sd = 0.4, np.sqrt(36.0 / 2000 + 40.0 / 2100)
    density = scipy_stats.norm(mean, sd).pdf
    loss_treatment, _ = integrate.quad(lambda d: -d * density(d), -np.inf, 0.0, epsabs=1e-13)
    loss_control, _ = integrate.quad(lambda d: d * density(d), 0.0, np.inf, epsabs=1e-13)
    assert result.posterior_sd == pytest.approx(sd, rel=1e-12)
    assert result.expected_loss_choose_treatment == pytest.approx(
        loss_treatment, rel=1e-9, abs=1e-12
    )
    assert result.expected_loss_choose_control == pytest.approx(loss_control, rel=1e-9)
    # E[max(0, D)] - E[max(0, -D)] = E[D].
    assert (
        result.expected_loss_choose_control - result.expected_loss_choose_treatment
        == pytest.approx(0.4)
    )


def test_with_a_flat_prior_the_chance_to_beat_control_is_one_minus_the_one_sided_p_value():
    result = normal_posterior(CONTROL, TREATMENT)
    z = 0.4 / result.posterior_sd
    assert result.chance_to_beat_control == pytest.approx(scipy_stats.norm.cdf(z), rel=1e-12)
    # The credible interval is then the z interval.
    z_interval = compare_arms(
        ArmEstimate(CONTROL.n, CONTROL.mean, CONTROL.variance, np.inf),
        ArmEstimate(TREATMENT.n, TREATMENT.mean, TREATMENT.variance, np.inf),
    )
    assert result.credible_low == pytest.approx(z_interval.absolute_ci_low, rel=1e-12)


def test_when_lower_is_better_the_chance_and_losses_flip():
    up = normal_posterior(CONTROL, TREATMENT, increase_is_good=True)
    down = normal_posterior(CONTROL, TREATMENT, increase_is_good=False)
    assert down.chance_to_beat_control == pytest.approx(1 - up.chance_to_beat_control, rel=1e-12)
    assert down.expected_loss_choose_treatment == pytest.approx(
        up.expected_loss_choose_control, rel=1e-12
    )
    assert down.posterior_mean == up.posterior_mean  # the effect itself is not re-signed


def test_beta_binomial_chance_to_beat_control_matches_exact_integration():
    control = ArmStatistics(n=1000, sum_y=100.0, sum_y2=100.0)
    treatment = ArmStatistics(n=1000, sum_y=120.0, sum_y2=120.0)
    result = beta_binomial_posterior(control, treatment, draws=200_000, seed=42)

    post_c, post_t = scipy_stats.beta(101, 901), scipy_stats.beta(121, 881)
    exact, _ = integrate.quad(
        lambda p: post_c.pdf(p) * post_t.sf(p), 0.0, 1.0, epsabs=1e-12, limit=200
    )
    # E[max(0, p_c - p_t) | p_c = a] = a F_t(a) - E[p_t] F'_t(a), with F'_t the cdf of Beta(122, 881).
    shifted_t = scipy_stats.beta(122, 881)

    def conditional_loss(a):
        return a * post_t.cdf(a) - post_t.mean() * shifted_t.cdf(a)

    loss_treatment, _ = integrate.quad(
        lambda a: post_c.pdf(a) * conditional_loss(a), 0.0, 1.0, limit=200
    )
    # Monte Carlo error: sd of a proportion near 0.92 over 200,000 draws is 0.0006.
    assert result.chance_to_beat_control == pytest.approx(exact, abs=0.003)
    assert result.expected_loss_choose_treatment == pytest.approx(loss_treatment, rel=0.05)
    assert result.posterior_mean == pytest.approx(121 / 1002 - 101 / 1002, rel=1e-12)


def test_beta_binomial_is_reproducible_with_a_seed():
    control = ArmStatistics(n=500, sum_y=40.0, sum_y2=40.0)
    treatment = ArmStatistics(n=500, sum_y=47.0, sum_y2=47.0)
    first = beta_binomial_posterior(control, treatment, draws=10_000, seed=3)
    again = beta_binomial_posterior(control, treatment, draws=10_000, seed=3)
    other = beta_binomial_posterior(control, treatment, draws=10_000, seed=4)
    assert first == again
    assert first.chance_to_beat_control != other.chance_to_beat_control


def test_chance_to_be_best_splits_evenly_between_identical_arms():
    rng = np.random.default_rng(0)
    arms = [ArmEstimate(n=1000, mean=5.0, variance=4.0, df=999)] * 3
    shares = chance_to_be_best(normal_posterior_draws(arms, 90_000, rng))
    assert shares.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(shares, 1 / 3, atol=0.01)


def test_chance_to_be_best_follows_the_direction_of_the_metric():
    draws = np.array([[1.0, 2.0, 3.0], [1.0, 3.0, 2.0], [0.0, 2.0, 1.0]])
    np.testing.assert_allclose(chance_to_be_best(draws, increase_is_good=True), [0, 2 / 3, 1 / 3])
    np.testing.assert_allclose(chance_to_be_best(draws, increase_is_good=False), [1, 0, 0])
