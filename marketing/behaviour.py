"""Behavioural aggregates over a customer's events, as SQL expressions.

Names follow one grammar so segments, features and the admin agree:

- ``<kind>s_<N>d``  number of events of that kind in the N days before
  ``as_of`` (e.g. ``purchases_90d``, ``visits_30d``, ``email_opens_365d``)
- ``revenue_<N>d``  sum of purchase value in the N days before ``as_of``

Windows are half-open, ``[as_of - N days, as_of)``, so an event at the cutoff
instant is not counted: it belongs to what happens after the cutoff.

Two ways to read the same metric: ``behaviour_metric_expression`` is a
correlated subquery (right for a few customers, or one at a time);
``behaviour_metric_column`` reads a column of that name which the caller's
query computed for a whole population in one GROUP BY over the events (how
experiments.outcomes evaluates segment rules for a million customers, where
a subquery per customer would cost one index probe each).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Expression, FloatField, IntegerField, OuterRef, Subquery, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from marketing.models import Event

_COUNT = re.compile(r"^(?P<kind>[a-z_]+?)s_(?P<days>\d{1,4})d$")
_REVENUE = re.compile(r"^revenue_(?P<days>\d{1,4})d$")
_KINDS = set(Event.Kind.values)


@dataclass(frozen=True)
class BehaviourMetric:
    name: str
    kind: str
    days: int
    aggregate: str  # "count" or "sum"


def behaviour_metric_parse(name: str) -> BehaviourMetric:
    """Parse a metric name; ValueError with the accepted forms when unknown."""
    match = _REVENUE.match(name)
    if match:
        return BehaviourMetric(name, Event.Kind.PURCHASE, int(match["days"]), "sum")
    match = _COUNT.match(name)
    if match and match["kind"] in _KINDS:
        return BehaviourMetric(name, match["kind"], int(match["days"]), "count")
    raise ValueError(
        f"unknown behavioural metric {name!r}: use <kind>s_<N>d with kind in "
        f"{sorted(_KINDS)} (e.g. purchases_90d) or revenue_<N>d"
    )


def behaviour_metric_expression(metric: BehaviourMetric, as_of: datetime) -> Expression:
    """A correlated subquery giving the metric per customer (0 when no events)."""
    events = Event.objects.filter(
        customer=OuterRef("pk"),
        kind=metric.kind,
        occurred_at__gte=as_of - timedelta(days=metric.days),
        occurred_at__lt=as_of,
    ).values("customer")
    if metric.aggregate == "count":
        value = events.annotate(v=Count("id")).values("v")
        return Coalesce(Subquery(value, output_field=IntegerField()), 0)
    value = events.annotate(v=Sum("value")).values("v")
    return Coalesce(Subquery(value, output_field=FloatField()), 0.0)


def _output_field(metric: BehaviourMetric):
    return IntegerField() if metric.aggregate == "count" else FloatField()


def behaviour_metric_column(metric: BehaviourMetric, table: str) -> Expression:
    """The metric read from column ``<table>.<metric name>`` of the enclosing query."""
    column = f"{connection.ops.quote_name(table)}.{connection.ops.quote_name(metric.name)}"
    return RawSQL(column, [], output_field=_output_field(metric))

