"""Per-arm sufficient statistics of experiment metrics, computed in the database.

For every assignment and metric, in one pass over the events:

    y = aggregate of the metric's events in [assigned_at, assigned_at + W)
    x = the same aggregate in [assigned_at - W, assigned_at)   (CUPED covariate)

where W is the attribution window and the aggregate is 1/0 for "converted",
the number of events for "count" and the sum of event value for "sum". The
database then sums per arm (and per group) n, Σy, Σy², Σx, Σx², Σxy, which is
all the statistics engine needs; no per-customer row reaches Python.

``outcome_breakdowns`` answers a whole analysis in one statement: the
per-assignment rows are joined once to the customer (and its attribute
version valid at the breakdown's cutoff) for attribute values and
segment rules (whose behavioural metrics come from the same pass over the
events) and summed per combination of arm and breakdown values; every
breakdown is then a roll-up of those few cells. The events are read once and
no breakdown probes them per customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Max, Min
from django.utils import timezone

from core.db.sql_time import comparable, shifted
from experiments.models import Assignment, Experiment, Metric
from marketing.attribute_history import attributes_current_at, version_join_sql
from marketing.behaviour import behaviour_metric_parse, behaviour_metric_sql
from marketing.models import Customer, Event
from marketing.segment_rules import segment_rule_condition, segment_rule_metrics


@dataclass(frozen=True)
class MetricSums:
    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float

    def __add__(self, other: MetricSums) -> MetricSums:
        return MetricSums(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple:
        return (self.n, self.sum_y, self.sum_y2, self.sum_x, self.sum_x2, self.sum_xy)


# {arm id: {metric name: MetricSums}}
ArmCells = dict[int, dict[str, MetricSums]]
# {group value: ArmCells}; group is None when ungrouped.
OutcomeTable = dict[object, ArmCells]


@dataclass
class OutcomeBreakdowns:
    """Everything an analysis reads: the whole experiment and each breakdown."""

    overall: ArmCells = field(default_factory=dict)
    segments: dict[str, ArmCells] = field(default_factory=dict)  # key -> members' cells
    attributes: dict[str, OutcomeTable] = field(default_factory=dict)  # key -> value -> cells


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _attribute_sql(key: str, table: str | None = None) -> tuple[str, list]:
    """The attribute's value as text, the same on both databases ('true', 'web', '3').

    Read from ``table`` (default: the customer table) by its name or alias.
    """
    column = f"{_q(table or Customer._meta.db_table)}.attributes"
    if connection.vendor == "postgresql":
        return f"{column} ->> %s", [key]
    path = f"$.{key}"
    return (f"CASE json_type({column}, %s) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"ELSE CAST(json_extract({column}, %s) AS TEXT) END"), [path, path]


def _at(value: datetime):
    """A datetime parameter compared with a stored column, as the ORM would pass it."""
    return connection.ops.adapt_datetimefield_value(value)


def _per_assignment_sql(experiment: Experiment, metrics: Sequence[Metric], *,
                        behaviour: Sequence[str] = (),
                        as_of: datetime | None = None) -> tuple[str, list]:
    """One row per assignment: customer_id, arm_id, y0, x0, y1, x1, ... and behaviour.

    ``behaviour`` names behavioural metrics (``purchases_90d``...) to compute
    as of ``as_of`` in the same pass, as columns of those names.
    """
    window = experiment.attribution_window_days
    event, assigned = comparable("e.occurred_at"), comparable("a.assigned_at")
    start, start_params = shifted("a.assigned_at", -window)
    end, end_params = shifted("a.assigned_at", window)
    post = (f"{event} >= {assigned} AND {event} < {end}", end_params)
    pre = (f"{event} >= {start} AND {event} < {assigned}", start_params)
    columns, params = [], []
    for i, metric in enumerate(metrics):
        value = "e.value" if metric.aggregation == Metric.Aggregation.SUM else "1"
        for side, (condition, condition_params) in (("y", post), ("x", pre)):
            total = f"SUM(CASE WHEN e.kind = %s AND {condition} THEN {value} ELSE 0 END)"
            if metric.aggregation == Metric.Aggregation.CONVERTED:
                total = f"CASE WHEN {total} > 0 THEN 1 ELSE 0 END"
            columns.append(f"{total} AS {side}{i}")
            params += [metric.event_kind, *condition_params]
    kinds = {m.event_kind for m in metrics}
    # Events join when they fall in the customer's window or, for behavioural
    # metrics, in the one window before as_of.
    windows = [(f"{event} >= {start} AND {event} < {end}", [*start_params, *end_params])]
    behaviour_start = None
    if behaviour:
        as_of = as_of or timezone.now()
        parsed = sorted({behaviour_metric_parse(name) for name in behaviour},
                        key=lambda m: m.name)
        for metric in parsed:
            value, value_params = behaviour_metric_sql(metric, as_of, event="e")
            columns.append(f"{value} AS {_q(metric.name)}")
            params += value_params
        kinds |= {m.kind for m in parsed}
        # The longest window holds every other one (they all end at as_of).
        behaviour_start, _ = max(parsed, key=lambda m: m.window_days).window(as_of)
        windows.append(("e.occurred_at >= %s AND e.occurred_at < %s",
                        [_at(behaviour_start), _at(as_of)]))
    joined_sql = " OR ".join(f"({condition})" for condition, _ in windows)
    joined_params = [p for _, window_params in windows for p in window_params]
    # Constant bounds on occurred_at let the database drop most events before
    # the join instead of testing each against its customer's window.
    bounds = experiment.assignments.aggregate(first=Min("assigned_at"), last=Max("assigned_at"))
    if bounds["first"] is not None:
        low = bounds["first"] - timedelta(days=window)
        high = bounds["last"] + timedelta(days=window)
        if behaviour_start is not None:
            low, high = min(low, behaviour_start), max(high, as_of)
        joined_sql = f"e.occurred_at >= %s AND e.occurred_at < %s AND ({joined_sql})"
        joined_params = [_at(low), _at(high), *joined_params]
    sql = f"""
        SELECT a.customer_id, a.arm_id, {", ".join(columns)}
        FROM {_q(Assignment._meta.db_table)} a
        LEFT JOIN {_q(Event._meta.db_table)} e ON e.customer_id = a.customer_id
            AND e.kind IN ({", ".join(["%s"] * len(kinds))}) AND ({joined_sql})
        WHERE a.experiment_id = %s
        GROUP BY a.id, a.customer_id, a.arm_id
    """
    return sql, [*params, *sorted(kinds), *joined_params, experiment.id]


def outcome_breakdowns(
    experiment: Experiment,
    metrics: Sequence[Metric] | None = None,
    *,
    attributes: Sequence[str] = (),
    segments: Mapping[str, dict] | None = None,
    as_of: datetime | None = None,
) -> OutcomeBreakdowns:
    """Sufficient statistics overall, per segment (key -> rule) and per attribute value.

    Segment rules and attribute values are evaluated as of ``as_of``
    (default: now): behavioural metrics computed in the same pass, and
    attributes and consent from each customer's attribute version valid at
    ``as_of`` (marketing.attribute_history), joined once; when none changed
    since, from the customer row. The analysis passes the experiment's start.
    """
    metrics = list(metrics if metrics is not None else experiment.metrics.order_by("id"))
    if not metrics:
        raise ValueError(f"experiment {experiment.key} has no metrics")
    segments = dict(segments or {})
    as_of = as_of or timezone.now()
    behaviour = sorted(set().union(*(segment_rule_metrics(r) for r in segments.values())))
    inner, inner_params = _per_assignment_sql(experiment, metrics, behaviour=behaviour,
                                              as_of=as_of)
    customers = _q(Customer._meta.db_table)
    # Attributes and consent as they were at as_of: one join of the versions valid then.
    versions, join, join_params = None, "", []
    if (attributes or segments) and not attributes_current_at(as_of):
        versions = "v"
        join, join_params = version_join_sql(versions, "p.customer_id", as_of)
    keys, key_params = [], []
    for key in attributes:
        expression, p = _attribute_sql(key, versions)
        keys.append(expression)
        key_params += p
    for rule in segments.values():
        # The behavioural metrics the rule reads are columns of p.
        condition, p = segment_rule_condition(rule, as_of=as_of, behaviour="p",
                                              versions=versions)
        keys.append(f"CASE WHEN {condition} THEN 1 ELSE 0 END")
        key_params += p
    sums = [f"SUM(p.y{i}), SUM(p.y{i} * p.y{i}), SUM(p.x{i}), SUM(p.x{i} * p.x{i}), "
            f"SUM(p.x{i} * p.y{i})" for i in range(len(metrics))]
    # One GROUP BY over every combination of breakdown values: the cells are
    # few (arms x attribute values x segment flags) and sums add up, so each
    # breakdown is a roll-up of these cells, done below without another scan.
    sql = f"""
        SELECT {", ".join(["p.arm_id", *keys, "COUNT(*)", *sums])}
        FROM ({inner}) p JOIN {customers} ON {customers}.id = p.customer_id {join}
        GROUP BY {", ".join(str(k) for k in range(1, len(keys) + 2))}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*key_params, *inner_params, *join_params])
        rows = cursor.fetchall()
    attribute_columns = [f"g{k}" for k in range(len(attributes))]
    segment_columns = [f"s{k}" for k in range(len(segments))]
    values = ["n", *(f"v{j}" for j in range(5 * len(metrics)))]
    cells = pd.DataFrame(rows, columns=["arm_id", *attribute_columns, *segment_columns, *values])
    cells[values] = cells[values].astype("float64")

    def per_arm(frame: pd.DataFrame) -> ArmCells:
        totals = frame.groupby("arm_id")[values].sum()
        return {int(arm_id): _metric_sums(row, metrics) for arm_id, row in totals.iterrows()}

    result = OutcomeBreakdowns(overall=per_arm(cells))
    for key, column in zip(segments, segment_columns, strict=True):
        result.segments[key] = per_arm(cells[cells[column] == 1])
    for key, column in zip(attributes, attribute_columns, strict=True):
        missing = cells[column].isna()
        result.attributes[key] = {
            group: per_arm(frame) for group, frame in cells[~missing].groupby(column)}
        if missing.any():  # customers without the attribute form the None group
            result.attributes[key][None] = per_arm(cells[missing])
    return result


def _metric_sums(row: pd.Series, metrics: Sequence[Metric]) -> dict[str, MetricSums]:
    n = int(row["n"])
    return {metric.name: MetricSums(n, *(float(row[f"v{5 * i + j}"]) for j in range(5)))
            for i, metric in enumerate(metrics)}


def outcome_sums(
    experiment: Experiment,
    metrics: Sequence[Metric] | None = None,
    *,
    segment_rule: dict | None = None,
    group_by_attribute: str | None = None,
    as_of: datetime | None = None,
) -> OutcomeTable:
    """Sufficient statistics per (group, arm, metric) for a single breakdown."""
    result = outcome_breakdowns(
        experiment, metrics, as_of=as_of,
        attributes=[group_by_attribute] if group_by_attribute else [],
        segments={"subset": segment_rule} if segment_rule is not None else {})
    if group_by_attribute:
        return result.attributes[group_by_attribute]
    cells = result.segments["subset"] if segment_rule is not None else result.overall
    return {None: cells} if cells else {}


@dataclass(frozen=True)
class OutcomeRows:
    """Per assigned customer, ordered by customer id: for training, not for analysis."""

    customer_ids: np.ndarray
    arm_ids: np.ndarray
    y: np.ndarray


def outcome_rows(experiment: Experiment, metric: Metric) -> OutcomeRows:
    """The metric's outcome for every assigned customer (one row each)."""
    sql, params = _per_assignment_sql(experiment, [metric])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT customer_id, arm_id, y0 FROM ({sql}) o ORDER BY customer_id",
                       params)
        data = np.array(cursor.fetchall(), dtype=np.float64).reshape(-1, 3)
    return OutcomeRows(customer_ids=data[:, 0].astype(np.int64),
                       arm_ids=data[:, 1].astype(np.int64), y=data[:, 2])


def assignment_cutoffs(experiment_id: int) -> tuple[str, list]:
    """Training rows for marketing.features: each assigned customer as of their assignment."""
    table = _q(Assignment._meta.db_table)
    return (f"SELECT customer_id, assigned_at AS cutoff FROM {table} WHERE experiment_id = %s",
            [experiment_id])


@dataclass(frozen=True)
class OfferCosts:
    """What sending one offer costs: once per contact, and once per converting customer."""

    cost_per_contact: float
    cost_per_conversion: float = 0.0


@dataclass(frozen=True)
class ProfitCell:
    """Sums over the customers of one arm who were sent one offer (None: not contacted)."""

    n: int
    sum_profit: float
    sum_profit2: float
    conversions: float
    value: float


def outcome_profit_cells(
    experiment: Experiment, *, value_metric: Metric, value_per_unit: float,
    offer_sql: str, offer_params: Sequence, costs: Mapping[str, OfferCosts],
    default_costs: OfferCosts,
) -> dict[tuple[int, str | None], ProfitCell]:
    """Profit sums per (arm id, offer sent), computed in the database.

    For every assignment, over the attribution window after assignment::

        value      = y(value_metric) * value_per_unit
        converted  = 1 if the customer had an event of value_metric's kind, else 0
        profit     = value - c_contact(offer) - c_conversion(offer) * converted

    where ``offer`` is ``offer_sql``, an SQL expression over the
    per-assignment columns ``p.customer_id`` and ``p.arm_id`` that names the
    offer the customer was sent or is NULL (not contacted: no cost). Offers
    missing from ``costs`` cost ``default_costs``. The database sums n,
    Σprofit, Σprofit², Σconverted and Σvalue per (arm, offer); the arm's
    sufficient statistics are the sums over its offers.
    """
    converted = Metric(name="converted", event_kind=value_metric.event_kind,
                       aggregation=Metric.Aggregation.CONVERTED)
    inner, inner_params = _per_assignment_sql(experiment, [value_metric, converted])
    offers = sorted(costs)

    def cost_case(attribute: str) -> tuple[str, list]:
        whens = " ".join("WHEN r.offer = %s THEN %s" for _ in offers)
        params = [v for offer in offers for v in (offer, float(getattr(costs[offer], attribute)))]
        return (f"(CASE WHEN r.offer IS NULL THEN 0 {whens} ELSE %s END)",
                [*params, float(getattr(default_costs, attribute))])

    contact_sql, contact_params = cost_case("cost_per_contact")
    conversion_sql, conversion_params = cost_case("cost_per_conversion")
    sql = f"""
        SELECT o.arm_id, o.offer, COUNT(*), SUM(o.profit), SUM(o.profit * o.profit),
               SUM(o.converted), SUM(o.value)
        FROM (
            SELECT r.arm_id, r.offer, r.value, r.converted,
                   r.value - {contact_sql} - {conversion_sql} * r.converted AS profit
            FROM (
                SELECT p.arm_id, ({offer_sql}) AS offer, p.y0 * %s AS value, p.y1 AS converted
                FROM ({inner}) p
            ) r
        ) o
        GROUP BY o.arm_id, o.offer
    """
    params = [*contact_params, *conversion_params, *offer_params, float(value_per_unit),
              *inner_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {(int(arm_id), offer): ProfitCell(int(n), float(s), float(s2), float(c), float(v))
            for arm_id, offer, n, s, s2, c, v in rows}
