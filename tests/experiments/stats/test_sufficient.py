import numpy as np
import pytest

from experiments.stats.sufficient import ArmStatistics, InvalidStatistics, RatioArmStatistics

ROWS_Y = np.array([0.0, 3.5, 0.0, 12.25, 7.0, 0.0, 1.5])
ROWS_X = np.array([1.0, 2.0, 0.0, 9.0, 4.0, 0.5, 0.0])


def test_it_computes_moments_that_match_numpy():
    stats = ArmStatistics.from_values(ROWS_Y, ROWS_X)
    assert stats.n == 7
    assert stats.mean_y == pytest.approx(ROWS_Y.mean(), rel=1e-12)
    assert stats.var_y == pytest.approx(ROWS_Y.var(ddof=1), rel=1e-12)
    assert stats.mean_x == pytest.approx(ROWS_X.mean(), rel=1e-12)
    assert stats.centred_xx == pytest.approx(((ROWS_X - ROWS_X.mean()) ** 2).sum(), rel=1e-12)
    assert stats.centred_xy / 6 == pytest.approx(np.cov(ROWS_X, ROWS_Y)[0, 1], rel=1e-12)


def test_it_accepts_arrays_of_experiments():
    stats = ArmStatistics(
        n=np.array([2.0, 3.0]), sum_y=np.array([1.0, 6.0]), sum_y2=np.array([1.0, 14.0])
    )
    np.testing.assert_allclose(stats.mean_y, [0.5, 2.0])
    np.testing.assert_allclose(stats.var_y, [0.5, 1.0])  # rows (0, 1) and (1, 2, 3)


def test_it_rejects_a_negative_count():
    with pytest.raises(InvalidStatistics, match="n must be >= 0"):
        ArmStatistics(n=-1, sum_y=0.0, sum_y2=0.0)


def test_it_rejects_a_fractional_count():
    with pytest.raises(InvalidStatistics, match="whole number"):
        ArmStatistics(n=2.5, sum_y=1.0, sum_y2=1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_it_rejects_non_finite_sums(bad):
    with pytest.raises(InvalidStatistics, match="finite"):
        ArmStatistics(n=3, sum_y=bad, sum_y2=1.0)


def test_it_rejects_a_negative_variance():
    # Three rows summing to 6 need sum of squares >= 12.
    with pytest.raises(InvalidStatistics, match="negative variance"):
        ArmStatistics(n=3, sum_y=6.0, sum_y2=11.0)


def test_it_tolerates_rounding_in_a_zero_variance():
    # A constant 1234.5678 over a million rows, summed with a relative error of 1e-12.
    n, value = 1_000_000, 1234.5678
    stats = ArmStatistics(n=n, sum_y=n * value, sum_y2=n * value**2 * (1 - 1e-12))
    assert stats.var_y == 0.0


def test_it_rejects_sums_for_an_empty_arm():
    with pytest.raises(InvalidStatistics, match="must be 0 when n == 0"):
        ArmStatistics(n=0, sum_y=1.0, sum_y2=1.0)


def test_an_empty_arm_has_undefined_moments():
    stats = ArmStatistics(n=0, sum_y=0.0, sum_y2=0.0)
    assert np.isnan(stats.mean_y)
    assert np.isnan(stats.var_y)


def test_it_needs_all_covariate_sums_or_none():
    with pytest.raises(InvalidStatistics, match="all of sum_x"):
        ArmStatistics(n=3, sum_y=1.0, sum_y2=1.0, sum_x=2.0)


def test_it_rejects_a_cross_sum_that_breaks_cauchy_schwarz():
    good = ArmStatistics.from_values(ROWS_Y, ROWS_X)
    with pytest.raises(InvalidStatistics, match="Cauchy-Schwarz"):
        ArmStatistics(
            n=good.n,
            sum_y=good.sum_y,
            sum_y2=good.sum_y2,
            sum_x=good.sum_x,
            sum_x2=good.sum_x2,
            sum_xy=good.sum_xy * 3,
        )


def test_it_checks_that_a_proportion_is_binary():
    ArmStatistics(n=10, sum_y=4.0, sum_y2=4.0).check_binary()
    with pytest.raises(InvalidStatistics, match="sum_y2 == sum_y"):
        ArmStatistics(n=10, sum_y=4.0, sum_y2=6.0).check_binary()
    with pytest.raises(InvalidStatistics, match="negative variance"):
        ArmStatistics(n=3, sum_y=4.0, sum_y2=4.0)  # 4 conversions out of 3 customers


def test_ratio_statistics_reject_a_negative_denominator_variance():
    with pytest.raises(InvalidStatistics, match="denominator"):
        RatioArmStatistics(
            n=2, sum_num=1.0, sum_den=4.0, sum_num2=1.0, sum_den2=7.0, sum_num_den=2.0
        )


def test_ratio_statistics_from_rows_hold_the_sums():
    stats = RatioArmStatistics.from_values([1.0, 2.0], [3.0, 4.0])
    assert (stats.sum_num, stats.sum_den, stats.sum_num2, stats.sum_den2, stats.sum_num_den) == (
        3.0,
        7.0,
        5.0,
        25.0,
        11.0,
    )


def test_it_rejects_fields_of_different_shapes():
    with pytest.raises(InvalidStatistics, match="incompatible shapes"):
        ArmStatistics(
            n=np.array([2.0, 3.0]),
            sum_y=np.array([1.0, 2.0, 3.0]),
            sum_y2=np.array([1.0, 2.0, 3.0]),
        )
