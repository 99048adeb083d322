"""Finite but absurd numbers are refused at the edge, naming the field or row (core.bounds).

1e308 is a finite float: accepted, it sent every customer to one arm, made an
experiment unanalysable, and poisoned every later scoring run.
"""

import json

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from core.bounds import AMOUNT_MAX, ATTRIBUTE_NUMBER_MAX, WEIGHT_MAX
from experiments.assignment import assign_customer
from experiments.models import Experiment
from experiments.services import ArmSpec, MetricSpec, experiment_create, experiment_transition
from marketing.models import Customer, CustomerAttributeVersion, Event
from modelling.models import CustomerScore
from modelling.scoring import score_chunk, score_plan
from modelling.targeting import targeting_list_create
from tests.api.conftest import DEMO_ANCHOR, rows_of
from tests.api.test_experiments import experiment_body
from tests.factories import T0, campaign_make, customer_make, experiment_make

pytestmark = pytest.mark.django_db

ABSURD = 1e308


@pytest.mark.parametrize("age, status", [(ABSURD, 400), (-ABSURD, 400),
                                         (ATTRIBUTE_NUMBER_MAX * 1.01, 400),
                                         (ATTRIBUTE_NUMBER_MAX, 201), (34, 201)])
def test_a_numeric_attribute_must_lie_in_its_range(api, age, status):
    response = api.post("/api/v1/customers/", {"external_id": "c1", "attributes": {"age": age}},
                        format="json")
    assert response.status_code == status
    if status == 400:
        assert "attributes.age" in response.json()["error"]["fields"]
        assert not Customer.objects.exists()


def test_a_bulk_row_with_an_absurd_attribute_is_named(api):
    rows = [{"external_id": "ok", "attributes": {"age": 30}},
            {"external_id": "bad", "attributes": {"age": ABSURD}}]
    response = api.post("/api/v1/customers/bulk/", {"customers": rows}, format="json")
    assert list(rows_of(response)) == [1]
    assert "attributes.age" in rows_of(response)[1]


@pytest.mark.parametrize("value", [1.7e308, -1.7e308, AMOUNT_MAX * 2])
def test_an_event_value_must_lie_in_its_range(api, value):
    customer = customer_make().external_id
    rows = [{"customer": customer, "kind": "purchase", "occurred_at": T0.isoformat(),
             "value": 20.0},
            {"customer": customer, "kind": "purchase", "occurred_at": T0.isoformat(),
             "value": value}]
    errors = rows_of(api.post("/api/v1/events/bulk/", {"events": rows}, format="json"))
    assert list(errors) == [1] and list(errors[1]) == ["value"]
    assert not Event.objects.exists()


def test_conversions_of_absurd_value_are_refused_so_the_experiment_stays_analysable(api):
    experiment = experiment_transition(experiment=experiment_make(), to=Experiment.Status.RUNNING)
    customer = customer_make()
    assign_customer(experiment=experiment, customer=customer, now=T0)
    row = {"customer": customer.external_id, "occurred_at": "2026-06-02T10:00:00Z",
           "value": 1.7e308}
    path = f"/api/v1/experiments/{experiment.key}/conversions/"
    errors = rows_of(api.post(path, {"conversions": [row, dict(row)]}, format="json"))
    assert set(errors) == {0, 1} and all("value" in e for e in errors.values())
    assert not Event.objects.exists()


@pytest.mark.parametrize("arm_changes, field", [
    ({"weight": ABSURD}, "arms[1].weight"),
    ({"weight": WEIGHT_MAX * 2}, "arms[1].weight"),
    ({"cost_per_contact": 1e12}, "arms[1].cost_per_contact"),
    ({"cost_per_conversion": ABSURD}, "arms[1].cost_per_conversion"),
])
def test_an_arm_number_out_of_range_is_a_400_naming_it(api, arm_changes, field):
    campaign_make(key="summer")
    body = experiment_body()
    body["arms"][1].update(arm_changes)
    response = api.post("/api/v1/experiments/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_the_service_refuses_an_absurd_weight_for_the_admin_too():
    with pytest.raises(ValidationError) as raised:
        experiment_create(
            campaign=campaign_make(), key="x", name="X",
            arms=[ArmSpec("control", 1.0, is_control=True), ArmSpec("email", ABSURD)],
            metrics=[MetricSpec("purchase", "purchase", "converted", role="primary")])
    assert "arms[1].weight" in raised.value.message_dict


def test_the_largest_weight_still_shares_customers():
    experiment = experiment_create(
        campaign=campaign_make(), key="x", name="X",
        arms=[ArmSpec("control", 1.0, is_control=True), ArmSpec("email", WEIGHT_MAX)],
        metrics=[MetricSpec("purchase", "purchase", "converted", role="primary")])
    assert experiment.arms.get(name="email").weight == WEIGHT_MAX


@pytest.mark.parametrize("field, value", [("harm_prices", ABSURD), ("harm_caps", ABSURD)])
def test_campaign_harm_numbers_are_bounded(api, field, value):
    body = {"key": "c", "name": "C", "channel": "email", "cost_per_contact": "0.05",
            "value_per_conversion": "40", field: {"unsubscribe": value}}
    response = api.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400
    assert any(path.startswith(field) for path in response.json()["error"]["fields"])


@pytest.mark.parametrize("body, field", [
    ({"budget": 1e308, "cost_per_contact": 1e-308}, "budget"),
    ({"cost_per_contact": 2e9}, "cost_per_contact"),
    ({"value_per_conversion": 1.7e308}, "value_per_conversion"),
    ({"harm_prices": {"unsubscribe": 1e308}}, "harm_prices.unsubscribe"),
    ({"harm_caps": {"unsubscribe": 1e308}}, "harm_caps.unsubscribe"),
])
def test_targeting_list_numbers_are_bounded(api, body, field):
    campaign = campaign_make()
    response = api.post(f"/api/v1/campaigns/{campaign.key}/target-lists/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_the_targeting_service_refuses_absurd_economics_for_the_admin_too(champion):
    with pytest.raises(ValidationError) as raised:
        targeting_list_create(campaign=champion.campaign, model_version=champion,
                              budget=1e308, cost_per_contact=1e-308)
    assert "budget" in raised.value.message_dict


def test_an_absurd_stored_attribute_does_not_poison_scoring(champion):
    """One customer with age 1e308, stored before ingest refused it: everyone is still scored."""
    victim = Customer.objects.order_by("id").first()
    attributes = {**victim.attributes, "age": 1e308}
    Customer.objects.filter(pk=victim.pk).update(attributes=attributes)
    CustomerAttributeVersion.objects.filter(customer=victim).update(attributes=attributes)
    for chunk in score_plan(chunk_size=1_000):
        score_chunk(version=champion, chunk=chunk, cutoff=DEMO_ANCHOR)
    scores = CustomerScore.objects.filter(model_version=champion)
    assert scores.count() == Customer.objects.count()
    assert all(np.isfinite(u) for u in scores.values_list("uplift", flat=True))
    with connection.cursor() as cursor:  # the JSON column holds valid JSON, no NaN
        cursor.execute(f"SELECT uplift_by_arm FROM {CustomerScore._meta.db_table}")
        for (text,) in cursor.fetchall():
            value = json.loads(text) if isinstance(text, str) else text
            assert all(np.isfinite(v) for v in value.values())


@pytest.mark.parametrize("params, field", [
    ({"max_epochs": 1e308}, "estimator_params.tarnet.max_epochs"),
    ({"no_such_setting": 1}, "estimator_params.tarnet"),
])
def test_hyperparameters_are_checked_before_a_worker_is_used(api, params, field):
    body = {"estimators": ["tarnet"], "estimator_params": {"tarnet": params}}
    response = api.post("/api/v1/experiments/any/train/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_response_model_params_are_bounded(api):
    response = api.post("/api/v1/campaigns/any/train-response/",
                        {"model_params": {"C": 1e308}}, format="json")
    assert response.status_code == 400
    assert "model_params.C" in response.json()["error"]["fields"]


def test_follow_up_shares_are_fractions(api):
    shares = {"policy": 1e308, "random": -1e308, "holdout": 1.0}
    response = api.post("/api/v1/target-lists/1/follow-ups/", {"shares": shares}, format="json")
    assert response.status_code == 400
    assert {"shares.policy", "shares.random"} <= set(response.json()["error"]["fields"])
