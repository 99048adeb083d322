"""The behavioural-types demo: stored true types and effects, and the order effect."""

from datetime import UTC, datetime

import numpy as np
import pytest

from experiments.demo_behaviour import (
    HISTORY_DAYS,
    TYPES,
    behaviour_demo_seed,
    behaviour_simulate,
    behaviour_types_draw,
)
from experiments.models import Assignment, TrueBehaviourType, TrueEffect
from marketing.models import Customer, Event

ANCHOR = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_it_stores_every_customers_true_type_and_effects():
    result = behaviour_demo_seed(customers=300, seed=1, anchor=ANCHOR)
    assert Customer.objects.count() == 300 == TrueBehaviourType.objects.count()
    assert set(TrueBehaviourType.objects.values_list("behaviour_type", flat=True)) == set(TYPES)
    assert TrueEffect.objects.count() == 600 and Assignment.objects.count() == 300
    assert Event.objects.count() == result.events > 300 * 10
    assert not Event.objects.filter(occurred_at__gte=ANCHOR).exists()
    # bargain hunters answer the coupon far more than the plain e-mail
    hunters = TrueBehaviourType.objects.filter(behaviour_type="bargain_hunter").values("customer")
    effects = dict(TrueEffect.objects.filter(customer__in=hunters)
                   .values_list("arm__name", "conversion_uplift"))  # one value per arm and type
    assert effects["email_discount"] > effects["email"] + 0.1


def test_a_run_of_visits_without_purchases_predicts_lapsing():
    rng = np.random.default_rng(0)
    types = behaviour_types_draw(6_000, rng)
    events, _ = behaviour_simulate(types, np.zeros(types.size, dtype=int), rng)
    cut = HISTORY_DAYS - 90
    before = events.day < cut
    order = np.lexsort((events.day, events.customer))
    # each customer's last three events before the cut: all visits (no purchase)?
    streak = np.zeros(types.size, dtype=bool)
    seen = {}
    for i in order[np.isin(order, np.flatnonzero(before))]:
        seen.setdefault(int(events.customer[i]), []).append(events.kind[i])
    for customer, kinds in seen.items():
        last = [k for k in kinds if k != "email_open"][-4:]
        streak[customer] = len(last) == 4 and all(k == "visit" for k in last)
    bought_later = np.zeros(types.size, dtype=bool)
    bought_later[events.customer[(events.kind == "purchase") & ~before]] = True
    for name in ("loyal_regular", "bargain_hunter"):
        of_type = types == TYPES.index(name)
        with_run, without = of_type & streak, of_type & ~streak & np.isin(
            np.arange(types.size), list(seen))
        assert with_run.sum() > 20
        assert bought_later[with_run].mean() < bought_later[without].mean() - 0.1, name
