import numpy as np
import pytest

from experiments.stats.arm_estimates import (
    arm_estimate,
    mean_estimate,
    proportion_estimate,
    ratio_estimate,
)
from experiments.stats.sufficient import ArmStatistics, InvalidStatistics, RatioArmStatistics


def test_a_proportion_has_bernoulli_variance_and_a_normal_reference():
    estimate = proportion_estimate(ArmStatistics(n=200, sum_y=30.0, sum_y2=30.0))
    assert estimate.mean == pytest.approx(0.15)
    assert estimate.variance == pytest.approx(0.15 * 0.85)
    assert estimate.variance_of_mean == pytest.approx(0.15 * 0.85 / 200)
    assert estimate.df == np.inf


def test_a_proportion_rejects_non_binary_sums():
    with pytest.raises(InvalidStatistics):
        proportion_estimate(ArmStatistics(n=10, sum_y=4.0, sum_y2=9.0))


def test_a_mean_uses_the_sample_variance_with_n_minus_one_degrees_of_freedom():
    rows = np.array([0.0, 0.0, 10.0, 25.5, 0.0, 3.0])
    estimate = mean_estimate(ArmStatistics.from_values(rows))
    assert estimate.mean == pytest.approx(rows.mean(), rel=1e-12)
    assert estimate.variance == pytest.approx(rows.var(ddof=1), rel=1e-12)
    assert estimate.standard_error == pytest.approx(rows.std(ddof=1) / np.sqrt(6), rel=1e-12)
    assert estimate.df == 5


def test_a_ratio_variance_is_the_delta_method_by_hand():
    rng = np.random.default_rng(3)
    visits = rng.poisson(3.0, 400).astype(float)
    revenue = visits * rng.gamma(2.0, 4.0, 400)
    estimate = ratio_estimate(RatioArmStatistics.from_values(revenue, visits))

    ratio = revenue.sum() / visits.sum()
    cov = np.cov(revenue, visits)  # ddof=1
    by_hand = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / visits.mean() ** 2
    assert estimate.mean == pytest.approx(ratio, rel=1e-12)
    assert estimate.variance == pytest.approx(by_hand, rel=1e-10)
    # Same thing as the variance of the linearised per-customer values.
    linearised = (revenue - ratio * visits) / visits.mean()
    assert estimate.variance == pytest.approx(linearised.var(ddof=1), rel=1e-10)


def test_the_ratio_delta_method_matches_the_spread_of_simulated_ratios():
    rng = np.random.default_rng(11)
    experiments, n = 2000, 500
    visits = rng.poisson(2.0, (experiments, n)).astype(float)
    revenue = visits * rng.gamma(1.5, 3.0, (experiments, n)) * (rng.random((experiments, n)) < 0.4)
    stats = RatioArmStatistics(
        n=np.full(experiments, float(n)),
        sum_num=revenue.sum(axis=1),
        sum_den=visits.sum(axis=1),
        sum_num2=(revenue**2).sum(axis=1),
        sum_den2=(visits**2).sum(axis=1),
        sum_num_den=(revenue * visits).sum(axis=1),
    )
    estimate = ratio_estimate(stats)
    empirical = np.var(estimate.mean, ddof=1)
    predicted = np.mean(estimate.variance_of_mean)
    # 2,000 replicates estimate a variance to about +/- 3% (1 sd).
    assert predicted == pytest.approx(empirical, rel=0.08)


def test_a_ratio_with_no_denominator_is_undefined():
    estimate = ratio_estimate(RatioArmStatistics.from_values([0.0, 0.0], [0.0, 0.0]))
    assert np.isnan(estimate.mean)
    assert np.isnan(estimate.variance)


def test_dispatch_checks_the_statistics_fit_the_kind():
    with pytest.raises(TypeError, match="RatioArmStatistics"):
        arm_estimate(ArmStatistics(n=2, sum_y=1.0, sum_y2=1.0), "ratio")
    with pytest.raises(TypeError, match="ArmStatistics"):
        arm_estimate(RatioArmStatistics.from_values([1.0], [1.0]), "mean")
    with pytest.raises(ValueError, match="unknown metric kind"):
        arm_estimate(ArmStatistics(n=2, sum_y=1.0, sum_y2=1.0), "median")  # type: ignore[arg-type]
