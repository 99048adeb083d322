"""Per-arm sufficient statistics of experiment metrics, computed in the database.

For every assignment and metric, in one pass over the events:

    y = aggregate of the metric's events in [assigned_at, assigned_at + W)
    x = the same aggregate in [assigned_at - W, assigned_at)   (CUPED covariate)

where W is the attribution window and the aggregate is 1/0 for "converted",
the number of events for "count" and the sum of event value for "sum". The
database then sums per arm (and per group) n, Σy, Σy², Σx, Σx², Σxy, which is
all the statistics engine needs; no per-customer row reaches Python.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import QuerySet

from experiments.models import Assignment, Experiment, Metric
from marketing.models import Customer, Event
from marketing.sql_time import comparable, shifted


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


# {group value: {arm id: {metric name: MetricSums}}}; group is None when ungrouped.
OutcomeTable = dict[object, dict[int, dict[str, MetricSums]]]


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _window_conditions(window_days: int) -> tuple[str, str, list]:
    """SQL for 'event within W of assignment' and 'event at or after assignment'."""
    start, start_params = shifted("a.assigned_at", -window_days)
    end, end_params = shifted("a.assigned_at", window_days)
    event, assigned = comparable("e.occurred_at"), comparable("a.assigned_at")
    return (f"{event} >= {start} AND {event} < {end}", f"{event} >= {assigned}",
            [*start_params, *end_params])


def _attribute_sql(key: str) -> tuple[str, list]:
    """The attribute's value as text, the same on both databases ('true', 'web', '3')."""
    if connection.vendor == "postgresql":
        return "c.attributes ->> %s", [key]
    path = f"$.{key}"
    return ("CASE json_type(c.attributes, %s) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            "ELSE CAST(json_extract(c.attributes, %s) AS TEXT) END"), [path, path]


def _per_assignment_sql(
    experiment: Experiment, metrics: Sequence[Metric], *,
    customers: QuerySet[Customer] | None, group_by_attribute: str | None,
) -> tuple[str, list]:
    """One row per assignment: id, customer_id, arm_id, grp, y0, x0, y1, x1, ..."""
    within, after, window_params = _window_conditions(experiment.attribution_window_days)
    per_customer, params = [], []
    for i, metric in enumerate(metrics):
        value = "e.value" if metric.aggregation == Metric.Aggregation.SUM else "1"
        for side, condition in (("y", after), ("x", f"NOT ({after})")):
            total = f"SUM(CASE WHEN e.kind = %s AND {condition} THEN {value} ELSE 0 END)"
            if metric.aggregation == Metric.Aggregation.CONVERTED:
                total = f"CASE WHEN {total} > 0 THEN 1 ELSE 0 END"
            per_customer.append(f"{total} AS {side}{i}")
            params.append(metric.event_kind)
    group_sql, group_params, join_customer = "NULL", [], ""
    if group_by_attribute:
        group_sql, group_params = _attribute_sql(group_by_attribute)
        join_customer = f"JOIN {_q(Customer._meta.db_table)} c ON c.id = a.customer_id"
    kinds = sorted({m.event_kind for m in metrics})
    where, where_params = "a.experiment_id = %s", [experiment.id]
    if customers is not None:
        sub_sql, sub_params = customers.values("id").query.sql_with_params()
        where += f" AND a.customer_id IN ({sub_sql})"
        where_params += list(sub_params)
    sql = f"""
        SELECT a.id, a.customer_id, a.arm_id, {group_sql} AS grp, {", ".join(per_customer)}
        FROM {_q(Assignment._meta.db_table)} a
        {join_customer}
        LEFT JOIN {_q(Event._meta.db_table)} e ON e.customer_id = a.customer_id
            AND e.kind IN ({", ".join(["%s"] * len(kinds))}) AND {within}
        WHERE {where}
        GROUP BY a.id, a.customer_id, a.arm_id, grp
    """
    return sql, [*group_params, *params, *kinds, *window_params, *where_params]


def outcome_sums(
    experiment: Experiment,
    metrics: Sequence[Metric] | None = None,
    *,
    customers: QuerySet[Customer] | None = None,
    group_by_attribute: str | None = None,
) -> OutcomeTable:
    """Sufficient statistics per (group, arm, metric) in one SQL query.

    ``customers`` restricts to a subset (a segment's members);
    ``group_by_attribute`` splits by a customer attribute's value.
    """
    metrics = list(metrics if metrics is not None else experiment.metrics.all())
    if not metrics:
        return {}
    inner, params = _per_assignment_sql(experiment, metrics, customers=customers,
                                        group_by_attribute=group_by_attribute)
    sums = ", ".join(
        f"SUM(y{i}), SUM(y{i} * y{i}), SUM(x{i}), SUM(x{i} * x{i}), SUM(x{i} * y{i})"
        for i in range(len(metrics))
    )
    sql = f"SELECT s.grp, s.arm_id, COUNT(*), {sums} FROM ({inner}) s GROUP BY s.grp, s.arm_id"
    table: OutcomeTable = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            group, arm_id, n, *values = row
            table[group][arm_id] = {
                metric.name: MetricSums(int(n), *(float(v or 0.0) for v in values[5 * i: 5 * i + 5]))
                for i, metric in enumerate(metrics)
            }
    return dict(table)


@dataclass(frozen=True)
class OutcomeRows:
    """Per assigned customer, ordered by customer id: for training, not for analysis."""

    customer_ids: np.ndarray
    arm_ids: np.ndarray
    y: np.ndarray


def outcome_rows(experiment: Experiment, metric: Metric) -> OutcomeRows:
    """The metric's outcome for every assigned customer (one row each)."""
    inner, params = _per_assignment_sql(experiment, [metric], customers=None,
                                        group_by_attribute=None)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.customer_id, s.arm_id, s.y0 FROM ({inner}) s "
                       f"ORDER BY s.customer_id", params)
        rows = cursor.fetchall()
    data = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return OutcomeRows(customer_ids=data[:, 0].astype(np.int64),
                       arm_ids=data[:, 1].astype(np.int64), y=data[:, 2])
