"""experiment_analyse: SQL sufficient statistics in, an AnalysisResult snapshot out.

The numbers come from experiments.outcomes (the database does the GROUP BY);
all statistics are experiments.stats. Segment membership is evaluated as of
the experiment's start, so behaviour caused by the treatment can never move
a customer between segments (point-in-time breakdowns). Attribute values and
consent, in segment rules and attribute breakdowns alike, are the versions
valid at that same instant (marketing.attribute_history), not the current
ones: a customer who joined the loyalty programme because of the campaign
stays in the group they were in when it began.

Why the start and not each customer's assignment time: both are before any
treatment, so neither lets the treatment move anyone. One instant for
everyone makes a breakdown group the population ``segment_members(rule,
as_of=start)`` returns, with behaviour, attributes and consent read at the
same time in one rule, and the same group in every arm; per-assignment
times would define each segment at as many instants as there are
assignment times, matching no single segment's member list.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Min

from core.db.sql_tuning import large_aggregates
from core.models import TaskRun
from experiments.models import AnalysisResult, Arm, Experiment, Metric
from experiments.outcomes import MetricSums, OutcomeTable, outcome_breakdowns
from experiments.stats.analysis import ExperimentDesign, MetricSpec, analyse_experiment
from experiments.stats.sufficient import ArmStatistics

# Attribute breakdowns keep the most common values; the rest become "other".
TOP_ATTRIBUTE_VALUES = 5
MISSING = "(missing)"
OTHER = "other"

_KIND = {
    Metric.Aggregation.CONVERTED: "proportion",
    Metric.Aggregation.COUNT: "mean",
    Metric.Aggregation.SUM: "mean",
}


def _statistics(sums: MetricSums) -> ArmStatistics:
    return ArmStatistics(n=sums.n, sum_y=sums.sum_y, sum_y2=sums.sum_y2, sum_x=sums.sum_x,
                         sum_x2=sums.sum_x2, sum_xy=sums.sum_xy)


def _by_metric(cells: dict[int, dict[str, MetricSums]], arms: list[Arm],
               metrics: list[Metric]) -> dict[str, dict[str, ArmStatistics]]:
    """metric -> arm name -> statistics; arms without customers get zeros."""
    empty = MetricSums(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return {
        m.name: {a.name: _statistics(cells.get(a.id, {}).get(m.name, empty)) for a in arms}
        for m in metrics
    }


def _attribute_groups(table: OutcomeTable) -> dict[str, dict[int, dict[str, MetricSums]]]:
    """Keep the TOP_ATTRIBUTE_VALUES largest groups; sums are additive, so merge the rest."""
    sizes = {g: sum(next(iter(cells.values())).n for cells in arms.values() if cells)
             for g, arms in table.items()}
    ranked = sorted(sizes, key=lambda g: (-sizes[g], str(g)))
    keep = set(ranked[:TOP_ATTRIBUTE_VALUES])
    groups: dict[str, dict[int, dict[str, MetricSums]]] = {}
    for group, arms in table.items():
        label = (MISSING if group is None else str(group)) if group in keep else OTHER
        target = groups.setdefault(label, {})
        for arm_id, cells in arms.items():
            if arm_id in target:
                target[arm_id] = {name: target[arm_id][name] + s for name, s in cells.items()}
            else:
                target[arm_id] = dict(cells)
    return groups


def experiment_analyse(
    *, experiment: Experiment, task_run: TaskRun | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> AnalysisResult:
    """Analyse the experiment as of now and store a snapshot."""
    report = progress or (lambda fraction, step: None)
    arms = [a for a in experiment.arms.order_by("id") if a.weight > 0]
    metrics = list(experiment.metrics.order_by("id"))
    control = next((a for a in arms if a.is_control), None)
    if control is None:
        raise ValueError(f"experiment {experiment.key} has no control arm with positive weight")

    as_of = experiment.started_at or experiment.assignments.aggregate(t=Min("assigned_at"))["t"]
    segments: dict[str, dict] = {}
    breakdowns = list(experiment.breakdown_segments.all())
    attributes = list(experiment.breakdown_attributes)
    report(0.05, "outcomes per assignment and breakdown")
    with large_aggregates():
        sums = outcome_breakdowns(experiment, metrics, attributes=attributes, as_of=as_of,
                                  segments={s.key: s.rule for s in breakdowns})
    data = _by_metric(sums.overall, arms, metrics)
    for segment in breakdowns:
        segments[f"segment:{segment.key}"] = _by_metric(sums.segments[segment.key], arms, metrics)
    for attribute in attributes:
        for label, cells in _attribute_groups(sums.attributes[attribute]).items():
            segments[f"{attribute}={label}"] = _by_metric(cells, arms, metrics)

    report(0.8, "statistics")
    previous = experiment.analyses.order_by("-created_at", "-id").first()
    design = ExperimentDesign(
        control=control.name, weights={a.name: a.weight for a in arms}, alpha=experiment.alpha,
        sequential=experiment.sequential_testing,
        planned_sample_size=experiment.planned_sample_size,
    )
    specs = [MetricSpec(name=m.name, kind=_KIND[m.aggregation], role=m.role,
                        increase_is_good=m.higher_is_better,
                        minimum_detectable_effect=m.minimum_detectable_effect) for m in metrics]
    analysis = analyse_experiment(
        design, specs, data, segments=segments,
        previous_p_values=_previous_p_values(previous) if design.sequential else None,
    )
    payload = analysis.to_dict()
    report(0.95, "saving")
    return AnalysisResult.objects.create(
        experiment=experiment, task_run=task_run, customers=sum(analysis.sample_sizes.values()),
        decision=payload["decision"]["action"], decision_reasons=payload["decision"]["reasons"],
        srm_p_value=payload["srm"]["p_value"], payload=payload,
    )


def _previous_p_values(previous: AnalysisResult | None) -> dict[str, dict[str, float]] | None:
    """Always-valid p-values of the last look: they may only go down over time."""
    if previous is None:
        return None
    out: dict[str, dict[str, float]] = {}
    for metric in previous.payload.get("metrics", []):
        for comparison in metric["comparisons"]:
            p = comparison["sequential"].get("p_value")
            if p is not None:
                out.setdefault(metric["metric"], {})[comparison["arm"]] = p
    return out or None
