"""What the experiment's admin pages show, read from the stored analysis (no statistics here).

The pages are thin: these selectors turn an ``AnalysisResult.payload`` (see
``experiments.stats.analysis``) into rows a campaign manager reads, with
bounded queries whatever the number of customers:

- ``experiment_arm_counts``: customers per arm, one GROUP BY.
- ``result_rows``: one row per (metric, treatment arm) in ONE inference view.
  The fixed-horizon view reads the estimate the decision uses (CUPED when
  computed) with its 95% interval and fixed-horizon p-value; the sequential
  view reads the confidence sequence and the always-valid p-value. The two
  are never mixed in a row: ``Experiment.sequential_testing`` picks the
  default and ``?view=`` the other.
- ``segment_rows``: per segment, metric and arm, the observed effect with an
  interval adjusted for the number of segment tests (below), and the
  champion model's mean predicted uplift for the same customers when a
  higher app registered a ``model insight`` (modelling does, in its ready()).
- ``effect_history``: the effect over the stored snapshots, dated.
- ``next_step``: one sentence saying what to do next.

Segment intervals: segments are tested together with Benjamini-Hochberg, so
their plain 95% intervals over-cover nothing. The false-coverage-rate
adjusted interval of Benjamini & Yekutieli (2005) widens each to level
``1 - R * alpha / m`` (``m`` tests, ``R`` significant after BH; ``R = 1``
when none is, which is Bonferroni): estimate +- z * standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count
from scipy.stats import norm

from core.small_cells import small_cells_suppress
from experiments.models import AnalysisResult, Experiment, Metric

HISTORY_LIMIT = 60  # snapshots on the effect-over-time chart (the latest ones)
VIEWS = ("fixed", "sequential")


# What an effect is measured in (core.units), by what the metric aggregates.
UNIT_OF_AGGREGATION = {Metric.Aggregation.CONVERTED: "pp", Metric.Aggregation.SUM: "money",
                       Metric.Aggregation.COUNT: "count"}


def metric_units(experiment: Experiment) -> dict[str, str]:
    """``{metric name: effect unit}``: pp for rates, money for summed values, count else."""
    return {name: UNIT_OF_AGGREGATION[aggregation] for name, aggregation
            in experiment.metrics.values_list("name", "aggregation")}


def experiment_arm_counts(experiment: Experiment) -> dict[int, int]:
    """``{arm id: assigned customers}`` in one GROUP BY over the assignments."""
    return dict(experiment.assignments.values_list("arm_id").annotate(n=Count("id"))
                .values_list("arm_id", "n"))


def view_for(experiment: Experiment, requested: str | None) -> str:
    """The inference view to show: ``?view=`` when valid, else the experiment's own mode."""
    if requested in VIEWS:
        return requested
    return "sequential" if experiment.sequential_testing else "fixed"


def _f(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class ArmNumbers:
    name: str
    customers: int
    mean: float | None  # rate for conversion metrics, mean per customer otherwise
    total: float | None  # conversions or the summed value (mean x customers)


@dataclass
class ResultRow:
    arm: str
    effect: float | None
    low: float | None
    high: float | None
    relative: float | None
    relative_low: float | None
    relative_high: float | None
    p_value: float | None
    p_label: str
    chance_to_beat: float | None
    variance_reduction: float | None
    significant: bool
    direction: str  # better, worse, none (from the decision's own view)
    verdict: str


@dataclass
class MetricBlock:
    name: str
    role: str
    kind: str  # proportion or mean
    increase_is_good: bool
    arms: list[ArmNumbers]
    rows: list[ResultRow]
    harmed: bool = False
    unit: str = "count"  # what the effect is in (core.units): pp, money or count


def _verdict(row_significant: bool, improvement: float | None, role: str) -> str:
    if not row_significant or improvement is None or improvement == 0:
        return "no clear difference yet"
    if improvement > 0:
        return "better than control"
    return "harmed (guardrail)" if role == "guardrail" else "worse than control"


def result_rows(payload: dict, *, view: str, sequential_design: bool,
                units: dict[str, str] | None = None) -> list[MetricBlock]:
    """One block per metric, one row per treatment arm, in the ``view`` (fixed or sequential).

    ``units`` (``metric_units``) names each effect's unit; without it a rate is
    in pp and any other metric a plain number.
    """
    blocks = []
    alpha = float(payload.get("alpha", 0.05))
    for metric in payload.get("metrics", []):
        arms = [ArmNumbers(name=a["arm"], customers=int(a["n"]), mean=_f(a["mean"]),
                           total=None if _f(a["mean"]) is None else _f(a["mean"]) * int(a["n"]))
                for a in metric["arms"]]
        sign = 1.0 if metric["increase_is_good"] else -1.0
        rows = []
        for c in metric["comparisons"]:
            effect = (c.get("cuped") or {}).get("effect") or c["unadjusted"]
            control_mean = _f(effect["control_mean"])
            if view == "sequential":
                seq = c["sequential"]
                est, low, high = _f(seq["absolute_effect"]), _f(seq["ci_low"]), _f(seq["ci_high"])
                p = _f(c["p_value_adjusted"]) if sequential_design else _f(seq["p_value"])
                p_label = ("always-valid p, corrected across arms" if sequential_design
                           else "always-valid p")
            else:
                est = _f(effect["absolute_effect"])
                low, high = _f(effect["absolute_ci_low"]), _f(effect["absolute_ci_high"])
                p = _f(effect["p_value"]) if sequential_design else _f(c["p_value_adjusted"])
                p_label = "p" if sequential_design else "p, corrected across arms"
            # Relative lift in the same view: the interval over the control mean.
            if view == "sequential" and control_mean:
                rel, rel_low, rel_high = (None if v is None else v / abs(control_mean)
                                          for v in (est, low, high))
            else:
                rel, rel_low, rel_high = (_f(effect["relative_effect"]),
                                          _f(effect["relative_ci_low"]),
                                          _f(effect["relative_ci_high"]))
            significant = p is not None and p < alpha
            improvement = None if est is None else sign * est
            rows.append(ResultRow(
                arm=c["arm"], effect=est, low=low, high=high, relative=rel,
                relative_low=rel_low, relative_high=rel_high, p_value=p, p_label=p_label,
                chance_to_beat=_f(c["bayesian"].get("chance_to_beat_control")),
                variance_reduction=_f((c.get("cuped") or {}).get("variance_reduction")),
                significant=significant, direction=c.get("direction", "none"),
                verdict=_verdict(significant, improvement, metric["role"])))
        blocks.append(MetricBlock(
            name=metric["metric"], role=metric["role"], kind=metric["kind"],
            increase_is_good=metric["increase_is_good"], arms=arms, rows=rows,
            harmed=metric["role"] == "guardrail" and any(
                r.verdict.startswith("harmed") for r in rows),
            unit=(units or {}).get(metric["metric"],
                                   "pp" if metric["kind"] == "proportion" else "count")))
    return blocks


@dataclass
class SegmentRow:
    segment: str
    metric: str
    arm: str
    customers: int
    effect: float | None
    low: float | None
    high: float | None
    p_adjusted: float | None
    significant: bool
    predicted: float | None = None  # the champion's mean predicted uplift, when known


@dataclass
class ModelInsight:
    """What a model knows about the experiment, supplied by a higher app (modelling).

    ``segment_uplift``: ``{arm: {segment label: mean predicted uplift}}`` for
    ``target_metric``; ``targeting``: the latest targeting list's
    ``{"id", "size", "url"}`` or None; ``champion``: ``{"id", "estimator", "url"}``.
    """

    target_metric: str = ""
    champion: dict | None = None
    segment_uplift: dict[str, dict[str, float]] = field(default_factory=dict)
    targeting: dict | None = None
    scored_customers: int | None = None


_INSIGHT: list[Callable[[Experiment, list[str]], ModelInsight | None]] = []


def model_insight_register(provider: Callable[[Experiment, list[str]], ModelInsight | None]):
    """Called by a higher app's ready(): ``provider(experiment, segment labels)``."""
    _INSIGHT[:] = [provider]


def model_insight(experiment: Experiment, segments: list[str]) -> ModelInsight:
    if not _INSIGHT:
        return ModelInsight()
    return _INSIGHT[0](experiment, segments) or ModelInsight()


def _smallest_arm(segment: dict) -> int | None:
    sizes = [int(arm["n"]) for metric in segment.get("metrics", []) for arm in metric["arms"]]
    return min(sizes) if sizes else None


def _partition(segment: dict) -> str | None:
    """Attribute breakdowns ("channel=web") partition the experiment; segment rules do not."""
    label = segment["segment"]
    return None if label.startswith("segment:") or "=" not in label else label.split("=", 1)[0]


def analysis_payload_public(payload: dict) -> dict:
    """The payload as shown anywhere (admin, API): breakdowns over small cells suppressed.

    A breakdown whose smallest arm has fewer than PRIVACY_MIN_CELL customers
    keeps only its label and the reason (core.small_cells, with secondary
    suppression among one attribute's values); the experiment's own figures
    (``metrics``, ``sample_sizes``, ``srm``, the decision) are exact.
    """
    if not payload.get("segments"):
        return payload
    return {**payload, "segments": small_cells_suppress(
        payload["segments"], count=_smallest_arm, keep=("segment",), group=_partition)}


def segment_labels(payload: dict) -> list[str]:
    return [s["segment"] for s in payload.get("segments", [])]


def segment_rows(payload: dict, insight: ModelInsight | None = None) -> list[SegmentRow]:
    """Every segment x metric x arm, with its FCR-adjusted interval (module docstring)."""
    alpha = float(payload.get("alpha", 0.05))
    raw = []
    for segment in payload.get("segments", []):
        for metric in segment.get("metrics", []):  # none when suppressed
            n = sum(int(a["n"]) for a in metric["arms"])
            for c in metric["comparisons"]:
                raw.append((segment["segment"], metric["metric"], n, c))
    m = len(raw)
    significant = sum(1 for *_, c in raw if c.get("significant"))
    level = alpha * max(significant, 1) / max(m, 1)
    z = float(norm.ppf(1 - level / 2))
    uplift = insight.segment_uplift if insight else {}
    target = insight.target_metric if insight else ""
    rows = []
    for label, metric, n, c in raw:
        est, se = _f(c["unadjusted"]["absolute_effect"]), _f(c["unadjusted"]["absolute_se"])
        low = high = None
        if est is not None and se is not None:
            low, high = est - z * se, est + z * se
        predicted = uplift.get(c["arm"], {}).get(label) if metric == target else None
        rows.append(SegmentRow(segment=label, metric=metric, arm=c["arm"], customers=n,
                               effect=est, low=low, high=high,
                               p_adjusted=_f(c.get("p_value_adjusted")),
                               significant=bool(c.get("significant")), predicted=predicted))
    rows.sort(key=lambda r: (r.metric, r.arm, -(r.effect if r.effect is not None else -1e9)))
    return rows


def effect_history(experiment: Experiment, *, view: str) -> dict[tuple[str, str], dict]:
    """``{(metric, arm): {"x": dates, "y", "low", "high"}}`` over the latest snapshots.

    Reads only the ``metrics`` part of each payload (the segments can be large),
    for at most ``HISTORY_LIMIT`` snapshots: one query.
    """
    snapshots = list(AnalysisResult.objects.filter(experiment=experiment)
                     .order_by("-created_at", "-id")
                     .values_list("created_at", "payload__metrics")[:HISTORY_LIMIT])
    series: dict[tuple[str, str], dict] = {}
    for created_at, metrics in reversed(snapshots):
        for block in result_rows({"metrics": metrics or []}, view=view,
                                 sequential_design=experiment.sequential_testing):
            for row in block.rows:
                s = series.setdefault((block.name, row.arm),
                                      {"x": [], "y": [], "low": [], "high": []})
                s["x"].append(created_at.isoformat())
                s["y"].append(row.effect)
                s["low"].append(row.low)
                s["high"].append(row.high)
    return series


def next_step(experiment: Experiment, latest: AnalysisResult | None,
              insight: ModelInsight) -> str:
    """One sentence: what a campaign manager should do now."""
    if experiment.status == Experiment.Status.DRAFT:
        return "This experiment is a draft: check its arms and metrics, then press Start."
    if latest is None:
        return "No analysis yet: press Analyse now to compute the results."
    action = latest.decision
    targeting = insight.targeting
    if action == "stop":
        if targeting:
            return ("Sending to everyone does not pay (see the reasons below); target only the customers the model "
                    f"expects to gain instead: see the recommended list ({targeting['size']:,} "
                    "customers).")
        if insight.champion:
            return ("Sending to everyone does not pay. Press Score now, then Build target "
                    "list, to contact only the customers the model expects to gain.")
        return ("Sending to everyone does not pay. Press Train now to learn which customers "
                "gain, then Score now and Build target list.")
    if action == "ship":
        arm = (latest.payload.get("decision") or {}).get("arm")
        return (f"{arm or 'The winning arm'} beats control with no guardrail harmed: roll it "
                "out, or target only the customers the model expects to gain.")
    if experiment.status == Experiment.Status.RUNNING:
        return ("Not enough evidence yet: keep the experiment running and press Analyse now "
                "again later.")
    # Ended without a clear result: sending to everyone is not proven, so the
    # useful next step is the model's targeting (if any) or a new test.
    if targeting:
        return ("The experiment ended without a clear winner for everyone: contact only the "
                "customers the model expects to gain, see the recommended list "
                f"({targeting['size']:,} customers), and prove it with a follow-up experiment.")
    return ("The experiment ended without a clear winner for everyone: train a model to find "
            "the customers who gain, or run a larger test.")
