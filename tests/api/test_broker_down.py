"""With the broker down, queueing answers 503 fast; the run stays queued and is sent later."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from config.celery import app
from core.models import TaskRun
from core.task_runs import task_runs_reap
from marketing.models import Segment
from marketing.services import segment_create
from tests.factories import customer_make

pytestmark = pytest.mark.django_db(transaction=True)  # the send happens on commit


@contextmanager
def broker_down():
    """Sends go to a port nobody listens on (connection refused), not run eagerly."""
    saved = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, "redis://127.0.0.1:1/0"
    app._pool, app.amqp._producer_pool = None, None
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.broker_url = saved
        app._pool, app.amqp._producer_pool = None, None


def _segment() -> Segment:
    for age in (25, 45, 65):
        customer_make(age=age)
    return segment_create(key="over_40", name="Over 40",
                          rule={"attr": "age", "op": "gt", "value": 40})


def _send_later_when_back(settings, run: TaskRun) -> TaskRun:
    later = timezone.now() + timedelta(seconds=settings.TASK_RUN_SEND_GRACE_SECONDS + 1)
    assert task_runs_reap(now=later)["sent"] == [run.id]
    run.refresh_from_db()
    return run


def test_the_api_answers_503_within_2_s_and_the_run_is_sent_when_the_broker_is_back(
        api, settings):
    segment = _segment()
    with broker_down():
        started = time.monotonic()
        response = api.post(f"/api/v1/segments/{segment.key}/count/")
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.content
        assert elapsed < 2.0
        error = response.json()["error"]
        assert error["code"] == "queue_unavailable"
        assert "task queue is unreachable" in error["message"]
        assert "will be sent as soon as the queue is back" in error["message"]
        assert response["Retry-After"] == "60"
        run = TaskRun.objects.get(id=int(error["fields"]["task_run"][0]))
        assert run.status == TaskRun.Status.QUEUED and run.sent_at is None
        assert task_runs_reap(now=timezone.now() + timedelta(hours=1))["sent"] == []  # still down
    # The broker is back (eager here: the sent task runs in this process).
    run = _send_later_when_back(settings, run)
    assert run.status == TaskRun.Status.SUCCEEDED and run.result["segment_id"]
    assert run.sent_at is not None


def test_an_admin_action_answers_503_with_the_reason(admin_client, settings):
    from tests.factories import attributes_declare

    attributes_declare()
    segment = _segment()
    with broker_down():
        started = time.monotonic()
        response = admin_client.post(reverse("admin:marketing_segment_changelist"),
                                     {"action": "count_members", "_selected_action": [segment.id]})
        assert time.monotonic() - started < 2.0
    assert response.status_code == 503
    assert b"Task queue unavailable" in response.content
    run = TaskRun.objects.get()
    assert run.status == TaskRun.Status.QUEUED and run.sent_at is None
    assert _send_later_when_back(settings, run).status == TaskRun.Status.SUCCEEDED
