"""Outcome sufficient statistics from SQL match a hand computation."""

from datetime import timedelta

import pytest

from experiments.models import Assignment
from experiments.outcomes import MetricSums, outcome_sums
from marketing.models import Customer
from tests.factories import T0, attributes_declare, customer_make, event_make, experiment_make
from tests.marketing.test_segment_rules import HAND_COMPUTED, population  # noqa: F401

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture
def experiment():
    """Control: a, b. Email: c, d. Window 14 days; metrics purchase (converted), revenue (sum)."""
    attributes_declare()
    exp = experiment_make(attribution_window_days=14)
    control, email = exp.arms.order_by("id")
    people = {"a": customer_make(channel="web"), "b": customer_make(channel="phone"),
              "c": customer_make(channel="web"), "d": customer_make(channel="web")}
    for name, arm in [("a", control), ("b", control), ("c", email), ("d", email)]:
        Assignment.objects.create(experiment=exp, customer=people[name], arm=arm, assigned_at=T0)
    purchases = [
        ("a", 2 * DAY, 10.0),     # post
        ("a", -3 * DAY, 4.0),     # pre
        ("b", 15 * DAY, 99.0),    # after the window: ignored
        ("b", -15 * DAY, 99.0),   # before the pre-window: ignored
        ("c", 0 * DAY, 20.0),     # at the assignment instant: post
        ("c", 13 * DAY, 5.0),     # post
        ("c", -1 * DAY, 8.0),     # pre
        ("d", -14 * DAY, 6.0),    # exactly W before: pre
    ]
    for name, offset, value in purchases:
        event_make(people[name], "purchase", T0 + offset, value)
    event_make(people["d"], "visit", T0 + DAY)  # other kind: ignored
    return exp, control, email


def test_it_sums_outcomes_and_pre_period_per_arm(experiment):
    exp, control, email = experiment
    table = outcome_sums(exp)[None]
    # purchase converted: y a=1 b=0 | c=1 d=0 ; x a=1 b=0 | c=1 d=1
    assert table[control.id]["purchase"] == MetricSums(2, 1, 1, 1, 1, 1)
    assert table[email.id]["purchase"] == MetricSums(2, 1, 1, 2, 2, 1)
    # revenue: y a=10 b=0 | c=25 d=0 ; x a=4 b=0 | c=8 d=6
    assert table[control.id]["revenue"] == MetricSums(2, 10, 100, 4, 16, 40)
    assert table[email.id]["revenue"] == MetricSums(2, 25, 625, 14, 100, 200)


def test_it_restricts_to_a_customer_subset_and_groups_by_attribute(experiment):
    exp, control, email = experiment
    web = {"attr": "channel", "op": "eq", "value": "web"}
    only_web = outcome_sums(exp, segment_rule=web)[None]
    assert only_web[control.id]["revenue"].n == 1
    assert only_web[control.id]["revenue"].sum_y == 10
    grouped = outcome_sums(exp, group_by_attribute="channel")
    assert set(grouped) == {"web", "phone"}
    assert grouped["phone"][control.id]["revenue"] == MetricSums(1, 0, 0, 0, 0, 0)
    assert grouped["web"][email.id]["revenue"] == MetricSums(2, 25, 625, 14, 100, 200)
    # Groups add up to the whole.
    total = grouped["web"][control.id]["revenue"] + grouped["phone"][control.id]["revenue"]
    assert total == outcome_sums(exp)[None][control.id]["revenue"]


def test_a_behavioural_segment_is_evaluated_as_of_its_cutoff(experiment):
    exp, control, email = experiment
    # Revenue in the 30 days before T0: a 4, b 99, c 8, d 6 -> b and c qualify.
    rule = {"all": [{"metric": "revenue_30d", "op": "gte", "value": 7},
                    {"metric": "purchases_90d", "op": "gte", "value": 1}]}
    table = outcome_sums(exp, segment_rule=rule, as_of=T0)[None]
    assert table[control.id]["revenue"] == MetricSums(1, 0, 0, 0, 0, 0)  # b
    assert table[email.id]["revenue"] == MetricSums(1, 25, 625, 8, 64, 200)  # c
    # 16 days later the window holds post-assignment purchases too: a (10 + 4) and
    # b (99 at +15 days) qualify; d's 6 at -14 days is exactly 30 days back, still short.
    later = outcome_sums(exp, segment_rule=rule, as_of=T0 + 16 * DAY)[None]
    assert later[control.id]["revenue"].n == 2
    assert later[email.id]["revenue"] == MetricSums(1, 25, 625, 8, 64, 200)


def test_boolean_attributes_group_as_true_false_on_every_database(experiment):
    exp, control, _ = experiment
    Customer.objects.filter(assignments__arm=control).update(attributes={"vip": True})
    grouped = outcome_sums(exp, group_by_attribute="vip")
    assert set(grouped) == {"true", None}


def test_outcome_rows_give_each_customer_their_own_outcome(experiment):
    from experiments.outcomes import outcome_rows

    exp, control, email = experiment
    rows = outcome_rows(exp, exp.metrics.get(name="revenue"))
    assert list(rows.y) == [10.0, 0.0, 25.0, 0.0]  # a, b, c, d in customer-id order
    assert list(rows.arm_ids) == [control.id, control.id, email.id, email.id]
    converted = outcome_rows(exp, exp.metrics.get(name="purchase"))
    assert list(converted.y) == [1.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("rule, expected", HAND_COMPUTED)
def test_breakdown_membership_matches_the_hand_count(population, rule, expected):  # noqa: F811
    """The analysis evaluates rules in bulk (metrics as columns); same members as a hand count."""
    exp = experiment_make(attribution_window_days=14)
    control, email = exp.arms.order_by("id")
    for i, customer in enumerate(population.values()):
        Assignment.objects.create(experiment=exp, customer=customer,
                                  arm=control if i % 2 else email, assigned_at=T0)
    table = outcome_sums(exp, segment_rule=rule, as_of=T0).get(None, {})
    assert sum(next(iter(cells.values())).n for cells in table.values()) == len(expected)
