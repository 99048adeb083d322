"""Predicted-versus-observed uplift tables, checked against scipy."""

import numpy as np
import pytest
from scipy import stats

from modelling.uplift_calibration import calibration_table, observed_effect


def test_the_observed_effect_is_welchs_difference_and_interval():
    rng = np.random.default_rng(1)
    y = rng.exponential(10, 400) * (rng.random(400) < 0.3)
    treated = rng.random(400) < 0.5
    out = observed_effect(y, treated, kind="mean")
    a, b = y[treated], y[~treated]
    assert out["effect"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    welch = stats.ttest_ind(a, b, equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert out["p_value"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert (out["n_treated"], out["n_control"]) == (a.size, b.size)


def test_deciles_run_from_the_highest_prediction_and_segments_follow():
    rng = np.random.default_rng(2)
    n = 2_000
    treatment = rng.integers(0, 3, n)
    effect = rng.normal(size=(n, 2))
    y = (rng.random(n) < 0.2 + 0.1 * (treatment == 1) * (effect[:, 0] > 0)).astype(float)
    vip = rng.random(n) < 0.3
    table = calibration_table(y, treatment, effect, ["control", "a", "b"], kind="proportion",
                              segments={"vip": vip})
    rows = table["a"]
    assert [r["group"] for r in rows] == [f"decile {d}" for d in range(1, 11)] + ["segment vip"]
    predicted = [r["predicted"] for r in rows[:10]]
    assert predicted == sorted(predicted, reverse=True)
    in_arm = (treatment == 0) | (treatment == 1)
    assert sum(r["n_control"] + r["n_treated"] for r in rows[:10]) == in_arm.sum()
    top = rows[0]
    assert top["effect"] > rows[9]["effect"]  # uplift exists only where effect[:, 0] > 0
    mask = vip & in_arm
    assert rows[10]["n_treated"] == int((mask & (treatment == 1)).sum())
    assert rows[10]["predicted"] == pytest.approx(effect[mask, 0].mean())
