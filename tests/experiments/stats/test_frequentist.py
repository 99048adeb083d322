import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats import proportion as sm_proportion

from experiments.stats.arm_estimates import ArmEstimate, mean_estimate, proportion_estimate
from experiments.stats.frequentist import compare_arms
from experiments.stats.sufficient import ArmStatistics

from .simulation import zero_inflated_mean, zero_inflated_revenue

RNG = np.random.default_rng(20240601)
CONTROL_ROWS = RNG.gamma(0.8, 20.0, 300) * (RNG.random(300) < 0.35)
TREATMENT_ROWS = RNG.gamma(0.8, 26.0, 260) * (RNG.random(260) < 0.40)


def _compare_rows(control_rows, treatment_rows, alpha=0.05):
    return compare_arms(
        mean_estimate(ArmStatistics.from_values(control_rows)),
        mean_estimate(ArmStatistics.from_values(treatment_rows)),
        alpha,
    )


def test_the_mean_comparison_is_scipys_welch_t_test():
    effect = _compare_rows(CONTROL_ROWS, TREATMENT_ROWS)
    reference = scipy_stats.ttest_ind(TREATMENT_ROWS, CONTROL_ROWS, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert effect.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert effect.df == pytest.approx(reference.df, rel=1e-9)
    assert effect.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert effect.absolute_ci_low == pytest.approx(interval.low, rel=1e-9)
    assert effect.absolute_ci_high == pytest.approx(interval.high, rel=1e-9)


def test_the_interval_level_follows_alpha():
    effect = _compare_rows(CONTROL_ROWS, TREATMENT_ROWS, alpha=0.10)
    interval = scipy_stats.ttest_ind(
        TREATMENT_ROWS, CONTROL_ROWS, equal_var=False
    ).confidence_interval(0.90)
    assert effect.absolute_ci_low == pytest.approx(interval.low, rel=1e-9)
    assert effect.absolute_ci_high == pytest.approx(interval.high, rel=1e-9)


def test_the_proportion_comparison_is_statsmodels_wald_test():
    control = proportion_estimate(ArmStatistics(n=4000, sum_y=412.0, sum_y2=412.0))
    treatment = proportion_estimate(ArmStatistics(n=3900, sum_y=455.0, sum_y2=455.0))
    effect = compare_arms(control, treatment)
    test = sm_proportion.test_proportions_2indep(
        455, 3900, 412, 4000, method="wald", compare="diff"
    )
    low, high = sm_proportion.confint_proportions_2indep(
        455, 3900, 412, 4000, method="wald", compare="diff"
    )
    assert effect.absolute_effect == pytest.approx(455 / 3900 - 412 / 4000, rel=1e-12)
    assert effect.statistic == pytest.approx(test.statistic, rel=1e-9)
    assert effect.p_value == pytest.approx(test.pvalue, rel=1e-9)
    assert effect.absolute_ci_low == pytest.approx(low, rel=1e-9)
    assert effect.absolute_ci_high == pytest.approx(high, rel=1e-9)
    assert effect.df == np.inf


def test_the_relative_interval_is_the_delta_method_by_hand():
    effect = _compare_rows(CONTROL_ROWS, TREATMENT_ROWS)
    m_c, m_t = CONTROL_ROWS.mean(), TREATMENT_ROWS.mean()
    v_c = CONTROL_ROWS.var(ddof=1) / CONTROL_ROWS.size
    v_t = TREATMENT_ROWS.var(ddof=1) / TREATMENT_ROWS.size
    lift = m_t / m_c - 1
    se = np.sqrt(v_t / m_c**2 + m_t**2 * v_c / m_c**4)
    welch_df = (v_c + v_t) ** 2 / (
        v_c**2 / (CONTROL_ROWS.size - 1) + v_t**2 / (TREATMENT_ROWS.size - 1)
    )
    critical = scipy_stats.t.ppf(0.975, welch_df)
    assert effect.relative_effect == pytest.approx(lift, rel=1e-12)
    assert effect.relative_se == pytest.approx(se, rel=1e-12)
    assert effect.relative_ci_low == pytest.approx(lift - critical * se, rel=1e-9)
    assert effect.relative_ci_high == pytest.approx(lift + critical * se, rel=1e-9)


def test_identical_constant_arms_show_no_difference():
    arm = ArmEstimate(n=50, mean=3.0, variance=0.0, df=49)
    effect = compare_arms(arm, arm)
    assert effect.p_value == 1.0
    assert effect.absolute_ci_low == effect.absolute_ci_high == 0.0


def test_a_zero_control_mean_leaves_the_lift_undefined():
    control = ArmEstimate(n=50, mean=0.0, variance=0.0, df=49)
    treatment = ArmEstimate(n=50, mean=1.0, variance=4.0, df=49)
    effect = compare_arms(control, treatment)
    assert np.isnan(effect.relative_effect)
    assert effect.absolute_effect == 1.0


def test_a_single_customer_arm_gives_no_inference():
    effect = _compare_rows(np.array([3.0]), TREATMENT_ROWS)
    assert np.isnan(effect.p_value)


# Simulations: 2,000 experiments each, 1,000 customers per arm, revenue that
# is 0 for 70% of customers and lognormal otherwise. A rate estimated from
# 2,000 runs has a standard error of 0.5 percentage points at 5%.
EXPERIMENTS = 2000


def test_aa_tests_on_zero_inflated_revenue_reject_five_percent_of_the_time():
    rng = np.random.default_rng(7)
    control = zero_inflated_revenue(rng, EXPERIMENTS, 1000, 0.3, 2.0, 1.0)
    treatment = zero_inflated_revenue(rng, EXPERIMENTS, 1000, 0.3, 2.0, 1.0)
    effect = compare_arms(mean_estimate(control), mean_estimate(treatment))
    false_positive_rate = np.mean(effect.p_value < 0.05)
    assert 0.04 <= false_positive_rate <= 0.06


def test_aa_tests_on_conversions_reject_five_percent_of_the_time():
    rng = np.random.default_rng(8)
    conversions = rng.binomial(1000, 0.08, (2, EXPERIMENTS)).astype(float)
    control, treatment = (
        proportion_estimate(ArmStatistics(n=np.full(EXPERIMENTS, 1000.0), sum_y=k, sum_y2=k))
        for k in conversions
    )
    false_positive_rate = np.mean(compare_arms(control, treatment).p_value < 0.05)
    assert 0.04 <= false_positive_rate <= 0.06


def test_intervals_cover_the_true_revenue_difference_95_percent_of_the_time():
    rng = np.random.default_rng(9)
    control = zero_inflated_revenue(rng, EXPERIMENTS, 1000, 0.30, 2.0, 1.0)
    treatment = zero_inflated_revenue(rng, EXPERIMENTS, 1000, 0.33, 2.0, 1.0)
    true_control, true_treatment = (
        zero_inflated_mean(0.30, 2.0, 1.0),
        zero_inflated_mean(0.33, 2.0, 1.0),
    )
    effect = compare_arms(mean_estimate(control), mean_estimate(treatment))

    true_difference = true_treatment - true_control
    absolute = np.mean(
        (effect.absolute_ci_low <= true_difference) & (true_difference <= effect.absolute_ci_high)
    )
    assert 0.94 <= absolute <= 0.96
    # The lift interval is a first-order (delta method) approximation: with a
    # per-customer coefficient of variation near 3 and 1,000 customers per arm
    # it covers about 94.4% (mean over 20 seeds), so only a floor is asserted.
    true_lift = true_treatment / true_control - 1
    relative = np.mean(
        (effect.relative_ci_low <= true_lift) & (true_lift <= effect.relative_ci_high)
    )
    assert relative >= 0.93


def test_lift_intervals_cover_the_true_lift_95_percent_of_the_time():
    rng = np.random.default_rng(10)
    n = np.full(EXPERIMENTS, 5000.0)
    control_conversions = rng.binomial(5000, 0.080, EXPERIMENTS).astype(float)
    treatment_conversions = rng.binomial(5000, 0.088, EXPERIMENTS).astype(float)
    effect = compare_arms(
        proportion_estimate(
            ArmStatistics(n=n, sum_y=control_conversions, sum_y2=control_conversions)
        ),
        proportion_estimate(
            ArmStatistics(n=n, sum_y=treatment_conversions, sum_y2=treatment_conversions)
        ),
    )
    true_lift = 0.088 / 0.080 - 1
    relative = np.mean(
        (effect.relative_ci_low <= true_lift) & (true_lift <= effect.relative_ci_high)
    )
    assert 0.94 <= relative <= 0.96
