import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power

from experiments.stats.arm_estimates import mean_estimate
from experiments.stats.frequentist import compare_arms
from experiments.stats.power import minimum_detectable_effect, power_two_sample, sample_size_per_arm

from .simulation import normal_arm


@pytest.mark.parametrize("ratio", [1.0, 0.5, 3.0])
def test_sample_size_matches_statsmodels_normal_ind_power(ratio):
    sd, mde = 12.0, 1.5
    n = sample_size_per_arm(mde, sd**2, alpha=0.05, power=0.8, ratio=ratio)
    reference = NormalIndPower().solve_power(
        effect_size=mde / sd, alpha=0.05, power=0.8, ratio=ratio
    )
    # statsmodels stops its own root finder a little early (within 1e-9 here),
    assert n == pytest.approx(reference, rel=1e-9)
    # while our n, plugged into statsmodels' power function, gives the target exactly.
    achieved = NormalIndPower().power(effect_size=mde / sd, nobs1=n, alpha=0.05, ratio=ratio)
    assert achieved == pytest.approx(0.8, abs=1e-14)


def test_sample_size_matches_zt_ind_solve_power_at_other_settings():
    n = sample_size_per_arm(0.02, 0.1 * 0.9, alpha=0.01, power=0.9)
    reference = zt_ind_solve_power(effect_size=0.02 / np.sqrt(0.09), alpha=0.01, power=0.9)
    assert n == pytest.approx(reference, rel=1e-9)


def test_sample_size_is_close_to_the_textbook_formula():
    # (1.96 + 0.8416)^2 * 2 * 1 / 0.1^2 = 1569.8
    assert sample_size_per_arm(0.1, 1.0) == pytest.approx(1569.8, abs=0.1)


def test_the_mde_at_the_planned_sample_is_the_planned_mde():
    n = sample_size_per_arm(0.25, 9.0, power=0.85)
    assert minimum_detectable_effect(n, n, 9.0, power=0.85) == pytest.approx(0.25, rel=1e-9)


def test_the_mde_shrinks_with_the_square_root_of_traffic():
    small = minimum_detectable_effect(1000, 1000, 4.0)
    large = minimum_detectable_effect(4000, 4000, 4.0)
    assert small / large == pytest.approx(2.0, rel=1e-6)


def test_an_arm_without_customers_cannot_detect_anything():
    assert minimum_detectable_effect(0, 1000, 4.0) == np.inf


def test_simulated_experiments_at_the_planned_size_have_the_planned_power():
    rng = np.random.default_rng(23)
    n = int(np.ceil(sample_size_per_arm(0.3, 9.0, power=0.8)))  # 1,413 per arm
    control = normal_arm(rng, n, 20.0, 3.0, 4000)
    treatment = normal_arm(rng, n, 20.3, 3.0, 4000)
    rejected = compare_arms(mean_estimate(control), mean_estimate(treatment)).p_value < 0.05
    # sd of the estimated power over 4,000 runs: 0.006.
    assert np.mean(rejected) == pytest.approx(0.8, abs=0.02)
    assert power_two_sample(0.3, n, n, 9.0) == pytest.approx(0.8, abs=0.001)


def test_it_rejects_a_power_below_alpha():
    with pytest.raises(ValueError, match="power"):
        sample_size_per_arm(0.1, 1.0, alpha=0.05, power=0.04)
