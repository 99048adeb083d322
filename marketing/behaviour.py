"""Behavioural metrics: the one definition of each, and every form it is read in.

A behavioural metric aggregates one kind of a customer's events over the
window ``[cutoff - N days, cutoff)``: an event exactly N days before the
cutoff counts, one at the cutoff instant does not (it belongs to what
happens after the cutoff). ``BehaviourMetric(kind, aggregation,
window_days)`` is that definition; its name follows one grammar, shared by
segment rules, breakdowns, features and the admin:

- ``<kind>s_<N>d``  COUNT: the number of events of the kind
  (``purchases_90d``, ``visits_30d``, ``email_opens_365d``);
- ``revenue_<N>d``  SUM: the sum of purchase value (``VALUE_SUMS`` names
  each valued kind's sum);
- ``days_since_<kind>_<N>d``  DAYS_SINCE: days from the latest event of the
  kind in the window to the cutoff, ``N + 1`` when there is none.

Every form is generated from the definition here; nothing else knows what a
name means:

- ``behaviour_metric_sql``: an aggregate over joined event rows, for a query
  that groups a population's events by customer (experiments.outcomes);
- ``behaviour_metric_expression``: the same aggregate as a correlated
  subquery per customer, an ORM expression (segment rules);
- ``behaviour_metric_column``: the metric read from a column that the
  enclosing query computed with ``behaviour_metric_sql``;
- ``BehaviourMetric.contains`` / ``event_weights`` / ``days_since``: the
  numpy form over event ages in microseconds before each customer's cutoff
  (marketing.features and its behaviour snapshots); ``0 < age <= N days`` is
  the window above.

Adding a metric: a new kind or window needs nothing (the grammar covers
every ``Event.Kind`` and any N). A sum over another valued kind is one entry
in ``VALUE_SUMS``. A new aggregation is a member of ``Aggregation`` with its
name stem in ``_stem``, its SQL in ``behaviour_metric_sql`` and its numpy
form on ``BehaviourMetric`` (plus, to become a feature, a column in
``marketing.features.FeatureSpec``).
tests/experiments/test_behaviour_metrics.py computes every metric through
the segment-rule SQL, the breakdown SQL and the feature builder on events at
the window edges and requires the same values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
from django.db import connection
from django.db.models import Expression, F, FloatField, IntegerField
from django.db.models.expressions import RawSQL

from core.db.sql_time import days_between, instant
from marketing.models import Event

US_PER_DAY = 86_400_000_000


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"
    DAYS_SINCE = "days_since"


# The sum of event value of a kind, by name: only purchases carry a value.
VALUE_SUMS = {Event.Kind.PURCHASE.value: "revenue"}


def _stem(kind: str, aggregation: Aggregation) -> str:
    """The name of a metric without its window."""
    if aggregation == Aggregation.COUNT:
        return f"{kind}s"
    if aggregation == Aggregation.SUM:
        return VALUE_SUMS[kind]
    return f"days_since_{kind}"


def _kinds(aggregation: Aggregation) -> list[str]:
    return list(VALUE_SUMS) if aggregation == Aggregation.SUM else list(Event.Kind.values)


# Every stem the grammar knows -> (kind, aggregation); the parser's only table.
_STEMS = {_stem(kind, aggregation): (kind, aggregation)
          for aggregation in Aggregation for kind in _kinds(aggregation)}
_NAME = re.compile(r"^(?P<stem>[a-z_]+?)_(?P<days>\d{1,4})d$")


@dataclass(frozen=True)
class BehaviourMetric:
    """One kind of event aggregated over ``[cutoff - window_days days, cutoff)``."""

    kind: str
    aggregation: Aggregation
    window_days: int

    def __post_init__(self) -> None:
        aggregation = Aggregation(self.aggregation)
        object.__setattr__(self, "aggregation", aggregation)
        if self.kind not in _kinds(aggregation):
            raise ValueError(f"no {aggregation} metric of {self.kind!r} events: "
                             f"kinds {_kinds(aggregation)}")
        if not 0 <= self.window_days <= 9999:
            raise ValueError(f"window of {self.window_days} days: 0 to 9999")

    @property
    def name(self) -> str:
        return f"{_stem(self.kind, self.aggregation)}_{self.window_days}d"

    @property
    def empty(self) -> float:
        """The value without any event in the window."""
        return self.window_days + 1 if self.aggregation == Aggregation.DAYS_SINCE else 0

    def window(self, cutoff: datetime) -> tuple[datetime, datetime]:
        """``(start, end)``: the events with ``start <= occurred_at < end`` count."""
        return cutoff - timedelta(days=self.window_days), cutoff

    def contains(self, age_us: np.ndarray) -> np.ndarray:
        """Whether events ``age_us`` microseconds before the cutoff are in the window.

        ``[cutoff - N days, cutoff)`` in ages: ``0 < age <= N days`` (NaN: no).
        """
        return (age_us > 0) & (age_us <= self.window_days * US_PER_DAY)

    def event_weights(self, value: np.ndarray) -> np.ndarray | float:
        """What one event in the window adds: 1 to a count, its value to a sum."""
        if self.aggregation == Aggregation.COUNT:
            return 1.0
        if self.aggregation == Aggregation.SUM:
            return value
        raise ValueError(f"{self.name} is not a total of its events")

    def days_since(self, age_us: np.ndarray) -> np.ndarray:
        """The metric from the age (µs, NaN for none) of each customer's latest event of the kind.

        The latest event may lie outside the window (a snapshot's, since
        left): then, as without one, ``N + 1``.
        """
        if self.aggregation != Aggregation.DAYS_SINCE:
            raise ValueError(f"{self.name} is not a days-since metric")
        return np.where(self.contains(age_us), age_us / US_PER_DAY, float(self.empty))

    @property
    def output_field(self):
        return IntegerField() if self.aggregation == Aggregation.COUNT else FloatField()


def behaviour_metrics_of_window(window_days: int) -> list[BehaviourMetric]:
    """Every metric the grammar names with a window of ``window_days``."""
    return [BehaviourMetric(kind, aggregation, window_days)
            for aggregation in Aggregation for kind in _kinds(aggregation)]


def behaviour_metric_parse(name: str) -> BehaviourMetric:
    """The metric a name means; ValueError naming it and the accepted forms when unknown."""
    match = _NAME.match(name) if isinstance(name, str) else None
    if match and match["stem"] in _STEMS:
        kind, aggregation = _STEMS[match["stem"]]
        return BehaviourMetric(kind, aggregation, int(match["days"]))
    raise ValueError(
        f"unknown behavioural metric {name!r}: use <kind>s_<N>d (e.g. purchases_90d), "
        f"{', '.join(f'{stem}_<N>d' for stem in VALUE_SUMS.values())} or "
        f"days_since_<kind>_<N>d, with kind in {sorted(Event.Kind.values)}")


def behaviour_metric_sql(metric: BehaviourMetric, as_of: datetime, *,
                         event: str = "e") -> tuple[str, list]:
    """The metric as an aggregate over the event rows ``event`` of one customer's group.

    Rows of other kinds or times may be in the group (the caller's join
    reads several metrics at once), and a row of NULLs (a LEFT JOIN without
    events) counts as none: each row is tested against the metric's own
    kind and window. No matching row gives ``metric.empty``.
    """
    start, end = metric.window(as_of)
    adapt = connection.ops.adapt_datetimefield_value
    inside = (f"{event}.kind = %s AND {event}.occurred_at >= %s "
              f"AND {event}.occurred_at < %s")
    params = [metric.kind, adapt(start), adapt(end)]
    if metric.aggregation == Aggregation.COUNT:
        return f"COUNT(CASE WHEN {inside} THEN 1 END)", params
    if metric.aggregation == Aggregation.SUM:
        return f"COALESCE(SUM(CASE WHEN {inside} THEN {event}.value END), 0.0)", params
    cutoff, cutoff_params = instant(as_of)
    days = days_between(cutoff, f"MAX(CASE WHEN {inside} THEN {event}.occurred_at END)")
    return (f"COALESCE(CAST({days} AS DOUBLE PRECISION), %s)",
            [*cutoff_params, *params, float(metric.empty)])


class _BehaviourSubquery(Expression):
    """``behaviour_metric_sql`` over one customer's events, correlated on ``customer``.

    The customer is an expression of the enclosing query (its primary key),
    so Django relabels it when that query becomes a subquery in another.
    """

    def __init__(self, metric: BehaviourMetric, as_of: datetime, customer=None):
        super().__init__(output_field=metric.output_field)
        self.metric, self.as_of = metric, as_of
        self.customer = F("pk") if customer is None else customer

    def get_source_expressions(self):
        return [self.customer]

    def set_source_expressions(self, exprs):
        (self.customer,) = exprs

    def as_sql(self, compiler, connection):
        customer, customer_params = compiler.compile(self.customer)
        value, value_params = behaviour_metric_sql(self.metric, self.as_of, event="be")
        start, end = self.metric.window(self.as_of)
        adapt = connection.ops.adapt_datetimefield_value
        # The WHERE repeats the metric's own test so the (customer, kind,
        # occurred_at) index reads only the window's events.
        sql = (f"(SELECT {value} FROM {connection.ops.quote_name(Event._meta.db_table)} be "
               f"WHERE be.customer_id = {customer} AND be.kind = %s "
               f"AND be.occurred_at >= %s AND be.occurred_at < %s)")
        return sql, [*value_params, *customer_params, self.metric.kind, adapt(start), adapt(end)]


def behaviour_metric_expression(metric: BehaviourMetric, as_of: datetime) -> Expression:
    """The metric per customer of a ``Customer`` query, as a correlated subquery."""
    return _BehaviourSubquery(metric, as_of)


def behaviour_metric_column(metric: BehaviourMetric, table: str) -> Expression:
    """The metric read from column ``<table>.<metric name>`` of the enclosing query."""
    column = f"{connection.ops.quote_name(table)}.{connection.ops.quote_name(metric.name)}"
    return RawSQL(column, [], output_field=metric.output_field)
