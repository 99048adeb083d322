"""Every behavioural metric has one value, whichever path computes it.

The paths: the segment-rule subquery (marketing.behaviour through
marketing.segment_rules), the breakdown SQL (experiments.outcomes: the
metrics as columns of one pass over the events, rules read from them) and
the feature builder's numpy windows (marketing.features, from events and
from a behaviour snapshot). The events sit on the window edges: exactly N
days before the cutoff (in), a second or a millisecond further back (out),
exactly at the cutoff (out) and a millisecond before it (in).
"""

from datetime import timedelta

import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from experiments.models import Assignment
from experiments.outcomes import _per_assignment_sql, outcome_breakdowns
from marketing.behaviour import (
    Aggregation,
    BehaviourMetric,
    behaviour_metric_expression,
    behaviour_metric_parse,
    behaviour_metrics_of_window,
)
from marketing.behaviour_snapshots import behaviour_snapshot_build
from marketing.features import FeatureSpec, features_build, fixed_cutoff
from marketing.models import Customer, Event
from marketing.segment_rules import segment_members, segment_rule_validate
from tests.factories import T0, customer_make, event_make, experiment_make

pytestmark = pytest.mark.django_db
DAY, SECOND, MS = timedelta(days=1), timedelta(seconds=1), timedelta(milliseconds=1)
WINDOWS = (30, 90)
# Every metric of the grammar (each aggregation of each kind) for both windows.
METRICS = [m for days in WINDOWS for m in behaviour_metrics_of_window(days)]


@pytest.fixture
def people():
    people = {name: customer_make() for name in ("ann", "bob", "cyd", "dee", "eve")}
    for name, kind, at, value in [
        ("ann", "purchase", T0 - 30 * DAY, 7.0),  # exactly at the 30-day window's start
        ("ann", "purchase", T0, 100.0),  # exactly at the cutoff: after it
        ("ann", "purchase", T0 - 90 * DAY, 11.0),  # exactly at the 90-day window's start
        ("ann", "visit", T0 - MS, 0.0),  # just before the cutoff
        ("bob", "purchase", T0 - 30 * DAY - SECOND, 5.0),  # just outside 30 days
        ("bob", "purchase", T0 - 90 * DAY - SECOND, 13.0),  # just outside 90 days
        ("bob", "email_open", T0 - 90 * DAY, 0.0),
        ("bob", "cart_add", T0 - 12 * timedelta(hours=1), 0.0),
        # cyd: no events at all
        ("dee", "purchase", T0 + DAY, 50.0),
        ("dee", "unsubscribe", T0 - 45 * DAY, 0.0),
        ("dee", "email_click", T0 - 30 * DAY, 0.0),
        ("eve", "purchase", T0 - 2 * DAY, 12.5),
        ("eve", "purchase", T0 - 29 * DAY, 0.25),
        ("eve", "visit", T0 - 30 * DAY - MS, 0.0),
    ]:
        event_make(people[name], kind, at, value)
    # Delivered long ago: a snapshot built below does not take them for late ones.
    Event.objects.update(received_at=T0 - 600 * DAY)
    return people


def _by_name(people, values: dict[int, float]) -> dict[str, float]:
    return {name: values[c.id] for name, c in people.items()}


def from_features(people, snapshot_age: timedelta | None = None) -> dict[str, dict]:
    """{metric name: {person: value}} from the feature builder, for every metric."""
    found = {}
    # One spec per longest window: days_since uses the spec's longest window.
    for spec in (FeatureSpec(kinds=tuple(Event.Kind.values), windows=WINDOWS),
                 FeatureSpec(kinds=tuple(Event.Kind.values), windows=(30,))):
        snapshot = None
        if snapshot_age is not None:
            snapshot = behaviour_snapshot_build(spec, as_of=T0 - snapshot_age)
        chunks = list(features_build(spec=spec, source=fixed_cutoff(T0), snapshot=snapshot,
                                     chunk_size=2))
        ids = [int(i) for c in chunks for i in c.customer_ids]
        frame = pd.concat([c.frame for c in chunks], ignore_index=True)
        for column, metric in spec.behaviour_metrics.items():
            found[metric.name] = _by_name(people, dict(zip(ids, frame[column], strict=True)))
    return found


def from_segment_rule_sql(people) -> dict[str, dict]:
    """The correlated subquery segment rules filter on, per customer."""
    found = {}
    for metric in METRICS:
        rows = Customer.objects.annotate(v=behaviour_metric_expression(metric, T0))
        found[metric.name] = _by_name(people, dict(rows.values_list("id", "v")))
    return found


def from_breakdown_sql(people) -> dict[str, dict]:
    """The columns experiments.outcomes computes in its one pass over the events."""
    experiment = experiment_make()
    arm = experiment.arms.first()
    for customer in people.values():
        Assignment.objects.create(experiment=experiment, customer=customer, arm=arm,
                                  assigned_at=T0)
    names = [m.name for m in METRICS]
    sql, params = _per_assignment_sql(experiment, list(experiment.metrics.all()),
                                      behaviour=names, as_of=T0)
    columns = ", ".join(f"p.{connection.ops.quote_name(n)}" for n in names)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT p.customer_id, {columns} FROM ({sql}) p", params)
        rows = cursor.fetchall()
    return {name: _by_name(people, {row[0]: row[1 + i] for row in rows})
            for i, name in enumerate(names)}


def test_the_metrics_have_the_hand_computed_values_at_the_window_edges(people):
    values = from_features(people)
    assert values["purchases_30d"] == {"ann": 1, "bob": 0, "cyd": 0, "dee": 0, "eve": 2}
    assert values["purchases_90d"] == {"ann": 2, "bob": 1, "cyd": 0, "dee": 0, "eve": 2}
    assert values["revenue_30d"] == {"ann": 7.0, "bob": 0, "cyd": 0, "dee": 0, "eve": 12.75}
    assert values["revenue_90d"] == {"ann": 18.0, "bob": 5.0, "cyd": 0, "dee": 0, "eve": 12.75}
    # None in the window: N + 1 days.
    assert values["days_since_purchase_30d"] == {"ann": 30, "bob": 31, "cyd": 31, "dee": 31,
                                                 "eve": 2}
    assert values["days_since_purchase_90d"]["bob"] == 30 + 1 / 86_400
    assert values["days_since_visit_30d"]["ann"] == 1 / 86_400_000
    assert values["days_since_visit_30d"]["eve"] == 31
    assert values["days_since_visit_90d"]["eve"] == 30 + 1 / 86_400_000
    assert values["email_opens_90d"]["bob"] == 1 and values["email_opens_30d"]["bob"] == 0
    assert values["email_clicks_30d"]["dee"] == 1
    assert values["days_since_unsubscribe_90d"]["dee"] == 45


def test_every_metric_has_the_same_value_through_every_path(people):
    features = from_features(people)
    paths = {
        "segment rule SQL": from_segment_rule_sql(people),
        "breakdown SQL": from_breakdown_sql(people),
        "features from a snapshot": from_features(people, snapshot_age=5 * DAY),
    }
    # The builder answers every metric the grammar names, nothing else.
    assert set(features) == {m.name for m in METRICS}
    assert len(METRICS) == 2 * (2 * len(Event.Kind.values) + 1)
    for path, values in paths.items():
        for metric in METRICS:
            # Whole milliseconds: equal to the last bit, not approximately.
            assert values[metric.name] == features[metric.name], (path, metric.name)


def test_segment_rules_select_the_customers_the_features_describe(people):
    """Per metric and value, {"metric": m, "op": "eq", "value": v} selects the
    customers whose feature is v: alone (segment_members) and in bulk, as an
    analysis breakdown evaluates rules on the one-pass columns."""
    features = from_features(people)
    rules, expected = {}, {}
    for metric in METRICS:
        for value in set(features[metric.name].values()):
            rule = {"metric": metric.name, "op": "eq", "value": float(value)}
            segment_rule_validate(rule)
            key = f"{metric.name}={float(value)!r}"
            rules[key] = rule
            expected[key] = {p for p, v in features[metric.name].items() if v == value}
            members = set(segment_members(rule, as_of=T0).values_list("id", flat=True))
            assert {p for p, c in people.items() if c.id in members} == expected[key], key
    experiment = experiment_make()
    control, email = experiment.arms.order_by("id")
    for i, customer in enumerate(people.values()):
        Assignment.objects.create(experiment=experiment, customer=customer,
                                  arm=control if i % 2 else email, assigned_at=T0)
    result = outcome_breakdowns(experiment, segments=rules, as_of=T0)
    for key in rules:
        n = sum(cells["purchase"].n for cells in result.segments[key].values())
        assert n == len(expected[key]), key


@pytest.mark.parametrize("name", ["likes_9d", "revenue_30", "purchases_d", "days_since_purchase",
                                  "visit_30d", "revenues_30d", "Purchases_90d", "purchases_12345d"])
def test_an_unknown_metric_name_is_refused_naming_it(name):
    with pytest.raises(ValueError, match=f"unknown behavioural metric '{name}'"):
        behaviour_metric_parse(name)


def test_an_unknown_metric_is_refused_by_rules_and_breakdowns_naming_it(people):
    rule = {"all": [{"metric": "purchases_90d", "op": "gte", "value": 1},
                    {"metric": "likes_9d", "op": "gt", "value": 0}]}
    with pytest.raises(ValidationError) as caught:
        segment_rule_validate(rule)
    assert "likes_9d" in str(caught.value.message_dict["rule.all[1].metric"])
    experiment = experiment_make()
    with pytest.raises(ValueError, match="'likes_9d'"):
        outcome_breakdowns(experiment, segments={"bad": rule}, as_of=T0)


def test_a_metric_is_its_name():
    for metric in METRICS:
        assert behaviour_metric_parse(metric.name) == metric
    assert behaviour_metric_parse("days_since_email_open_365d") == BehaviourMetric(
        "email_open", Aggregation.DAYS_SINCE, 365)
    assert behaviour_metric_parse("revenue_7d") == BehaviourMetric("purchase", "sum", 7)
    with pytest.raises(ValueError, match="no sum metric of 'visit' events"):
        BehaviourMetric("visit", Aggregation.SUM, 30)
