"""A second demo: customers of five latent behavioural types, simulated day by day.

Where experiments.demo draws aggregate histories, this one runs each
customer's year as a daily process, so the *order* of events matters:

- every day a customer visits with their type's rate and, when visiting,
  buys with their type's conversion rate (order value by type);
- a run of visits without a purchase raises the daily hazard of lapsing
  for good (``STREAK_HAZARD``): after it the customer rarely visits and
  never buys. Browsers are the exception: visiting without buying is how
  they shop, so their streaks carry no extra hazard;
- newcomers join in the last months, lapsing customers lapse quickly;
- e-mail opens follow the type's engagement.

The types (``TYPES``): bargain hunters, loyal regulars, lapsing, browsers,
newcomers. They also drive the response to the three-arm experiment
("demo_behaviour_types": control, email, email_discount), assigned
``ASSIGNED_DAYS_AGO`` days before the anchor: each type has its own extra
chance to buy in the 30-day window per arm (``ARM_UPLIFT``). Every
customer's true type is stored (TrueBehaviourType), as are the true
effects (TrueEffect), so learned segments and uplift can be scored
against the truth.

Seeded: the same seed and anchor give the same rows. Kept apart from
experiments.demo (which the main demo and its benchmarks use) on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import transaction

from core.db.bulk import rows_insert
from experiments.models import Arm, Assignment, Experiment, Metric, TrueBehaviourType, TrueEffect
from experiments.services import ArmSpec, MetricSpec, experiment_create
from marketing.attribute_history import customer_versions_open
from marketing.models import Campaign, CustomerAttribute, Event
from marketing.models import Customer as CustomerRow

EXPERIMENT_KEY = "demo_behaviour_types"
CAMPAIGN_KEY = "demo_behaviour"
SOURCE = "demo_behaviour"
HISTORY_DAYS = 365
ASSIGNED_DAYS_AGO = 45
WINDOW_DAYS = 30

TYPES = ("bargain_hunter", "loyal_regular", "lapsing", "browser", "newcomer")
TYPE_SHARES = (0.2, 0.2, 0.2, 0.2, 0.2)


@dataclass(frozen=True)
class TypeBehaviour:
    visit_rate: float  # visits a day while active
    buy_given_visit: float
    order_value: float  # median order value
    base_hazard: float  # daily chance of lapsing for good
    streak_hazard: float  # extra daily hazard per visit without purchase beyond three
    open_rate: float  # e-mail opens a day
    loyalty_share: float  # share with a loyalty card


BEHAVIOUR = {
    "bargain_hunter": TypeBehaviour(0.07, 0.25, 22.0, 0.0004, 0.004, 0.06, 0.2),
    "loyal_regular": TypeBehaviour(0.10, 0.45, 65.0, 0.0002, 0.004, 0.03, 0.85),
    "lapsing": TypeBehaviour(0.08, 0.35, 45.0, 0.0030, 0.02, 0.02, 0.3),
    "browser": TypeBehaviour(0.15, 0.03, 35.0, 0.0003, 0.0, 0.01, 0.1),
    "newcomer": TypeBehaviour(0.12, 0.25, 40.0, 0.0010, 0.006, 0.05, 0.05),
}
# Extra chance to buy in the attribution window, per arm (email, email_discount).
ARM_UPLIFT = {
    "bargain_hunter": (0.02, 0.20),
    "loyal_regular": (0.00, 0.02),
    "lapsing": (0.10, 0.12),
    "browser": (0.03, 0.06),
    "newcomer": (0.08, 0.04),
}
DISCOUNT_VALUE = 0.85  # the coupon's cut of the order value
STREAK_GRACE = 3


@dataclass(frozen=True)
class BehaviourDemoResult:
    customers: int
    events: int
    experiment_id: int
    campaign_id: int


@dataclass
class SimulatedEvents:
    customer: np.ndarray  # index into the population
    kind: np.ndarray  # object: "visit", "purchase", "email_open"
    day: np.ndarray  # float day of the timeline, 0 = HISTORY_DAYS before the anchor
    value: np.ndarray


def behaviour_types_draw(n: int, rng: np.random.Generator) -> np.ndarray:
    """Each customer's type index into TYPES."""
    return rng.choice(len(TYPES), size=n, p=TYPE_SHARES)


def behaviour_simulate(types: np.ndarray, arm: np.ndarray,
                       rng: np.random.Generator) -> tuple[SimulatedEvents, np.ndarray]:
    """Run the daily process; returns the events and each customer's first day.

    ``arm`` (0 control, 1 email, 2 email_discount) acts from the assignment
    day for WINDOW_DAYS: a contacted customer's extra purchase is drawn once,
    with the type's uplift, on a day of the window while still active.
    """
    n = types.size
    params = [BEHAVIOUR[t] for t in TYPES]

    def per_type(name: str) -> np.ndarray:
        return np.array([getattr(p, name) for p in params])[types]

    visit, buy, value = per_type("visit_rate"), per_type("buy_given_visit"), per_type("order_value")
    base_hazard, streak_hazard = per_type("base_hazard"), per_type("streak_hazard")
    open_rate = per_type("open_rate")
    newcomer = types == TYPES.index("newcomer")
    first_day = np.where(newcomer, rng.integers(HISTORY_DAYS - 150, HISTORY_DAYS - 20, n), 0)
    # Lapsing customers are already on their way out for part of the year.
    active = np.ones(n, dtype=bool)
    streak = np.zeros(n)
    assign_day = HISTORY_DAYS - ASSIGNED_DAYS_AGO
    uplift = np.array([ARM_UPLIFT[t] for t in TYPES])[types]  # (n, 2)
    extra = (arm > 0) & (rng.random(n) < uplift[np.arange(n), np.maximum(arm - 1, 0)])
    extra_day = assign_day + rng.integers(0, WINDOW_DAYS, n)
    rows: list[tuple[np.ndarray, str, np.ndarray, np.ndarray]] = []
    for day in range(HISTORY_DAYS):
        joined = day >= first_day
        rate = np.where(active, visit, visit * 0.15) * joined
        visits = rng.random(n) < rate
        buys = visits & active & (rng.random(n) < buy)
        buys |= extra & (extra_day == day) & active & joined
        spend = value * rng.lognormal(0.0, 0.3, n)
        discounted = (arm == 2) & (day >= assign_day) & (day < assign_day + WINDOW_DAYS)
        spend = np.where(discounted, spend * DISCOUNT_VALUE, spend)
        opens = joined & (rng.random(n) < open_rate * np.where(active, 1.0, 0.3))
        at = day + rng.random(n)
        for mask, kind, amount in ((visits, "visit", np.zeros(n)), (buys, "purchase", spend),
                                   (opens, "email_open", np.zeros(n))):
            idx = np.flatnonzero(mask)
            rows.append((idx, kind, at[idx], np.round(amount[idx], 2)))
        # the order effect: visits that end without a purchase build up the hazard
        streak = np.where(buys, 0.0, streak + (visits & ~buys))
        hazard = base_hazard + streak_hazard * np.maximum(streak - STREAK_GRACE, 0)
        active &= ~(joined & (rng.random(n) < hazard))
    events = SimulatedEvents(
        customer=np.concatenate([r[0] for r in rows]),
        kind=np.concatenate([np.full(r[0].size, r[1], dtype=object) for r in rows]),
        day=np.concatenate([r[2] for r in rows]),
        value=np.concatenate([r[3] for r in rows]))
    return events, first_day


def true_effects(types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per customer and contact arm: (conversion uplift, revenue uplift), approximately.

    The extra purchase's chance is the type's uplift; revenue adds its
    order value (cut by the coupon for the discount arm), and the coupon
    also cuts what the customer would have spent anyway in the window.
    """
    uplift = np.array([ARM_UPLIFT[t] for t in TYPES])[types]
    value = np.array([BEHAVIOUR[t].order_value for t in TYPES])[types]
    expected_orders = np.array([BEHAVIOUR[t].visit_rate * BEHAVIOUR[t].buy_given_visit
                                * WINDOW_DAYS for t in TYPES])[types]
    revenue = np.column_stack([
        uplift[:, 0] * value,
        uplift[:, 1] * value * DISCOUNT_VALUE - expected_orders * value * (1 - DISCOUNT_VALUE)])
    return uplift, revenue


def _attributes(types: np.ndarray, first_day: np.ndarray, rng: np.random.Generator) -> list[dict]:
    n = types.size
    loyalty = rng.random(n) < np.array([BEHAVIOUR[t].loyalty_share for t in TYPES])[types]
    engagement = np.clip(np.array([BEHAVIOUR[t].open_rate for t in TYPES])[types] * 12
                         + rng.normal(0, 0.1, n), 0, 1)
    age = np.clip(rng.normal(np.array([38, 52, 45, 30, 34])[types], 10), 18, 90).astype(int)
    regions = np.array(["capital", "north", "south", "east", "west"], dtype=object)
    region = regions[rng.integers(0, regions.size, n)]
    channel = np.array(["web", "multichannel"], dtype=object)[(rng.random(n) < 0.3).astype(int)]
    tenure = np.where(first_day > 0, HISTORY_DAYS - first_day,
                      rng.integers(HISTORY_DAYS, 3 * HISTORY_DAYS, n))
    return [{"age": int(a), "region": str(r), "channel": str(c), "tenure_days": int(t),
             "loyalty_member": bool(lm), "email_engagement": round(float(e), 3)}
            for a, r, c, t, lm, e in zip(age.tolist(), region.tolist(), channel.tolist(),
                                         tenure.tolist(), loyalty.tolist(), engagement.tolist(),
                                         strict=True)]


@transaction.atomic
def behaviour_demo_seed(*, customers: int, seed: int, anchor: datetime) -> BehaviourDemoResult:
    """Write the behavioural-types demo; ``anchor`` is "now", the end of its timeline."""
    if Experiment.objects.filter(key=EXPERIMENT_KEY).exists():
        raise ValueError(f"the demo experiment {EXPERIMENT_KEY!r} already exists")
    rng = np.random.default_rng([seed, 18])
    types = behaviour_types_draw(customers, rng)
    arm = rng.integers(0, 3, customers)
    events, first_day = behaviour_simulate(types, arm, rng)
    start = anchor - timedelta(days=HISTORY_DAYS)
    assigned_at = anchor - timedelta(days=ASSIGNED_DAYS_AGO)

    for key, kind in (("age", "numeric"), ("region", "categorical"), ("channel", "categorical"),
                      ("tenure_days", "numeric"), ("loyalty_member", "boolean"),
                      ("email_engagement", "numeric")):
        CustomerAttribute.objects.get_or_create(key=key, defaults={"kind": kind,
                                                                   "label": key.replace("_", " ")})
    attributes = _attributes(types, first_day, rng)
    external_ids = [f"types-{seed}-{i:07d}" for i in range(1, customers + 1)]
    created = [start + timedelta(days=int(d)) for d in first_day.tolist()]
    rows_insert(CustomerRow, ["external_id", "attributes", "marketing_consent", "created_at",
                              "updated_at"],
                ((x, a, True, c, c) for x, a, c in zip(external_ids, attributes, created,
                                                       strict=True)))
    first_id = CustomerRow.objects.get(external_id=external_ids[0]).id
    ids = np.arange(first_id, first_id + customers)  # rows_insert keeps the order
    customer_versions_open(zip(ids.tolist(), attributes, [True] * customers, strict=True),
                           at=start - timedelta(days=1), first=True)
    base = start.timestamp()
    written = rows_insert(
        Event, ["customer_id", "kind", "occurred_at", "value", "properties", "source",
                "received_at"],
        ((int(ids[c]), k, datetime.fromtimestamp(base + round(d * 86_400), UTC), float(v), {},
          SOURCE, anchor)
         for c, k, d, v in zip(events.customer.tolist(), events.kind.tolist(),
                               events.day.tolist(), events.value.tolist(), strict=True)))
    rows_insert(TrueBehaviourType, ["customer_id", "behaviour_type"],
                ((int(c), TYPES[t]) for c, t in zip(ids.tolist(), types.tolist(), strict=True)))

    campaign = Campaign.objects.filter(key=CAMPAIGN_KEY).first() or Campaign.objects.create(
        key=CAMPAIGN_KEY, name="Behaviour types e-mail", channel=Campaign.Channel.EMAIL,
        cost_per_contact="0.15", value_per_conversion="40.00", status=Campaign.Status.COMPLETED)
    experiment = experiment_create(
        campaign=campaign, key=EXPERIMENT_KEY, name="Behaviour types: e-mail vs coupon",
        hypothesis="Each behavioural type answers the e-mail and the coupon differently.",
        arms=[ArmSpec("control", 1.0, is_control=True, contacts_customer=False),
              ArmSpec("email", 1.0), ArmSpec("email_discount", 1.0)],
        metrics=[MetricSpec("conversion", Event.Kind.PURCHASE, Metric.Aggregation.CONVERTED,
                            role=Metric.Role.PRIMARY, minimum_detectable_effect=0.05),
                 MetricSpec("revenue", Event.Kind.PURCHASE, Metric.Aggregation.SUM)],
        attribution_window_days=WINDOW_DAYS, planned_sample_size=customers,
        salt=f"types-{seed}", breakdown_attributes=["loyalty_member"])
    Experiment.objects.filter(pk=experiment.pk).update(
        status=Experiment.Status.STOPPED, started_at=assigned_at,
        ended_at=assigned_at + timedelta(days=WINDOW_DAYS))
    arms = list(Arm.objects.filter(experiment=experiment).order_by("id"))
    arm_ids = np.array([a.id for a in arms])
    rows_insert(Assignment, ["experiment_id", "customer_id", "arm_id", "assigned_at"],
                ((experiment.id, int(c), int(a), assigned_at)
                 for c, a in zip(ids.tolist(), arm_ids[arm].tolist(), strict=True)))
    conversion, revenue = true_effects(types)
    rows_insert(TrueEffect, ["experiment_id", "customer_id", "arm_id", "conversion_uplift",
                             "revenue_uplift"],
                ((experiment.id, int(ids[i]), int(arm_ids[k + 1]), float(conversion[i, k]),
                  float(revenue[i, k])) for k in range(2) for i in range(customers)))
    return BehaviourDemoResult(customers=customers, events=written, experiment_id=experiment.id,
                               campaign_id=campaign.id)
