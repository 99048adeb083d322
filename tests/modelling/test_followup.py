"""Follow-up experiments of a targeting list: groups, the random draw, the plan, profit."""

import csv
import io
import math
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from experiments.assignment import assign_customer
from experiments.models import Arm, Assignment, Experiment
from experiments.services import ArmSpec
from marketing.models import Customer, Event
from modelling.followup import (
    csv_safe,
    follow_up_plan,
    follow_up_plan_csv,
    follow_up_shares_validate,
    random_offer,
    targeting_follow_up_analyse,
    targeting_follow_up_create,
    targeting_follow_up_start,
)
from modelling.models import CustomerScore, ModelVersion, TargetingEntry, TargetingList
from tests.factories import T0, campaign_make, experiment_make

pytestmark = pytest.mark.django_db

N = 2_000  # eligible customers
ON_LIST = 800  # of them on the list: contact rate 0.4
EMAIL_SHARE = 0.75  # the list's offers: 600 email, 200 coupon


@pytest.fixture
def target() -> TargetingList:
    """2,000 scored consenting customers, 800 on the list (3:1 email / coupon), plus three
    customers who are not eligible (no consent, erased, not scored)."""
    campaign = campaign_make(cost_per_contact="0.50", value_per_conversion="40.00")
    source = experiment_make(campaign=campaign, arms=[
        ArmSpec("control", 1, is_control=True, contacts_customer=False),
        ArmSpec("email", 1), ArmSpec("coupon", 1)])
    version = ModelVersion.objects.create(campaign=campaign, experiment=source, kind="uplift",
                                          estimator="tarnet", target_metric="purchase",
                                          status="ready")
    Customer.objects.bulk_create([Customer(external_id=f"fu-{i:05d}", marketing_consent=True)
                                  for i in range(N)])
    Customer.objects.bulk_create([
        Customer(external_id="fu-no-consent", marketing_consent=False),
        Customer(external_id="fu-erased", marketing_consent=True, erased_at=T0),
        Customer(external_id="fu-unscored", marketing_consent=True)])
    scored = list(Customer.objects.exclude(external_id="fu-unscored").order_by("id"))
    CustomerScore.objects.bulk_create([
        CustomerScore(model_version=version, customer=c, uplift=0.01, best_arm="email",
                      scored_at=T0) for c in scored])
    target = TargetingList.objects.create(campaign=campaign, model_version=version,
                                          parameters={}, size=ON_LIST)
    eligible = [c for c in scored if c.external_id.startswith("fu-0")]
    TargetingEntry.objects.bulk_create([
        TargetingEntry(targeting_list=target, customer=c, rank=rank, uplift=0.1,
                       expected_profit=1.0, arm="email" if rank % 4 else "coupon")
        for rank, c in enumerate(eligible[::2][:ON_LIST], start=1)])
    return target


def started(target, **kwargs):
    follow_up = targeting_follow_up_create(targeting_list=target, **kwargs)
    # A fixed salt makes the draws (and so the numbers below) the same on every run.
    Experiment.objects.filter(pk=follow_up.experiment_id).update(salt="fixed-salt")
    follow_up.experiment.refresh_from_db()
    return targeting_follow_up_start(follow_up=follow_up, now=T0)


def test_the_experiment_has_the_three_groups_with_the_shares_and_stays_a_draft(target):
    follow_up = targeting_follow_up_create(targeting_list=target,
                                           shares={"policy": 0.4, "random": 0.4, "holdout": 0.2})
    experiment = follow_up.experiment
    assert experiment.status == Experiment.Status.DRAFT
    assert [(a.name, a.weight, a.is_control, a.contacts_customer)
            for a in experiment.arms.order_by("id")] == [
        ("policy", 0.4, False, True), ("random", 0.4, False, True), ("holdout", 0.2, True, False)]
    source = target.model_version.experiment
    assert (list(experiment.metrics.order_by("id").values_list("name", "aggregation", "role"))
            == list(source.metrics.order_by("id").values_list("name", "aggregation", "role")))
    assert experiment.traffic_fraction == 0 and experiment.planned_sample_size == N
    assert follow_up.plan["eligible"] == N and follow_up.plan["on_list"] == ON_LIST
    assert follow_up.plan["contact_rate"] == pytest.approx(0.4)
    assert follow_up.plan["offer_mix"] == {"coupon": 0.25, "email": 0.75}
    assert follow_up.plan["economics"]["offers"]["email"] == {"cost_per_contact": 0.5,
                                                             "cost_per_conversion": 0.0}
    assert not Assignment.objects.filter(experiment=experiment).exists()


def test_shares_are_validated_naming_the_field(target):
    assert follow_up_shares_validate(None) == {"policy": 0.45, "random": 0.45, "holdout": 0.1}
    assert sum(follow_up_shares_validate({"policy": 0.45, "random": 0.45,
                                          "holdout": 0.1}).values()) == pytest.approx(1)
    cases = [({"policy": 0.5, "random": 0.5, "holdout": 0.0}, "shares.holdout"),
             ({"policy": -0.1, "random": 0.6, "holdout": 0.5}, "shares.policy"),
             ({"policy": 0.5, "random": 0.4, "holdout": 0.2}, "shares"),
             ({"policy": 0.5, "random": 0.5}, "shares"),
             ({"policy": "a", "random": 0.5, "holdout": 0.5}, "shares.policy")]
    for shares, field in cases:
        with pytest.raises(ValidationError) as error:
            targeting_follow_up_create(targeting_list=target, shares=shares)
        assert list(error.value.message_dict) == [field]
    assert not Experiment.objects.filter(key__startswith="followup_").exists()


def test_every_eligible_customer_gets_exactly_one_group_and_nobody_else_enters(target):
    follow_up = started(target)
    experiment = follow_up.experiment
    assert experiment.status == Experiment.Status.RUNNING
    assigned = list(Assignment.objects.filter(experiment=experiment)
                    .values_list("customer__external_id", flat=True))
    assert len(assigned) == len(set(assigned)) == N
    assert {e for e in assigned if not e.startswith("fu-0")} == set()
    # Starting again changes nothing; the generic rules enrol no one else.
    targeting_follow_up_start(follow_up=follow_up)
    assert Assignment.objects.filter(experiment=experiment).count() == N
    outsider = Customer.objects.get(external_id="fu-unscored")
    assert assign_customer(experiment=experiment, customer=outsider).arm is None
    member = Customer.objects.get(external_id="fu-00000")
    assert assign_customer(experiment=experiment, customer=member).reason == "already assigned"


def test_the_random_group_matches_the_policy_s_contacts_and_offer_mix(target):
    follow_up = started(target)
    plan = list(follow_up_plan(follow_up).values_list("customer_external_id", "group", "offer"))
    listed = dict(TargetingEntry.objects.filter(targeting_list=target)
                  .values_list("customer__external_id", "arm"))
    n = {g: sum(1 for _, group, _ in plan if group == g) for g in ("policy", "random", "holdout")}
    # Group sizes: Binomial(2000, share); 4 sd of 0.45 is 4 * sqrt(2000 * .45 * .55) = 89.
    assert abs(n["policy"] - 900) < 89 and abs(n["random"] - 900) < 89
    assert abs(n["holdout"] - 200) < 4 * math.sqrt(2000 * 0.1 * 0.9)
    for external_id, group, offer in plan:
        if group == "policy":
            assert offer == listed.get(external_id)  # the list's offer, or no contact
        if group == "holdout":
            assert offer is None
    contacts = {g: [o for _, group, o in plan if group == g and o] for g in ("policy", "random")}
    # Contact rate 0.4 in both: each is within 4 sd, sqrt(.4 * .6 / 900) = 0.0163, of 0.4.
    for group in ("policy", "random"):
        assert abs(len(contacts[group]) / n[group] - 0.4) < 4 * 0.0163
    # Offer mix: email share within 4 sd, sqrt(.75 * .25 / 360) = 0.0228, of 0.75.
    for group in ("policy", "random"):
        share = contacts[group].count("email") / len(contacts[group])
        assert abs(share - EMAIL_SHARE) < 4 * 0.0228
    assert set(contacts["random"]) == {"email", "coupon"}


def test_the_plan_is_deterministic_and_its_csv_is_safe(target):
    follow_up = started(target)
    salt = follow_up.experiment.salt
    rate, mix = follow_up.plan["contact_rate"], follow_up.plan["offer_mix"]
    first = "".join(follow_up_plan_csv(follow_up, chunk_size=77))
    assert "".join(follow_up_plan_csv(follow_up)) == first
    rows = list(csv.reader(io.StringIO(first)))
    assert rows[0] == ["customer_external_id", "group", "offer"]
    assert len(rows) == N + 1
    for external_id, group, offer in rows[1:]:
        if group == "random":  # the stored draw is the hash's
            assert (offer or None) == random_offer(salt, external_id, rate, mix)
    # The same list drawn again with the same salt gives the same plan.
    assert random_offer("fixed-salt", "fu-00007", 0.4, mix) == random_offer(
        "fixed-salt", "fu-00007", 0.4, dict(reversed(list(mix.items()))))
    assert [csv_safe(v) for v in ["=SUM(A1)", "+1", "-2", "@x", "ok", None, "a=b"]] == [
        "'=SUM(A1)", "'+1", "'-2", "'@x", "ok", "", "a=b"]
    Customer.objects.filter(external_id="fu-00000").update(external_id="=cmd|' /C calc'!A0")
    rows = list(csv.reader(io.StringIO("".join(follow_up_plan_csv(follow_up)))))
    assert rows[1][0] == "'=cmd|' /C calc'!A0"


def simulate(follow_up, respond, seed: int) -> dict[str, list[float]]:
    """Purchases (value 40) one day after assignment with probability respond(listed, offer);
    returns each group's profit per customer at contact cost 0.50, computed here by hand."""
    rng = np.random.default_rng(seed)
    listed = dict(TargetingEntry.objects.filter(targeting_list=follow_up.targeting_list)
                  .values_list("customer_id", "arm"))
    events, profits = [], {"policy": [], "random": [], "holdout": []}
    for customer_id, group, offer in follow_up_plan(follow_up).values_list(
            "customer_id", "group", "offer"):
        bought = rng.random() < respond(listed.get(customer_id), offer)
        if bought:
            events.append(Event(customer_id=customer_id, kind="purchase", value=40.0,
                                occurred_at=T0 + timedelta(days=1)))
        profits[group].append(40.0 * bought - (0.5 if offer else 0.0))
    Event.objects.bulk_create(events)
    return profits


def test_a_winning_policy_beats_random_and_holdout_with_intervals_excluding_zero(target):
    follow_up = started(target)

    def respond(listed, offer):  # list customers buy when sent their offer; others rarely
        return 0.5 if offer is not None and offer == listed else 0.02

    profits = simulate(follow_up, respond, seed=1)
    follow_up = targeting_follow_up_analyse(follow_up=follow_up)
    analysis = follow_up.analysis
    for group, values in profits.items():
        assert analysis["groups"][group]["customers"] == len(values)
        assert analysis["groups"][group]["profit_per_customer"] == pytest.approx(np.mean(values))
    for against in ("random", "holdout"):
        c = analysis["policy_minus"][against]
        assert c["difference"] == pytest.approx(np.mean(profits["policy"])
                                                - np.mean(profits[against]))
        se = math.sqrt(np.var(profits["policy"], ddof=1) / len(profits["policy"])
                       + np.var(profits[against], ddof=1) / len(profits[against]))
        assert c["se"] == pytest.approx(se)
        assert 0 < c["ci_low"] < c["difference"] < c["ci_high"]
    # Expected: policy 0.4 * (20 - 0.5) + 0.6 * 0.8 = 8.28 per customer; random contacts
    # 40% and 0.4 * 0.625 of those get their own offer: 0.1 * 20 + 0.9 * 0.8 - 0.2 = 2.52.
    assert 4 < analysis["policy_minus"]["random"]["difference"] < 8
    assert analysis["summary"].startswith("The policy earned +€")
    assert "more than random (95% CI +" in analysis["summary"]
    assert "more than no contact" in analysis["summary"]


def test_a_useless_policy_is_no_better_than_random(target):
    """Everyone buys with probability 0.1 whatever is sent. One data set's 95% interval
    covers zero 95% of the time, so ten independent data sets are drawn: fewer than 8
    covering would happen with probability P(Bin(10, 0.95) <= 7) = 0.012."""
    follow_up = started(target)
    covered, differences = 0, []
    for seed in range(10, 20):
        Event.objects.all().delete()
        simulate(follow_up, lambda listed, offer: 0.1, seed=seed)
        analysis = targeting_follow_up_analyse(follow_up=follow_up).analysis
        c = analysis["policy_minus"]["random"]
        covered += c["ci_low"] < 0 < c["ci_high"]
        differences.append(c["difference"])
    assert covered >= 8
    # Each difference has a standard error of about sqrt(2 * 40**2 * .09 / 900) = 0.57;
    # their mean over ten data sets is within 3 * 0.57 / sqrt(10) = 0.54 of zero.
    assert abs(np.mean(differences)) < 0.54


def test_offer_costs_and_conversion_costs_are_charged_per_offer(target):
    follow_up = started(target)
    follow_up.plan["economics"]["offers"]["coupon"] = {"cost_per_contact": 2.0,
                                                       "cost_per_conversion": 5.0}
    follow_up.save()
    simulate(follow_up, lambda listed, offer: 0.3 if offer else 0.0, seed=3)
    analysis = targeting_follow_up_analyse(follow_up=follow_up).analysis
    bought = set(Event.objects.values_list("customer_id", flat=True))
    for group in ("policy", "random"):
        profit = 0.0
        plan = follow_up_plan(follow_up).filter(arm__name=group)
        for customer_id, offer in plan.values_list("customer_id", "offer"):
            costs = {None: (0, 0), "email": (0.5, 0), "coupon": (2.0, 5.0)}[offer]
            profit += (40 - costs[1]) * (customer_id in bought) - costs[0]
        assert analysis["groups"][group]["profit"] == pytest.approx(profit)
        assert analysis["groups"][group]["offers"] == dict(
            Counter(plan.exclude(offer=None).values_list("offer", flat=True)))


def test_a_list_without_an_experiment_gets_purchase_and_revenue(target):
    version = target.model_version
    ModelVersion.objects.filter(pk=version.pk).update(experiment=None)
    target.model_version.refresh_from_db()
    follow_up = targeting_follow_up_create(targeting_list=target, start=True)
    experiment = follow_up.experiment
    assert experiment.status == Experiment.Status.RUNNING
    assert list(experiment.metrics.order_by("id").values_list("name", "aggregation", "role")) == [
        ("purchase", "converted", "primary"), ("revenue", "sum", "secondary")]
    assert Arm.objects.filter(experiment=experiment).count() == 3
    assert Assignment.objects.filter(experiment=experiment).count() == N
