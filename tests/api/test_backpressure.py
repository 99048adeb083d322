"""One API key may have at most API_MAX_ACTIVE_TASKS_PER_KEY tasks queued or running."""

from unittest import mock

import pytest

from core.models import ApiKey, TaskRun
from marketing.models import Segment
from tests.api.conftest import client_with_key

pytestmark = pytest.mark.django_db

RULE = {"attr": "age", "op": "gte", "value": 40}


@pytest.fixture
def segment(db):
    return Segment.objects.create(key="older", name="Older", rule=RULE)


def count(client, segment):
    return client.post(f"/api/v1/segments/{segment.key}/count/")


def test_a_key_past_its_limit_gets_429_with_retry_after(api, segment, settings):
    settings.API_MAX_ACTIVE_TASKS_PER_KEY = 3
    settings.API_TASKS_RETRY_AFTER_SECONDS = 30
    # Queued, never run: the worker is busy (the eager task is not sent here).
    with mock.patch("marketing.tasks.segment_size.delay"):
        statuses = [count(api, segment).status_code for _ in range(4)]
        refused = count(api, segment)
    assert statuses == [202, 202, 202, 429]
    assert refused["Retry-After"] == "30"
    error = refused.json()["error"]
    assert error["code"] == "too_many_tasks"
    assert "3 background tasks" in error["message"] and "API_MAX_ACTIVE_TASKS_PER_KEY" in \
        error["message"]
    key = ApiKey.objects.get(name="crm-write")
    assert TaskRun.objects.filter(api_key=key).count() == 3


def test_finished_runs_free_the_key_and_other_keys_are_not_held_back(api, segment, settings):
    settings.API_MAX_ACTIVE_TASKS_PER_KEY = 1
    with mock.patch("marketing.tasks.segment_size.delay"):
        assert count(api, segment).status_code == 202
        assert count(api, segment).status_code == 429
        other = client_with_key("read")  # its scope aside, a separate key
        ApiKey.objects.filter(name="crm-read").update(scope=ApiKey.Scope.WRITE)
        assert count(other, segment).status_code == 202
        TaskRun.objects.filter(status=TaskRun.Status.QUEUED).update(
            status=TaskRun.Status.SUCCEEDED)
        assert count(api, segment).status_code == 202


def test_every_task_queueing_endpoint_is_limited(api, champion, settings):
    settings.API_MAX_ACTIVE_TASKS_PER_KEY = 1
    key = ApiKey.objects.get(name="crm-write")
    TaskRun.objects.create(name="busy", api_key=key)
    experiment = champion.experiment
    segment = Segment.objects.create(key="older", name="Older", rule=RULE)
    paths = [f"/api/v1/segments/{segment.key}/count/",
             f"/api/v1/experiments/{experiment.key}/analyse/",
             f"/api/v1/experiments/{experiment.key}/train/",
             f"/api/v1/campaigns/{champion.campaign.key}/train-response/",
             f"/api/v1/model-versions/{champion.id}/score/"]
    before = TaskRun.objects.count()
    for path in paths:
        response = api.post(path, {}, format="json")
        assert response.status_code == 429, (path, response.content)
        assert response["Retry-After"]
    assert TaskRun.objects.count() == before  # nothing was queued
