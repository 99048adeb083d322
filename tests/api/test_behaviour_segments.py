"""Churn risk and expected revenue per customer and in bulk; segmentation runs and clusters."""

from datetime import UTC, datetime

import pytest

from core.models import AuditEntry, TaskRun
from marketing.models import Campaign, ClusterMembership, CustomerPrediction, Segment
from modelling.models import SegmentationRun, SegmentCluster
from tests.factories import customer_make

pytestmark = pytest.mark.django_db
AT = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def campaign():
    return Campaign.objects.create(key="winter", name="Winter", channel="email",
                                   cost_per_contact="0.1", value_per_conversion="30")


@pytest.fixture
def scored(api):
    customers = [customer_make() for _ in range(5)]
    for i, customer in enumerate(customers):
        CustomerPrediction.objects.create(customer=customer, name="churn_risk", value=i / 5,
                                          model_version_id=7, scored_at=AT)
        CustomerPrediction.objects.create(customer=customer, name="expected_revenue_90d",
                                          value=10.0 * i, model_version_id=8, scored_at=AT)
    return customers


def test_a_customers_scores_and_the_bulk_list(api, scored):
    ids = [c.external_id for c in scored]
    body = api.get(f"/api/v1/customers/{ids[3]}/predictions/").json()
    assert {r["name"]: r["value"] for r in body["results"]} == {
        "churn_risk": 0.6, "expected_revenue_90d": 30.0}
    rows = api.get("/api/v1/predictions/", {"name": "churn_risk", "min_value": 0.5}).json()
    assert sorted(r["customer"] for r in rows["results"]) == sorted(ids[3:])
    bad = api.get("/api/v1/predictions/", {"name": "happiness"})
    assert bad.status_code == 400 and "name" in bad.content.decode()
    assert api.get("/api/v1/customers/nobody/predictions/").status_code == 404


def test_training_and_segmentation_requests_are_queued_or_refused(api, campaign):
    ok = api.post("/api/v1/campaigns/winter/train-behaviour/", {"target": "churn"},
                  format="json")
    assert ok.status_code == 202, ok.content
    assert TaskRun.objects.get(id=ok.json()["id"]).params["candidates"] == [
        "aggregate_mlp", "lightgbm", "sequence_gru"]
    bad = api.post("/api/v1/campaigns/winter/train-behaviour/", {"target": "mood"},
                   format="json")
    assert bad.status_code == 400 and "target" in bad.content.decode()
    ok = api.post("/api/v1/campaigns/winter/segmentations/", {"k_min": 3, "k_max": 6},
                  format="json")
    assert ok.status_code == 202, ok.content
    run = SegmentationRun.objects.get(campaign=campaign)
    assert (run.k_min, run.k_max, run.task_run_id) == (3, 6, ok.json()["id"])
    bad = api.post("/api/v1/campaigns/winter/segmentations/", {"k_min": 6, "k_max": 3},
                   format="json")
    assert bad.status_code == 400 and "k_max" in bad.content.decode()


def test_runs_clusters_a_customers_cluster_and_saving_one(api, campaign):
    customers = [customer_make() for _ in range(4)]
    run = SegmentationRun.objects.create(campaign=campaign, cutoff=AT, status="ready", k=2,
                                         embedding="autoencoder", customers=4)
    for index in (0, 1):
        SegmentCluster.objects.create(run=run, index=index, size=2,
                                      profile={"index": index, "size": 2})
    for i, customer in enumerate(customers):
        ClusterMembership.objects.create(run_id=run.id, customer=customer, cluster=i % 2,
                                         assigned_at=AT)
    listed = api.get("/api/v1/segmentation-runs/").json()["results"]
    assert [c["index"] for c in listed[0]["clusters"]] == [0, 1]
    assert api.get(f"/api/v1/segmentation-runs/{run.id}/").json()["k"] == 2
    saved = api.post(f"/api/v1/segmentation-runs/{run.id}/clusters/1/save/",
                     {"key": "odd_ones", "name": "Odd ones"}, format="json")
    assert saved.status_code == 201, saved.content
    segment = Segment.objects.get(key="odd_ones")
    assert segment.rule == {"cluster": {"run": run.id, "index": 1}}
    assert AuditEntry.objects.filter(action="create", target=f"segment {segment.id}").exists()
    member = api.get(f"/api/v1/segmentation-runs/{run.id}/customers/{customers[1].external_id}/").json()
    assert (member["cluster"], member["segment"]) == (1, "odd_ones")
    again = api.post(f"/api/v1/segmentation-runs/{run.id}/clusters/1/save/",
                     {"key": "odd_again", "name": "Again"}, format="json")
    assert again.status_code == 400 and "already saved" in again.content.decode()
    missing = api.post(f"/api/v1/segmentation-runs/{run.id}/clusters/9/save/",
                       {"key": "nine", "name": "Nine"}, format="json")
    assert missing.status_code == 404


def test_a_customers_export_holds_their_scores_and_clusters(privacy, scored):
    customer = scored[2]
    ClusterMembership.objects.create(run_id=41, customer=customer, cluster=3, assigned_at=AT)
    body = privacy.get(f"/api/v1/customers/{customer.external_id}/export/").json()
    section = body["behaviour"]
    assert {(r.get("score"), r.get("value")) for r in section if "score" in r} == {
        ("churn_risk", 0.4), ("expected_revenue_90d", 20.0)}
    assert [(r["segmentation_run"], r["cluster"]) for r in section if "cluster" in r] == [(41, 3)]


def test_a_cluster_rule_names_a_cluster_that_exists(api):
    from django.core.exceptions import ValidationError

    from marketing.segment_rules import segment_rule_validate

    with pytest.raises(ValidationError, match="has no cluster 2"):
        segment_rule_validate({"cluster": {"run": 99, "index": 2}})
    with pytest.raises(ValidationError, match="rule.cluster"):
        segment_rule_validate({"cluster": {"run": "x", "index": 2}})
