"""Targeting decisions through targeting_list_create: per-arm costs, guardrail prices,
the digest, CSV injection, on hand-made scores whose profits can be checked by hand."""

import csv
import hashlib
import io

import pytest

from experiments.models import Arm
from experiments.services import ArmSpec
from marketing.services import campaign_update
from modelling.models import CustomerScore, ModelVersion, TargetingEntry
from modelling.targeting import targeting_entries, targeting_list_create, targeting_list_csv
from tests.factories import T0, campaign_make, customer_make, experiment_make

pytestmark = pytest.mark.django_db

GUARDRAILS = {"unsubscribes": {"event_kind": "unsubscribe", "aggregation": "converted",
                               "higher_is_better": False, "model": True}}


@pytest.fixture
def hand_scores():
    """Campaign value 45, cost 0.15; arms email and coupon; three scored customers."""
    campaign = campaign_make(cost_per_contact="0.15", value_per_conversion="45.00")
    experiment = experiment_make(campaign=campaign, arms=[
        ArmSpec("control", 1.0, is_control=True, contacts_customer=False),
        ArmSpec("email", 1.0), ArmSpec("coupon", 1.0)])
    version = ModelVersion.objects.create(
        campaign=campaign, experiment=experiment, kind="uplift", estimator="test",
        target_metric="purchase", status="ready", is_champion=True,
        metrics={"arm_names": ["control", "email", "coupon"], "guardrails": GUARDRAILS})
    people = {
        # profit without arm costs or prices: email 45*0.10-0.15 = 4.35, coupon 7.05
        "likes_coupon": ("=cmd|' /C calc'!A0", {"email": 0.10, "coupon": 0.16}, 0.20,
                         {"email": 0.001, "coupon": 0.001}),
        # pays without a harm price (email 0.75, coupon 1.20); with 8 per unsubscribe:
        # email 0.75 - 8*0.10 = -0.05, coupon 1.20 - 8*0.15 = 0.00: hurt by every arm
        "hurt": ("@SUM(1+1)", {"email": 0.02, "coupon": 0.03}, 0.10,
                 {"email": 0.10, "coupon": 0.15}),
        # never pays: 45*0.003 - 0.15 < 0
        "indifferent": ("-2+3", {"email": 0.003, "coupon": 0.002}, 0.05,
                        {"email": 0.0, "coupon": 0.0}),
    }
    customers = {}
    for key, (external_id, uplift, response, harm) in people.items():
        customer = customer_make()
        customer.external_id = external_id
        customer.save()
        CustomerScore.objects.create(
            model_version=version, customer=customer, uplift=max(uplift.values()),
            best_arm=max(uplift, key=uplift.get), uplift_by_arm=uplift, response=response,
            guardrail_by_arm={"unsubscribes": harm}, scored_at=T0)
        customers[key] = customer
    return campaign, experiment, version, customers


def _entries(target):
    return {e.customer_id: e for e in targeting_entries(target)}


def test_per_arm_costs_change_the_chosen_arm(hand_scores):
    campaign, experiment, _, people = hand_scores
    plain = _entries(targeting_list_create(campaign=campaign, budget=None))
    chosen = plain[people["likes_coupon"].id]
    assert chosen.arm == "coupon" and chosen.expected_profit == pytest.approx(7.05)
    # coupon: contact 0.30 and 10 per conversion on 0.20 + 0.16 = 0.36 expected conversions:
    # 7.20 - 0.30 - 3.60 = 3.30 < email's 4.35
    Arm.objects.filter(experiment=experiment, name="coupon").update(cost_per_contact=0.30,
                                                                    cost_per_conversion=10.0)
    target = targeting_list_create(campaign=campaign, budget=None)
    chosen = _entries(target)[people["likes_coupon"].id]
    assert chosen.arm == "email" and chosen.expected_profit == pytest.approx(4.35)
    assert chosen.uplift == pytest.approx(0.10)
    assert chosen.uplift_by_arm == {"email": 0.10, "coupon": 0.16}
    assert target.parameters["cost_per_contact_by_arm"] == {"email": 0.15, "coupon": 0.30}
    assert target.parameters["cost_per_conversion_by_arm"] == {"email": 0.0, "coupon": 10.0}
    assert target.contacts_by_arm == {"email": 2, "coupon": 0}


def test_a_harm_price_keeps_customers_whom_every_arm_hurts_off_the_list(hand_scores):
    campaign, _, _, people = hand_scores
    unpriced = _entries(targeting_list_create(campaign=campaign, budget=None))
    assert set(unpriced) == {people["likes_coupon"].id, people["hurt"].id}
    campaign_update(campaign=campaign, harm_prices={"unsubscribe": 8.0})
    target = targeting_list_create(campaign=campaign, budget=None)
    entries = _entries(target)
    assert set(entries) == {people["likes_coupon"].id}
    # 7.05 - 8 * 0.001
    assert entries[people["likes_coupon"].id].expected_profit == pytest.approx(7.042)
    assert target.guardrail_harm == {"unsubscribes": pytest.approx(0.001)}
    assert target.parameters["harm_prices"] == {"unsubscribes": 8.0}
    # A cap of 0.0005 expected unsubscribes leaves no room even for that one.
    capped = targeting_list_create(campaign=campaign, budget=None,
                                   harm_caps={"unsubscribe": 0.0005})
    assert capped.size == 0


def test_the_digest_is_stable_and_is_the_hash_of_the_entries(hand_scores):
    campaign, _, _, people = hand_scores
    first = targeting_list_create(campaign=campaign, budget=None)
    second = targeting_list_create(campaign=campaign, budget=None)
    rows = list(TargetingEntry.objects.filter(targeting_list=first).order_by("rank")
                .values_list("customer_id", "arm", "rank"))
    again = list(TargetingEntry.objects.filter(targeting_list=second).order_by("rank")
                 .values_list("customer_id", "arm", "rank"))
    assert rows == again and len(rows) == 2
    text = "".join(f"{c},{a},{r}\n" for c, a, r in rows)
    assert first.digest == second.digest == hashlib.sha256(text.encode()).hexdigest()
    changed = targeting_list_create(campaign=campaign, budget=None, max_contacts=1)
    assert changed.digest != first.digest


def test_csv_cells_cannot_start_a_formula(hand_scores):
    campaign, _, _, people = hand_scores
    target = targeting_list_create(campaign=campaign, budget=None)
    rows = list(csv.reader(io.StringIO("".join(targeting_list_csv(target)))))
    assert rows[0] == ["rank", "customer_external_id", "arm", "predicted_uplift",
                       "expected_profit", "uplift_email", "uplift_coupon"]
    assert [r[1] for r in rows[1:]] == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)"]
    assert rows[1][2:] == ["coupon", "0.160000", "7.0500", "0.100000", "0.160000"]
