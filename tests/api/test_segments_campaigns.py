"""Segments (with a background count) and campaigns."""

import pytest

from core.models import TaskRun
from marketing.models import Campaign, Segment
from tests.factories import campaign_make, customer_make

pytestmark = pytest.mark.django_db

RULE = {"attr": "age", "op": "gte", "value": 40}


def test_it_creates_reads_and_lists_segments(api):
    response = api.post("/api/v1/segments/", {"key": "older", "name": "Older", "rule": RULE},
                        format="json")
    assert response.status_code == 201
    assert response.json()["rule"] == RULE and response.json()["member_count"] is None
    assert api.get("/api/v1/segments/older/").json()["name"] == "Older"
    assert [s["key"] for s in api.get("/api/v1/segments/").json()["results"]] == ["older"]
    assert api.get("/api/v1/segments/nope/").status_code == 404


@pytest.mark.parametrize("rule, path", [
    ({"attr": "height", "op": "eq", "value": 1}, "rule.attr"),
    ({"all": [{"attr": ["age"], "op": "eq", "value": 1}]}, "rule.all[0].attr"),
    ({"metric": "purchases_90d", "op": ["gt"], "value": 1}, "rule.op"),
    ({"any": []}, "rule.any"),
    ([1, 2], "rule"),
])
def test_it_rejects_bad_rules_with_their_path(api, rule, path):
    response = api.post("/api/v1/segments/", {"key": "s", "name": "S", "rule": rule},
                        format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [path]


def test_a_duplicate_key_is_a_field_error(api):
    Segment.objects.create(key="older", name="Older", rule=RULE)
    response = api.post("/api/v1/segments/", {"key": "older", "name": "O", "rule": RULE},
                        format="json")
    assert response.status_code == 400 and "key" in response.json()["error"]["fields"]


def test_counting_runs_as_a_task_whose_status_is_readable(
        api, django_capture_on_commit_callbacks, settings):
    for age in (30, 45, 50):
        customer_make(age=age)
    api.post("/api/v1/segments/", {"key": "older", "name": "Older", "rule": RULE}, format="json")
    # The task is queued on commit and runs eagerly here (no broker configured).
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/segments/older/count/")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    run_id = response.json()["id"]
    task = api.get(f"/api/v1/tasks/{run_id}/").json()
    # Two members: a small cell, so the count is not shown (core.small_cells), not
    # even in the task's result.
    assert (task["status"], task["result"]["members"], task["result"]["note"]) == (
        "succeeded", None, "fewer than 20 customers: suppressed to protect their privacy")
    segment = api.get("/api/v1/segments/older/").json()
    assert (segment["member_count"], segment["member_count_note"]) == (
        None, "fewer than 20 customers: suppressed to protect their privacy")
    settings.PRIVACY_MIN_CELL = 2
    assert api.get("/api/v1/segments/older/").json()["member_count"] == 2


def test_it_creates_lists_and_filters_campaigns(api):
    response = api.post("/api/v1/campaigns/", {
        "key": "summer", "name": "Summer", "channel": "email", "cost_per_contact": "0.05",
        "value_per_conversion": 40, "budget": None}, format="json")
    assert response.status_code == 201
    assert response.json()["cost_per_contact"] == "0.0500"
    campaign_make(key="winter", status=Campaign.Status.ACTIVE, channel="sms")
    assert api.get("/api/v1/campaigns/summer/").json()["status"] == "draft"
    keys = [c["key"] for c in api.get("/api/v1/campaigns/", {"status": "active"}).json()["results"]]
    assert keys == ["winter"]
    keys = [c["key"] for c in api.get("/api/v1/campaigns/", {"channel": "email"}).json()["results"]]
    assert keys == ["summer"]


@pytest.mark.parametrize("change, field", [
    ({"cost_per_contact": "-1"}, "cost_per_contact"),
    ({"channel": "pigeon"}, "channel"),
    ({"key": "Bad Key"}, "key"),
    ({"value_per_conversion": "1e400"}, "value_per_conversion"),
])
def test_it_rejects_bad_campaigns(api, change, field):
    body = {"key": "summer", "name": "Summer", "channel": "email", "cost_per_contact": "0.05",
            "value_per_conversion": "40", **change}
    response = api.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400 and field in response.json()["error"]["fields"]


def test_tasks_list_filters_by_status(api):
    TaskRun.objects.create(name="segment_size", status=TaskRun.Status.FAILED,
                           error="ValueError: boom\nTraceback...")
    TaskRun.objects.create(name="segment_size")
    failed = api.get("/api/v1/tasks/", {"status": "failed"}).json()["results"]
    assert [(t["status"], t["error"]) for t in failed] == [("failed", "ValueError: boom")]
    assert api.get("/api/v1/tasks/123456/").status_code == 404
