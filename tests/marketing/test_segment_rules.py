"""Segment rules compile to SQL that selects the same customers as a hand count."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from marketing.segment_rules import (
    segment_members,
    segment_rule_condition,
    segment_rule_metrics,
    segment_rule_validate,
)
from marketing.services import segment_create
from tests.factories import T0, attributes_declare, customer_make, event_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def population():
    """Six customers whose memberships are easy to work out by hand."""
    attributes_declare()
    people = {
        "ann": customer_make(age=25, channel="web", vip=True),
        "bob": customer_make(age=41, channel="web", vip=False),
        "cyd": customer_make(age=67, channel="phone", vip=False, consent=False),
        "dee": customer_make(age=33, channel="store"),
        "eve": customer_make(channel="web"),  # no age, no vip
        "fay": customer_make(age=52, channel="phone", vip=True),
    }
    # purchases in the 90 days before T0: ann 3, bob 2 (+1 older), cyd 1, fay 2 (+1 after T0)
    for name, days_ago in [("ann", 1), ("ann", 10), ("ann", 89), ("bob", 5), ("bob", 60),
                           ("bob", 120), ("cyd", 30), ("fay", 2), ("fay", 3), ("fay", -1)]:
        event_make(people[name], "purchase", T0 - timedelta(days=days_ago), 20.0 + days_ago)
    event_make(people["dee"], "visit", T0 - timedelta(days=1))
    return people


def _condition_ids(rule):
    """Evaluate segment_rule_condition inside a hand-written query, as analyses do."""
    condition, params = segment_rule_condition(rule, as_of=T0)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM marketing_customer WHERE {condition}", params)
        return {r[0] for r in cursor.fetchall()}


def names(population, rule, *, condition=False):
    """Members by name; ``condition`` evaluates the rule inside a query of our own."""
    if condition:
        ids = _condition_ids(rule)
    else:
        ids = set(segment_members(rule, as_of=T0).values_list("id", flat=True))
    return {name for name, c in population.items() if c.id in ids}


MODES = pytest.mark.parametrize("condition", [False, True], ids=["members", "condition"])


# Rules and the members a hand count gives (tests.experiments reuses them).
HAND_COMPUTED = [
    ({"attr": "channel", "op": "in", "value": ["web"]}, {"ann", "bob", "eve"}),
    ({"attr": "channel", "op": "ne", "value": "web"}, {"cyd", "dee", "fay"}),
    ({"attr": "age", "op": "gte", "value": 41}, {"bob", "cyd", "fay"}),
    ({"attr": "age", "op": "lt", "value": 41}, {"ann", "dee"}),
    ({"attr": "vip", "op": "eq", "value": True}, {"ann", "fay"}),
    ({"attr": "vip", "op": "eq", "value": False}, {"bob", "cyd"}),
    ({"attr": "age", "op": "exists", "value": False}, {"eve"}),
    ({"attr": "vip", "op": "not_in", "value": [True]}, {"bob", "cyd", "dee", "eve"}),
    ({"metric": "purchases_90d", "op": "gte", "value": 2}, {"ann", "bob", "fay"}),
    ({"metric": "purchases_90d", "op": "eq", "value": 0}, {"dee", "eve"}),
    ({"metric": "visits_30d", "op": "gt", "value": 0}, {"dee"}),
    ({"metric": "revenue_30d", "op": "gt", "value": 40}, {"ann", "cyd", "fay"}),
    ({"consent": False}, {"cyd"}),
    ({"all": [{"attr": "channel", "op": "in", "value": ["web"]},
              {"metric": "purchases_90d", "op": "gte", "value": 2}]}, {"ann", "bob"}),
    ({"any": [{"attr": "age", "op": "gt", "value": 60},
              {"attr": "channel", "op": "eq", "value": "store"}]}, {"cyd", "dee"}),
    ({"not": {"attr": "channel", "op": "in", "value": ["web", "phone"]}}, {"dee"}),
]


@pytest.mark.parametrize("rule, expected", HAND_COMPUTED)
@MODES
def test_it_selects_the_hand_computed_members(population, rule, expected, condition):
    segment_rule_validate(rule)
    assert names(population, rule, condition=condition) == expected


def test_rule_metrics_are_collected_through_combinators():
    rule = {"all": [{"metric": "purchases_90d", "op": "gte", "value": 1},
                    {"not": {"any": [{"metric": "revenue_30d", "op": "gt", "value": 5},
                                     {"attr": "age", "op": "gt", "value": 3}]}}]}
    assert segment_rule_metrics(rule) == {"purchases_90d", "revenue_30d"}


@MODES
def test_revenue_window_excludes_events_at_or_after_the_cutoff(population, condition):
    # Within [T0 - 30d, T0): ann 21 + 30 = 51, cyd 50 (exactly 30 days back, the
    # window's closed end), fay 22 + 23 = 45; fay's event after T0 is ignored.
    rule = {"metric": "revenue_30d", "op": "gte", "value": 45}
    assert names(population, rule, condition=condition) == {"ann", "cyd", "fay"}
    rule = {"metric": "revenue_30d", "op": "gte", "value": 52}
    assert names(population, rule, condition=condition) == set()


@pytest.mark.parametrize("rule, path", [
    ({"attr": "shoe_size", "op": "eq", "value": 3}, "rule.attr"),
    ({"attr": "channel", "op": "gte", "value": 3}, "rule.op"),
    ({"all": [{"attr": "age", "op": "gte", "value": 3}, {"metric": "likes_9d", "op": "gt",
                                                         "value": 1}]}, "rule.all[1].metric"),
    ({"any": []}, "rule.any"),
    ({"attr": "age", "op": "between", "value": 3}, "rule.op"),
    ({"attr": "channel", "op": "in", "value": "web"}, "rule.value"),
    ({"metric": "purchases_90d", "op": "gte", "value": "two"}, "rule.value"),
])
def test_it_names_the_path_of_an_invalid_rule(population, rule, path):
    with pytest.raises(ValidationError) as caught:
        segment_rule_validate(rule)
    assert path in caught.value.message_dict


def test_segment_create_refuses_an_invalid_rule_and_saves_nothing(population):
    with pytest.raises(ValidationError):
        segment_create(key="bad", name="Bad", rule={"attr": "nope", "op": "eq", "value": 1})
    from marketing.models import Segment
    assert not Segment.objects.exists()
