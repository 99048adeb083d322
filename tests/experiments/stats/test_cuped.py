import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.stats.cuped import cuped_compare, pooled_covariate_mean, pooled_theta
from experiments.stats.sufficient import ArmStatistics, InvalidStatistics


def _three_arms(rng):
    """Pre-period spend x and post-period spend y; arm B shifts y by 2, arm C by 5."""
    rows = {}
    for arm, shift, n in (("A", 0.0, 400), ("B", 2.0, 350), ("C", 5.0, 420)):
        x = rng.gamma(2.0, 10.0, n) * (rng.random(n) < 0.6)
        y = 0.7 * x + rng.normal(0.0, 8.0, n) + shift
        rows[arm] = (x, y)
    return rows


def test_theta_is_the_ols_slope_of_y_on_x_with_arm_dummies():
    rows = _three_arms(np.random.default_rng(1))
    stats = [ArmStatistics.from_values(y, x) for x, y in rows.values()]

    x = np.concatenate([x for x, _ in rows.values()])
    y = np.concatenate([y for _, y in rows.values()])
    arm = np.concatenate([np.full(len(x_a), i) for i, (x_a, _) in enumerate(rows.values())])
    design = np.column_stack([arm == 0, arm == 1, arm == 2, x]).astype(float)
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    assert pooled_theta(stats) == pytest.approx(coefficients[3], rel=1e-9)
    assert pooled_covariate_mean(stats) == pytest.approx(x.mean(), rel=1e-12)


def test_the_adjusted_comparison_is_welch_on_y_minus_theta_x():
    rows = _three_arms(np.random.default_rng(2))
    stats = {arm: ArmStatistics.from_values(y, x) for arm, (x, y) in rows.items()}
    theta = pooled_theta(list(stats.values()))
    result = cuped_compare(
        stats["A"], stats["C"], theta, pooled_covariate_mean(list(stats.values()))
    )

    (x_c, y_c), (x_t, y_t) = rows["A"], rows["C"]
    reference = scipy_stats.ttest_ind(y_t - theta * x_t, y_c - theta * x_c, equal_var=False)
    assert result.effect.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.effect.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.effect.df == pytest.approx(reference.df, rel=1e-9)
    expected_effect = (y_t.mean() - y_c.mean()) - theta * (x_t.mean() - x_c.mean())
    assert result.effect.absolute_effect == pytest.approx(expected_effect, rel=1e-9)


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_cuped_removes_about_rho_squared_of_the_variance(rho):
    rng = np.random.default_rng(int(rho * 100))
    n = 20_000
    arms = []
    for shift in (0.0, 0.1):
        x = rng.standard_normal(n)
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n) + shift
        arms.append(ArmStatistics.from_values(y, x))
    result = cuped_compare(arms[0], arms[1], pooled_theta(arms), pooled_covariate_mean(arms))
    assert result.theta == pytest.approx(rho, abs=0.01)
    assert result.variance_reduction == pytest.approx(rho**2, abs=0.02)


def test_cuped_aa_tests_reject_five_percent_of_the_time():
    rng = np.random.default_rng(31)
    experiments, n, rho = 2000, 500, 0.7

    def arm():
        x = rng.standard_normal((experiments, n))
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((experiments, n))
        return ArmStatistics(
            n=np.full(experiments, float(n)),
            sum_y=y.sum(axis=1),
            sum_y2=(y**2).sum(axis=1),
            sum_x=x.sum(axis=1),
            sum_x2=(x**2).sum(axis=1),
            sum_xy=(x * y).sum(axis=1),
        )

    control, treatment = arm(), arm()
    result = cuped_compare(control, treatment, pooled_theta([control, treatment]), 0.0)
    assert 0.04 <= np.mean(result.effect.p_value < 0.05) <= 0.06
    assert np.median(result.variance_reduction) == pytest.approx(rho**2, abs=0.02)


def test_a_constant_covariate_leaves_the_estimate_unadjusted():
    y = np.array([1.0, 4.0, 2.0, 8.0])
    stats = [
        ArmStatistics.from_values(y, np.zeros(4)),
        ArmStatistics.from_values(y + 1, np.zeros(4)),
    ]
    assert pooled_theta(stats) == 0.0
    result = cuped_compare(stats[0], stats[1], 0.0, 0.0)
    assert result.variance_reduction == pytest.approx(0.0, abs=1e-12)
    assert result.effect.absolute_effect == pytest.approx(1.0)


def test_cuped_needs_the_covariate_for_every_arm():
    with pytest.raises(InvalidStatistics, match="every arm"):
        pooled_theta([ArmStatistics(n=2, sum_y=1.0, sum_y2=1.0)])
