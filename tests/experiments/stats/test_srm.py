import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.stats.srm import srm_check


def test_it_matches_scipys_chisquare_for_unequal_weights():
    observed = {"control": 5210, "B": 2405, "C": 2385}
    weights = {"control": 50, "B": 25, "C": 25}
    result = srm_check(observed, weights)
    reference = scipy_stats.chisquare([5210, 2405, 2385], f_exp=[5000, 2500, 2500])
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.expected == {"control": 5000.0, "B": 2500.0, "C": 2500.0}
    assert result.df == 2


def test_it_flags_a_mismatch_below_one_in_a_thousand():
    # 10,000 vs 10,500 on a 50/50 split: chi-square 12.2, p ~ 0.0005.
    result = srm_check({"A": 10_000, "B": 10_500}, {"A": 1, "B": 1})
    assert result.p_value == pytest.approx(scipy_stats.chi2.sf(2 * 250**2 / 10_250, 1), rel=1e-9)
    assert result.p_value < 0.001
    assert result.mismatch


def test_it_does_not_flag_ordinary_noise():
    # 10,000 vs 10,200: chi-square 1.98, p ~ 0.16.
    result = srm_check({"A": 10_000, "B": 10_200}, {"A": 1, "B": 1})
    assert result.p_value == pytest.approx(0.1594, abs=1e-4)
    assert not result.mismatch


def test_it_flags_about_one_in_a_thousand_healthy_experiments():
    rng = np.random.default_rng(5)
    counts = rng.multinomial(20_000, [0.5, 0.3, 0.2], size=10_000)
    flagged = sum(
        srm_check({"A": a, "B": b, "C": c}, {"A": 5, "B": 3, "C": 2}).mismatch for a, b, c in counts
    )
    # Binomial(10,000, 0.001): mean 10, sd 3.2.
    assert 2 <= flagged <= 20


def test_customers_in_a_zero_weight_arm_are_a_mismatch():
    result = srm_check({"A": 500, "B": 480, "retired": 3}, {"A": 1, "B": 1, "retired": 0})
    assert result.mismatch
    assert result.p_value == 0.0


def test_an_experiment_without_customers_is_not_a_mismatch():
    result = srm_check({"A": 0, "B": 0}, {"A": 1, "B": 1})
    assert result.p_value == 1.0
    assert not result.mismatch


def test_it_rejects_counts_and_weights_for_different_arms():
    with pytest.raises(ValueError, match="arms differ"):
        srm_check({"A": 10, "B": 10}, {"A": 1, "C": 1})
