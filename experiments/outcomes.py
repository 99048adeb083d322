"""Per-arm sufficient statistics of experiment metrics, computed in the database.

For every assignment and metric, in one pass over the events:

    y = aggregate of the metric's events in [assigned_at, assigned_at + W)
    x = the same aggregate in [assigned_at - W, assigned_at)   (CUPED covariate)

where W is the attribution window and the aggregate is 1/0 for "converted",
the number of events for "count" and the sum of event value for "sum". The
database then sums per arm (and per group) n, Σy, Σy², Σx, Σx², Σxy, which is
all the statistics engine needs; no per-customer row reaches Python.

The pass over the events happens once per analysis: ``outcome_snapshot``
stores the per-assignment (y, x) values in a temporary table, and every
breakdown (segments, attribute values) aggregates that table instead of
scanning the events again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


def _per_assignment_sql(experiment: Experiment, metrics: Sequence[Metric]) -> tuple[str, list]:
    """One row per assignment: customer_id, arm_id, y0, x0, y1, x1, ..."""
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
    kinds = sorted({m.event_kind for m in metrics})
    sql = f"""
        SELECT a.customer_id, a.arm_id, {", ".join(per_customer)}
        FROM {_q(Assignment._meta.db_table)} a
        LEFT JOIN {_q(Event._meta.db_table)} e ON e.customer_id = a.customer_id
            AND e.kind IN ({", ".join(["%s"] * len(kinds))}) AND {within}
        WHERE a.experiment_id = %s
        GROUP BY a.id, a.customer_id, a.arm_id
    """
    return sql, [*params, *kinds, *window_params, experiment.id]


class OutcomeSnapshot:
    """Per-assignment outcomes of some metrics, held in a temporary table."""

    def __init__(self, table: str, metrics: Sequence[Metric]):
        self.table = table
        self.metrics = list(metrics)

    def sums(self, *, customers: QuerySet[Customer] | None = None,
             group_by_attribute: str | None = None) -> OutcomeTable:
        """Sufficient statistics per (group, arm, metric).

        ``customers`` restricts to a subset (a segment's members);
        ``group_by_attribute`` splits by a customer attribute's value.
        """
        group_sql, params, join = "NULL", [], ""
        if group_by_attribute:
            group_sql, params = _attribute_sql(group_by_attribute)
            join = f"JOIN {_q(Customer._meta.db_table)} c ON c.id = t.customer_id"
        where = ""
        if customers is not None:
            sub_sql, sub_params = customers.values("id").query.sql_with_params()
            where = f"WHERE t.customer_id IN ({sub_sql})"
            params = [*params, *sub_params]
        sums = ", ".join(
            f"SUM(y{i}), SUM(y{i} * y{i}), SUM(x{i}), SUM(x{i} * x{i}), SUM(x{i} * y{i})"
            for i in range(len(self.metrics)))
        sql = (f"SELECT {group_sql} AS grp, t.arm_id, COUNT(*), {sums} "
               f"FROM {self.table} t {join} {where} GROUP BY grp, t.arm_id")
        table: OutcomeTable = defaultdict(dict)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for group, arm_id, n, *values in cursor.fetchall():
                table[group][arm_id] = {
                    metric.name: MetricSums(int(n), *(float(v or 0.0)
                                                      for v in values[5 * i: 5 * i + 5]))
                    for i, metric in enumerate(self.metrics)
                }
        return dict(table)

    def rows(self, metric_index: int = 0) -> OutcomeRows:
        """Every assigned customer's outcome, in customer-id order (for training)."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT customer_id, arm_id, y{int(metric_index)} FROM {self.table} "
                           f"ORDER BY customer_id")
            data = np.array(cursor.fetchall(), dtype=np.float64).reshape(-1, 3)
        return OutcomeRows(customer_ids=data[:, 0].astype(np.int64),
                           arm_ids=data[:, 1].astype(np.int64), y=data[:, 2])


@contextmanager
def outcome_snapshot(experiment: Experiment,
                     metrics: Sequence[Metric] | None = None) -> Iterator[OutcomeSnapshot]:
    """One pass over the events into a temporary table, dropped on exit."""
    metrics = list(metrics if metrics is not None else experiment.metrics.order_by("id"))
    if not metrics:
        raise ValueError(f"experiment {experiment.key} has no metrics")
    table = f"tmp_outcomes_{uuid.uuid4().hex[:16]}"
    sql, params = _per_assignment_sql(experiment, metrics)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} AS {sql}", params)
        cursor.execute(f"CREATE INDEX {table}_customer ON {table} (customer_id)")
    try:
        yield OutcomeSnapshot(table, metrics)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


def outcome_sums(
    experiment: Experiment,
    metrics: Sequence[Metric] | None = None,
    *,
    customers: QuerySet[Customer] | None = None,
    group_by_attribute: str | None = None,
) -> OutcomeTable:
    """Sufficient statistics per (group, arm, metric) for a single breakdown."""
    with outcome_snapshot(experiment, metrics) as snapshot:
        return snapshot.sums(customers=customers, group_by_attribute=group_by_attribute)


@dataclass(frozen=True)
class OutcomeRows:
    """Per assigned customer, ordered by customer id: for training, not for analysis."""

    customer_ids: np.ndarray
    arm_ids: np.ndarray
    y: np.ndarray


def outcome_rows(experiment: Experiment, metric: Metric) -> OutcomeRows:
    """The metric's outcome for every assigned customer (one row each)."""
    with outcome_snapshot(experiment, [metric]) as snapshot:
        return snapshot.rows()
