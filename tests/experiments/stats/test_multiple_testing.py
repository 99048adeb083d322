import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from experiments.stats.multiple_testing import (
    adjust_p_values,
    benjamini_hochberg_adjust,
    holm_adjust,
)

RNG = np.random.default_rng(99)
# A mix of tiny, borderline and null p-values, with ties.
P_VALUES = np.concatenate([RNG.uniform(0, 0.01, 6), RNG.uniform(0, 1, 30), [0.03, 0.03, 1.0, 0.0]])


def test_holm_matches_statsmodels():
    expected = multipletests(P_VALUES, method="holm")[1]
    np.testing.assert_allclose(holm_adjust(P_VALUES), expected, rtol=1e-12, atol=1e-15)


def test_benjamini_hochberg_matches_statsmodels():
    expected = multipletests(P_VALUES, method="fdr_bh")[1]
    np.testing.assert_allclose(
        benjamini_hochberg_adjust(P_VALUES), expected, rtol=1e-12, atol=1e-15
    )


def test_a_textbook_example_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # Sorted: 0.005, 0.01, 0.03, 0.04.
    # Holm: 4*0.005=0.02, 3*0.01=0.03, 2*0.03=0.06, max(0.06, 0.04)=0.06.
    np.testing.assert_allclose(holm_adjust(p), [0.03, 0.06, 0.06, 0.02])
    # BH: 0.04*4/4=0.04, 0.03*4/3=0.04, 0.01*4/2=0.02, 0.005*4/1=0.02.
    np.testing.assert_allclose(benjamini_hochberg_adjust(p), [0.02, 0.04, 0.04, 0.02])


def test_each_row_is_its_own_family():
    batch = RNG.uniform(0, 0.2, (500, 8))
    for method, name in (("holm", "holm"), ("bh", "fdr_bh")):
        adjusted = adjust_p_values(batch, method)
        for row, row_adjusted in zip(batch[:5], adjusted[:5], strict=True):
            np.testing.assert_allclose(row_adjusted, multipletests(row, method=name)[1], rtol=1e-12)


def test_a_family_can_run_along_another_axis():
    batch = RNG.uniform(0, 0.2, (8, 50))
    np.testing.assert_allclose(holm_adjust(batch, axis=0), holm_adjust(batch.T).T)


def test_missing_p_values_stay_missing_and_do_not_count():
    adjusted = holm_adjust([0.01, np.nan, 0.02])
    assert np.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], [0.02, 0.02])  # m = 2, not 3
    adjusted = benjamini_hochberg_adjust([0.01, np.nan, 0.04])
    np.testing.assert_allclose(adjusted[[0, 2]], [0.02, 0.04])


def test_holm_controls_the_family_wise_error_rate_under_the_null():
    p = RNG.uniform(0, 1, (20_000, 12))
    any_rejection = np.mean(np.any(holm_adjust(p) < 0.05, axis=1))
    assert any_rejection <= 0.055  # Bonferroni bound 0.05; sd of the estimate 0.0015
    assert np.mean(np.any(p < 0.05, axis=1)) > 0.4  # uncorrected: 1 - 0.95^12 = 0.46


def test_it_rejects_values_outside_zero_one():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_adjust([0.5, 1.2])
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_p_values([0.5], "bonferroni")  # type: ignore[arg-type]
