import numpy as np
import pytest
from scipy import optimize
from scipy import stats as scipy_stats

from experiments.stats.arm_estimates import ArmEstimate, mean_estimate, proportion_estimate
from experiments.stats.frequentist import compare_arms
from experiments.stats.sequential import (
    always_valid_p_value,
    approximate_optimal_rho,
    boundary_multiplier,
    confidence_sequence,
    optimal_rho,
)

from .simulation import cumulative_binary_arm, cumulative_normal_arm


def test_optimal_rho_minimises_the_boundary_at_the_planned_sample_size():
    planned = 20_000
    rho = optimal_rho(planned, alpha=0.05)
    numerical = optimize.minimize_scalar(
        lambda r: boundary_multiplier(planned, r, 0.05),
        bounds=(1e-5, 1.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert rho == pytest.approx(numerical.x, rel=1e-4)
    # The paper's closed-form approximation lands within 2%.
    assert approximate_optimal_rho(planned, 0.05) == pytest.approx(rho, rel=0.02)


def test_the_boundary_is_wider_than_the_fixed_horizon_interval_everywhere():
    rho = optimal_rho(20_000)
    t = np.array([100, 1_000, 20_000, 1_000_000])
    multiplier = boundary_multiplier(t, rho)
    assert np.all(multiplier > scipy_stats.norm.ppf(0.975))
    # At the optimum M^2 = u + 1 = -W_{-1}(-alpha^2 / e) = 9.21: 3.035 instead of 1.96.
    assert multiplier[2] == pytest.approx(3.0351, abs=1e-4)
    assert multiplier[2] < min(multiplier[1], multiplier[3])


def test_the_p_value_is_below_alpha_exactly_when_the_sequence_excludes_zero():
    rho = optimal_rho(10_000)
    control = ArmEstimate(n=4000, mean=0.0, variance=1.0, df=3999)
    effects = np.linspace(0.0, 0.2, 401)
    treatment = ArmEstimate(n=4000, mean=effects, variance=1.0, df=3999)
    result = confidence_sequence(control, treatment, rho=rho)
    excludes_zero = result.ci_low > 0
    assert np.array_equal(result.p_value <= 0.05, excludes_zero)
    assert excludes_zero.any() and not excludes_zero.all()


def test_the_p_value_never_rises_when_given_the_previous_look():
    rho = optimal_rho(10_000)
    control = ArmEstimate(n=5000, mean=0.0, variance=1.0, df=4999)
    treatment = ArmEstimate(n=5000, mean=0.01, variance=1.0, df=4999)
    fresh = confidence_sequence(control, treatment, rho=rho)
    carried = confidence_sequence(control, treatment, rho=rho, previous_p_value=0.2)
    assert fresh.p_value == 1.0
    assert carried.p_value == 0.2


def test_a_huge_effect_gives_a_p_value_of_zero_without_overflow():
    assert always_valid_p_value(z=1e6, t=1e6, rho=0.01) == 0.0


# Simulations: 2,000 A/A experiments, a look after every 1,000 customers
# (500 per arm), 20 looks. Peeking at a fixed-horizon test at every look
# rejects far more often than 5%; the confidence sequence does not.
EXPERIMENTS, BATCH, LOOKS = 2000, 500, 20
PLANNED = 2 * BATCH * LOOKS


def test_peeking_inflates_the_fixed_horizon_test_but_not_the_sequential_one():
    rng = np.random.default_rng(17)
    control = mean_estimate(cumulative_normal_arm(rng, BATCH, LOOKS, 10.0, 3.0, EXPERIMENTS))
    treatment = mean_estimate(cumulative_normal_arm(rng, BATCH, LOOKS, 10.0, 3.0, EXPERIMENTS))

    fixed = compare_arms(control, treatment)
    sequential = confidence_sequence(control, treatment, rho=optimal_rho(PLANNED))
    peeking_rate = np.mean(np.any(fixed.p_value < 0.05, axis=1))
    sequential_rate = np.mean(np.any(sequential.p_value <= 0.05, axis=1))
    final_look_rate = np.mean(fixed.p_value[:, -1] < 0.05)

    assert sequential_rate <= 0.05
    assert peeking_rate >= 0.15  # about 0.25 for 20 looks
    assert 0.04 <= final_look_rate <= 0.06  # one look at the horizon is fine


def test_peeking_at_conversions_keeps_the_sequential_false_positive_rate():
    rng = np.random.default_rng(18)
    control = proportion_estimate(cumulative_binary_arm(rng, BATCH, LOOKS, 0.05, EXPERIMENTS))
    treatment = proportion_estimate(cumulative_binary_arm(rng, BATCH, LOOKS, 0.05, EXPERIMENTS))
    sequential = confidence_sequence(control, treatment, rho=optimal_rho(PLANNED))
    peeking = compare_arms(control, treatment)
    assert np.mean(np.any(sequential.p_value <= 0.05, axis=1)) <= 0.05
    assert np.mean(np.any(peeking.p_value < 0.05, axis=1)) >= 0.15


def test_the_sequence_covers_a_real_effect_at_every_look_at_once():
    rng = np.random.default_rng(19)
    control = mean_estimate(cumulative_normal_arm(rng, BATCH, LOOKS, 10.0, 3.0, EXPERIMENTS))
    treatment = mean_estimate(cumulative_normal_arm(rng, BATCH, LOOKS, 10.3, 3.0, EXPERIMENTS))
    sequential = confidence_sequence(control, treatment, rho=optimal_rho(PLANNED))
    covered_throughout = np.all((sequential.ci_low <= 0.3) & (0.3 <= sequential.ci_high), axis=1)
    assert np.mean(covered_throughout) >= 0.95
    # ...and with a 0.1 sd effect it usually finds it before the end.
    assert np.mean(np.any(sequential.ci_low > 0, axis=1)) >= 0.5
