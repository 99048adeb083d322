import json
import subprocess
import sys

import numpy as np
import pytest

from experiments.stats.analysis import (
    ExperimentDesign,
    MetricSpec,
    analyse_experiment,
    analyse_metric,
)
from experiments.stats.multiple_testing import benjamini_hochberg_adjust, holm_adjust
from experiments.stats.sufficient import ArmStatistics, RatioArmStatistics

ARMS = ("control", "B", "C")
N = 3000


def revenue(rng, n, lift):
    """Pre-period spend x and post-period spend y, 60% zeros; y multiplied by (1 + lift)."""
    buyer = rng.random(n) < 0.4
    x = buyer * rng.gamma(2.0, 15.0, n)
    y = (0.8 * x + buyer * rng.gamma(2.0, 5.0, n)) * (1 + lift)
    return ArmStatistics.from_values(y, x)


def conversions(rng, n, rate):
    y = (rng.random(n) < rate).astype(float)
    return ArmStatistics.from_values(y)


def revenue_per_visit(rng, n, lift):
    visits = rng.poisson(2.0, n).astype(float)
    return RatioArmStatistics.from_values(visits * rng.gamma(2.0, 5.0, n) * (1 + lift), visits)


def experiment(seed=0, revenue_lifts=(0.0, 0.08, 0.01), unsubscribe=(0.02, 0.02, 0.02)):
    rng = np.random.default_rng(seed)
    return {
        "revenue": {
            arm: revenue(rng, N, lift) for arm, lift in zip(ARMS, revenue_lifts, strict=True)
        },
        "converted": {arm: conversions(rng, N, 0.1) for arm in ARMS},
        "revenue_per_visit": {arm: revenue_per_visit(rng, N, 0.0) for arm in ARMS},
        "unsubscribed": {
            arm: conversions(rng, N, rate) for arm, rate in zip(ARMS, unsubscribe, strict=True)
        },
    }


DESIGN = ExperimentDesign(
    control="control", weights={"control": 1, "B": 1, "C": 1}, planned_sample_size=30_000
)
METRICS = [
    MetricSpec("revenue", "mean", "primary", minimum_detectable_effect=0.05),
    MetricSpec("converted", "proportion", "secondary"),
    MetricSpec("revenue_per_visit", "ratio", "secondary"),
    MetricSpec("unsubscribed", "proportion", "guardrail", increase_is_good=False),
]


def metric(result, name):
    return next(m for m in result.metrics if m.metric == name)


def test_a_clear_winner_ships_and_the_result_is_plain_json():
    result = analyse_experiment(DESIGN, METRICS, experiment())
    assert (result.decision.action, result.decision.arm) == ("ship", "B")

    payload = result.to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text)["decision"] == {
        "action": "ship",
        "arm": "B",
        "reasons": result.decision.reasons,
    }
    revenue_b = payload["metrics"][0]["comparisons"][0]
    assert revenue_b["arm"] == "B"
    assert revenue_b["estimate_used"] == "cuped"
    assert revenue_b["cuped"]["variance_reduction"] > 0.5  # x explains most of y


def test_the_primary_family_is_holm_corrected_over_arms():
    result = analyse_experiment(DESIGN, METRICS, experiment())
    comparisons = metric(result, "revenue").comparisons
    raw = [c.p_value for c in comparisons]
    np.testing.assert_allclose(
        [c.p_value_adjusted for c in comparisons], holm_adjust(raw), rtol=1e-12
    )
    # Sequential design: the raw p-value is the always-valid one.
    assert raw == [c.sequential.p_value for c in comparisons]


def test_a_fixed_horizon_design_reads_the_welch_p_value_on_the_cuped_estimate():
    design = ExperimentDesign(
        control="control",
        weights={"control": 1, "B": 1, "C": 1},
        sequential=False,
        planned_sample_size=9000,
    )
    result = analyse_experiment(design, METRICS, experiment())
    b = metric(result, "revenue").comparisons[0]
    assert b.p_value == b.cuped.effect.p_value
    assert b.p_value < b.sequential.p_value  # the always-valid p-value pays for peeking
    assert result.inference == "fixed_horizon"
    assert (result.decision.action, result.decision.arm) == ("ship", "B")


def test_guardrails_are_not_corrected_and_their_harm_stops_the_experiment():
    data = experiment(revenue_lifts=(0.0, 0.08, 0.08), unsubscribe=(0.02, 0.05, 0.05))
    result = analyse_experiment(DESIGN, METRICS, data)
    guard = metric(result, "unsubscribed")
    assert [c.p_value_adjusted for c in guard.comparisons] == [c.p_value for c in guard.comparisons]
    assert [c.direction for c in guard.comparisons] == ["worse", "worse"]
    assert result.decision.action == "stop"
    assert any("harms guardrail 'unsubscribed'" in reason for reason in result.decision.reasons)


def test_a_sample_ratio_mismatch_in_assignments_stops_the_experiment():
    counts = {"control": 3000, "B": 3000, "C": 3400}
    result = analyse_experiment(DESIGN, METRICS, experiment(), assignment_counts=counts)
    assert result.srm.mismatch
    assert result.decision.action == "stop"


def test_without_a_plan_the_primary_mde_sets_the_sample_to_wait_for():
    design = ExperimentDesign(control="control", weights={"control": 1, "B": 1, "C": 1})
    specs = [MetricSpec("revenue", "mean", minimum_detectable_effect=0.02)]
    data = experiment(revenue_lifts=(0.0, 0.0, 0.0))
    result = analyse_experiment(design, specs, {"revenue": data["revenue"]})
    power = result.metrics[0].comparisons[0].power
    assert power.required_sample_size_control > N
    assert result.decision.action == "keep_running"
    assert f"control {N:,} of {power.required_sample_size_control:,}" in result.decision.reasons[0]


def test_each_metric_kind_gets_its_own_estimator():
    result = analyse_experiment(DESIGN, METRICS, experiment())
    assert metric(result, "converted").comparisons[0].bayesian.method == "beta_binomial"
    assert metric(result, "revenue").comparisons[0].bayesian.method == "normal"
    ratio = metric(result, "revenue_per_visit")
    assert ratio.cuped_theta is None and ratio.comparisons[0].estimate_used == "unadjusted"
    assert sum(metric(result, "revenue").chance_to_be_best.values()) == pytest.approx(1.0)
    assert (
        max(
            metric(result, "revenue").chance_to_be_best,
            key=metric(result, "revenue").chance_to_be_best.get,
        )
        == "B"
    )


def test_segments_are_corrected_together_with_benjamini_hochberg():
    rng = np.random.default_rng(5)
    segments = {
        segment: {
            "converted": {
                arm: conversions(rng, 1500, rate) for arm, rate in zip(ARMS, rates, strict=True)
            }
        }
        for segment, rates in (("new", (0.10, 0.20, 0.10)), ("returning", (0.10, 0.10, 0.11)))
    }
    result = analyse_experiment(DESIGN, METRICS, experiment(), segments=segments)
    cells = [c for s in result.segments for m in s.metrics for c in m.comparisons]
    assert len(cells) == 4
    np.testing.assert_allclose(
        [c.p_value_adjusted for c in cells],
        benjamini_hochberg_adjust([c.p_value for c in cells]),
        rtol=1e-12,
    )
    assert [s.segment for s in result.segments] == ["new", "returning"]
    assert result.segments[0].metrics[0].comparisons[0].direction == "better"


def test_previous_looks_keep_the_always_valid_p_value_from_rising():
    data = experiment(revenue_lifts=(0.0, 0.0, 0.0))
    result = analyse_experiment(
        DESIGN, METRICS, data, previous_p_values={"revenue": {"B": 0.004, "C": 0.9}}
    )
    comparisons = metric(result, "revenue").comparisons
    assert comparisons[0].p_value == 0.004
    assert comparisons[1].p_value <= 0.9


def test_analysing_one_metric_needs_every_arm():
    data = experiment()["revenue"]
    del data["C"]
    with pytest.raises(ValueError, match="design has"):
        analyse_metric(DESIGN, METRICS[0], data)


def test_the_design_validates_itself():
    with pytest.raises(ValueError, match="control arm"):
        ExperimentDesign(control="A", weights={"B": 1, "C": 1})
    with pytest.raises(ValueError, match="weights"):
        ExperimentDesign(control="A", weights={"A": 1, "B": 0})
    with pytest.raises(ValueError, match="kind"):
        MetricSpec("x", "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="primary metric"):
        analyse_experiment(DESIGN, [METRICS[1]], experiment())


def test_the_stats_package_imports_without_django():
    code = (
        "import sys, experiments.stats.analysis; "
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_covariate_that_never_varies_is_ignored():
    rng = np.random.default_rng(8)
    data = {}
    for arm, rate in zip(ARMS, (0.10, 0.12, 0.10), strict=True):
        y = (rng.random(N) < rate).astype(float)
        data[arm] = ArmStatistics.from_values(y, np.zeros(N))
    result = analyse_metric(DESIGN, MetricSpec("converted", "proportion"), data)
    assert result.cuped_theta is None
    assert result.comparisons[0].estimate_used == "unadjusted"
    assert result.comparisons[0].bayesian.method == "beta_binomial"


def test_empty_segments_give_nulls_not_errors():
    empty = ArmStatistics(n=0, sum_y=0.0, sum_y2=0.0, sum_x=0.0, sum_x2=0.0, sum_xy=0.0)
    rng = np.random.default_rng(9)
    one_arm_empty = {"control": revenue(rng, 200, 0.0), "B": empty, "C": revenue(rng, 150, 0.0)}
    segments = {
        "nobody": {"revenue": {arm: empty for arm in ARMS}},
        "one arm empty": {"revenue": one_arm_empty},
    }
    result = analyse_experiment(DESIGN, METRICS, experiment(), segments=segments)
    nobody, partial = result.segments
    assert not nobody.srm.mismatch
    assert all(c.significant is False for c in nobody.metrics[0].comparisons)
    assert partial.metrics[0].comparisons[1].p_value_adjusted >= 0  # C against control still runs
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["segments"][0]["metrics"][0]["comparisons"][0]["p_value"] is None


def test_weights_from_a_model_field_may_be_decimals():
    from decimal import Decimal

    design = ExperimentDesign(control="A", weights={"A": Decimal("0.5"), "B": Decimal("0.5")})
    assert design.weights == {"A": 0.5, "B": 0.5}
