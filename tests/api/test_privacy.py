"""Erasure wipes personal data and keeps experiment counts; export returns everything."""

import pytest

from core.pseudonyms import idempotency_key_pseudonym
from experiments.assignment import assign_customer
from experiments.models import Experiment
from experiments.outcomes import outcome_sums
from experiments.services import experiment_transition, exposures_record
from marketing.models import (
    ClusterMembership,
    CustomerAttribute,
    CustomerPrediction,
    ErasureRecord,
    Event,
)
from marketing.privacy import customer_data_export, customer_erase
from modelling.models import CustomerScore, ModelVersion, TargetingEntry, TargetingList
from tests.api.conftest import rows_of
from tests.factories import T0, attributes_declare, customer_make, event_make, experiment_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def erasable():
    attributes_declare()
    CustomerAttribute.objects.create(key="email", kind="categorical", is_personal=True)
    experiment = experiment_transition(experiment=experiment_make(), to=Experiment.Status.RUNNING)
    customer = customer_make(age=40, email="ann@example.org")
    assign_customer(experiment=experiment, customer=customer, now=T0)
    event_make(customer, "purchase", T0, 30.0, properties={"address": "1 Main St"})
    event_make(customer, "visit", T0)
    return experiment, customer


def test_erasure_wipes_personal_data_and_keeps_what_experiments_count(erasable):
    experiment, customer = erasable
    before = outcome_sums(experiment)
    record = customer_erase(customer=customer, requested_by="dpo")
    customer.refresh_from_db()
    assert customer.attributes == {"age": 40}
    assert customer.erased_at is not None
    assert list(Event.objects.values_list("properties", flat=True)) == [{}, {}]
    assert outcome_sums(experiment) == before
    assert (record.attributes_removed, record.events_scrubbed, record.requested_by) == (
        ["email"], 1, "dpo")


def test_erasure_deletes_behaviour_scores_and_cluster_places(erasable):
    _, customer = erasable
    other = customer_make(age=30)
    for who in (customer, other):
        CustomerPrediction.objects.create(customer=who, name="churn_risk", value=0.8,
                                          model_version_id=1, scored_at=T0)
        ClusterMembership.objects.create(run_id=1, customer=who, cluster=2, assigned_at=T0)
    customer_erase(customer=customer)
    assert list(CustomerPrediction.objects.values_list("customer_id", flat=True)) == [other.pk]
    assert list(ClusterMembership.objects.values_list("customer_id", flat=True)) == [other.pk]


def test_erasing_twice_is_recorded_twice_and_keeps_the_first_time(erasable):
    _, customer = erasable
    first = customer_erase(customer=customer)
    second = customer_erase(customer=customer)
    customer.refresh_from_db()
    assert customer.erased_at == first.erased_at
    assert (second.attributes_removed, second.events_scrubbed) == ([], 0)
    assert ErasureRecord.objects.count() == 2


def test_the_export_holds_everything_stored(erasable):
    experiment, customer = erasable
    exposures_record(experiment=experiment, rows=[
        {"customer": customer.external_id, "exposed_at": T0, "idempotency_key": "s1"}])
    export = customer_data_export(customer=customer)
    assert export["customer"]["attributes"] == {"age": 40, "email": "ann@example.org"}
    assert [(e["kind"], e["properties"]) for e in export["events"]] == [
        ("purchase", {"address": "1 Main St"}), ("visit", {})]
    assert [a["experiment"] for a in export["assignments"]] == [experiment.key]
    # Stored, and so exported, as the keyed pseudonym (core.pseudonyms).
    assert [e["idempotency_key"] for e in export["exposures"]] == [
        idempotency_key_pseudonym("s1")]
    assert export["erasures"] == []


def test_the_endpoints_erase_and_export(privacy, erasable):
    _, customer = erasable
    path = f"/api/v1/customers/{customer.external_id}"
    response = privacy.post(f"{path}/erase/")
    assert response.status_code == 200
    assert response.json()["requested_by"] == "api-key:crm-privacy"
    # The CRM's id still finds the erased customer (hashed on the way in).
    export = privacy.get(f"{path}/export/").json()
    assert "email" not in export["customer"]["attributes"]
    assert export["erasures"][0]["attributes_removed"] == ["email"]
    assert privacy.post("/api/v1/customers/nobody/erase/").status_code == 404


def test_an_erased_customer_accepts_no_personal_attribute_again(api, erasable):
    _, customer = erasable
    customer_erase(customer=customer)
    rows = [{"external_id": customer.external_id, "attributes": {"email": "again@x.org"}}]
    response = api.post("/api/v1/customers/bulk/", {"customers": rows}, format="json")
    assert "attributes" in rows_of(response)[0]
    rows = [{"external_id": customer.external_id, "attributes": {"age": 41}}]
    response = api.post("/api/v1/customers/bulk/", {"customers": rows}, format="json")
    assert response.json()["updated"] == 1


def test_only_a_privacy_key_may_export_or_erase(reader, api, erasable):
    _, customer = erasable
    for client in (reader, api):
        response = client.get(f"/api/v1/customers/{customer.external_id}/export/")
        assert response.status_code == 403
        assert "privacy scope" in response.json()["error"]["message"]
        assert client.post(f"/api/v1/customers/{customer.external_id}/erase/").status_code == 403
    customer.refresh_from_db()
    assert customer.erased_at is None


def test_the_export_holds_the_customers_scores_and_targeting_entries(privacy, erasable):
    experiment, customer = erasable
    version = ModelVersion.objects.create(
        campaign=experiment.campaign, experiment=experiment, kind="uplift", estimator="tarnet",
        target_metric="purchase", status="ready")
    CustomerScore.objects.create(model_version=version, customer=customer, uplift=0.125,
                                 best_arm="email", uplift_by_arm={"email": 0.125},
                                 response=0.25, scored_at=T0)
    target = TargetingList.objects.create(campaign=experiment.campaign, model_version=version)
    TargetingEntry.objects.create(targeting_list=target, customer=customer, rank=1, arm="email",
                                  uplift=0.125, expected_profit=4.5)
    export = privacy.get(f"/api/v1/customers/{customer.external_id}/export/").json()
    assert export["scores"] == [
        {"model_version": version.id, "campaign": experiment.campaign.key, "kind": "uplift",
         "uplift": 0.125, "best_arm": "email", "uplift_by_arm": {"email": 0.125},
         "response": 0.25, "scored_at": "2026-06-01T12:00:00+00:00"}]
    assert export["targeting_entries"] == [
        {"targeting_list": target.id, "campaign": experiment.campaign.key,
         "created_at": target.created_at.isoformat(), "rank": 1, "arm": "email",
         "uplift": 0.125, "expected_profit": 4.5}]
    other = customer_make()
    assert customer_data_export(customer=other)["scores"] == []
    assert customer_data_export(customer=other)["targeting_entries"] == []
