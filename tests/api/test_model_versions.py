"""Model versions: list with filters, detail, training and scoring requests."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User

from core.models import TaskRun
from experiments.assignment import assign_customer
from experiments.demo import demo_seed
from experiments.models import Experiment
from experiments.services import experiment_transition
from marketing.models import Campaign, Segment
from marketing.segment_rules import segment_members
from modelling.models import CustomerScore, ModelVersion
from tests.factories import campaign_make, customer_make, experiment_make, folder_sha256

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [v["id"] for v in response.json()["results"]]


def test_the_list_filters_by_campaign_experiment_kind_status_and_champion(api, champion):
    other = ModelVersion.objects.create(
        campaign=campaign_make(key="winter"), kind="response", estimator="propensity_to_buy",
        target_metric="purchase_30d", status="failed", status_reason="ValueError: too few")
    assert ids(api.get("/api/v1/model-versions/")) == [other.id, champion.id]  # newest first
    assert ids(api.get("/api/v1/model-versions/", {"campaign": "winter"})) == [other.id]
    assert ids(api.get("/api/v1/model-versions/",
                       {"experiment": champion.experiment.key})) == [champion.id]
    assert ids(api.get("/api/v1/model-versions/", {"kind": "uplift"})) == [champion.id]
    assert ids(api.get("/api/v1/model-versions/", {"status": "failed"})) == [other.id]
    assert ids(api.get("/api/v1/model-versions/", {"champion": "true"})) == [champion.id]
    assert ids(api.get("/api/v1/model-versions/", {"champion": "false"})) == [other.id]
    summary = api.get("/api/v1/model-versions/", {"kind": "uplift"}).json()["results"][0]
    assert "metrics" not in summary and "artifact_path" not in summary
    assert (summary["campaign"], summary["estimator"], summary["is_champion"]) == (
        champion.campaign.key, "tarnet", True)


@pytest.mark.parametrize("params, field", [
    ({"kind": "forest"}, "kind"), ({"status": "done"}, "status"),
    ({"champion": "maybe"}, "champion"), ({"campaign": "not a slug"}, "campaign"),
])
def test_a_bad_filter_is_a_400_naming_it(api, params, field):
    response = api.get("/api/v1/model-versions/", params)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_the_detail_has_the_held_out_quality_but_not_the_artifact_path(api, champion):
    body = api.get(f"/api/v1/model-versions/{champion.id}/").json()
    assert "artifact_path" not in body and "feature_reference" not in body
    assert body["artifact_sha256"] == folder_sha256(Path(champion.artifact_path))
    assert body["rows_train"] + body["rows_validation"] + body["rows_test"] == 600
    assert body["selection_score"] == body["metrics"]["mean"]["qini"]
    assert body["metrics"]["arm_names"] == ["control", "email", "email_discount"]
    assert set(body["curves"]) == {"email", "email_discount"}
    assert len(body["curves"]["email"]["x"]) == len(body["curves"]["email"]["qini"]) > 2
    assert body["params"] == {"random_state": 0, "max_epochs": 2}
    assert body["feature_spec"] == champion.feature_spec
    assert (body["status"], body["kind"], body["experiment"], body["training_seconds"] > 0) == (
        "ready", "uplift", champion.experiment.key, True)
    assert api.get(f"/api/v1/model-versions/{champion.id + 1}/").status_code == 404


def test_training_through_the_api_registers_a_version_with_the_given_params(
        api, demo_experiment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/experiments/{demo_experiment.key}/train/", {
            "estimators": ["tarnet"], "baselines": [], "metric": "revenue",
            "estimator_params": {"tarnet": {"max_epochs": 1}}, "random_state": 3},
            format="json")
    assert response.status_code == 202, response.content
    queued = response.json()
    assert (queued["name"], queued["status"]) == ("uplift_model_train", "queued")
    task = api.get(f"/api/v1/tasks/{queued['id']}/").json()
    assert task["status"] == "succeeded", task["error"]
    (version_id,) = task["result"]["model_version_ids"]
    body = api.get(f"/api/v1/model-versions/{version_id}/").json()
    assert (body["estimator"], body["target_metric"], body["params"], body["task_run"]) == (
        "tarnet", "revenue", {"random_state": 3, "max_epochs": 1}, queued["id"])
    assert body["experiment"] == demo_experiment.key and body["status"] == "ready"


@pytest.fixture
def small_experiment(db):
    experiment = experiment_transition(experiment=experiment_make(), to=Experiment.Status.RUNNING)
    assign_customer(experiment=experiment, customer=customer_make())
    return experiment


@pytest.mark.parametrize("body, field", [
    ({"estimators": ["nope"]}, "estimators"),
    ({"estimators": []}, "estimators"),
    ({"estimators": "tarnet"}, "estimators"),
    ({"baselines": ["Z"]}, "baselines"),
    ({"metric": "nope"}, "metric"),
    ({"estimator_params": {"dragonnet": {}}, "estimators": ["tarnet"]}, "estimator_params"),
    ({"estimator_params": {"tarnet": 3}, "estimators": ["tarnet"]}, "estimator_params.tarnet"),
    ({"random_state": -1}, "random_state"),
])
def test_a_bad_training_request_is_a_400_naming_the_field(api, small_experiment, body, field):
    response = api.post(f"/api/v1/experiments/{small_experiment.key}/train/", body,
                        format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field], response.json()
    assert not TaskRun.objects.exists()


def test_training_needs_assigned_customers(api):
    experiment = experiment_make()
    response = api.post(f"/api/v1/experiments/{experiment.key}/train/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "experiment": [f"{experiment.key} has no assigned customers"]}
    assert api.post("/api/v1/experiments/nope/train/", {}, format="json").status_code == 404


# The request trains as of now, so this demo's timeline ends today.
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def test_a_response_model_trains_on_the_campaigns_customers(
        api, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    demo_seed(customers=600, seed=1, anchor=TODAY)
    campaign = Campaign.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/campaigns/{campaign.key}/train-response/", {
            "window_days": 30, "model_params": {"max_epochs": 2, "batch_size": 256}},
            format="json")
    assert response.status_code == 202, response.content
    assert response.json()["params"] == {
        "campaign_id": campaign.id, "event_kind": "purchase", "window_days": 30,
        "model_params": {"max_epochs": 2, "batch_size": 256}}
    task = api.get(f"/api/v1/tasks/{response.json()['id']}/").json()
    assert task["status"] == "succeeded", task["error"]
    body = api.get(f"/api/v1/model-versions/{task['result']['model_version_id']}/").json()
    assert (body["kind"], body["estimator"], body["target_metric"], body["experiment"]) == (
        "response", "propensity_to_buy", "purchase_30d", None)
    assert body["rows_train"] + body["rows_test"] == 600
    assert body["selection_score"] == body["metrics"]["auc"]


@pytest.mark.parametrize("body, field", [
    ({"event_kind": "nope"}, "event_kind"), ({"window_days": 0}, "window_days"),
    ({"window_days": 366}, "window_days"), ({"model_params": [1]}, "model_params"),
])
def test_a_bad_response_training_request_is_a_400(api, body, field):
    campaign = campaign_make()
    response = api.post(f"/api/v1/campaigns/{campaign.key}/train-response/", body,
                        format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert api.post("/api/v1/campaigns/nope/train-response/", {},
                    format="json").status_code == 404
    assert not TaskRun.objects.exists()


def test_scoring_a_segment_replaces_the_scores_of_its_members(
        api, champion, django_capture_on_commit_callbacks):
    CustomerScore.objects.filter(model_version=champion).delete()
    segment = Segment.objects.get(key="recent_buyers")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/model-versions/{champion.id}/score/",
                            {"segment": "recent_buyers"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["params"]["segment_id"] == segment.id
    task = api.get(f"/api/v1/tasks/{response.json()['id']}/").json()
    assert task["status"] == "succeeded", task["error"]
    cutoff = datetime.fromisoformat(task["params"]["cutoff"])
    members = set(segment_members(segment.rule, as_of=cutoff).values_list("id", flat=True))
    scored = set(CustomerScore.objects.filter(model_version=champion)
                 .values_list("customer_id", flat=True))
    assert scored == members and 0 < len(members) < 600
    assert task["result"]["customers_scored"] == len(members)


def test_scoring_needs_a_ready_version_and_a_known_segment(api):
    version = ModelVersion.objects.create(campaign=campaign_make(), kind="uplift",
                                          estimator="tarnet", target_metric="purchase",
                                          status="rejected")
    response = api.post(f"/api/v1/model-versions/{version.id}/score/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "model_version": [f"version {version.id} is rejected, not ready"]}
    response = api.post(f"/api/v1/model-versions/{version.id}/score/", {"segment": "nope"},
                        format="json")
    assert response.json()["error"]["fields"] == {"segment": ["no segment with this key"]}
    assert api.post(f"/api/v1/model-versions/{version.id + 1}/score/").status_code == 404
    assert not TaskRun.objects.exists()


def test_a_staff_session_needs_the_model_permission_to_read_and_to_score(client):
    champion = ModelVersion.objects.create(campaign=campaign_make(), kind="uplift",
                                           estimator="tarnet", target_metric="purchase",
                                           status="ready")
    user = User.objects.create_user("ann", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    client.force_login(user)
    assert client.get("/api/v1/model-versions/").status_code == 200
    response = client.post(f"/api/v1/model-versions/{champion.id}/score/", {},
                           content_type="application/json")
    assert response.status_code == 403
    # The admin's Score action needs the same permission (core.run_tasks), not change.
    assert "core.run_tasks" in response.json()["error"]["message"]
    assert client.get(f"/api/v1/model-versions/{champion.id}/scores/").status_code == 403
