"""Task delivery: claims with a lease, lost workers, the reaper, retries (core.task_runs)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import psycopg.errors
import pytest
from django.db import IntegrityError, InterfaceError, OperationalError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from core.models import TaskRun
from core.task_delivery import retry_countdown, run_task, transient_reason
from core.task_runs import (
    LeaseLost,
    task_run_claim,
    task_run_part_done,
    task_run_progress,
    task_run_succeed,
    task_runs_reap,
)
from marketing.models import Segment
from marketing.services import segment_create
from tests.factories import attributes_declare, customer_make

pytestmark = pytest.mark.django_db

SEGMENT_SIZE = "marketing.tasks.segment_size"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _segment() -> Segment:
    attributes_declare()
    for age in (20, 40, 60):
        customer_make(age=age)
    return segment_create(key="over_30", name="Over 30",
                          rule={"attr": "age", "op": "gt", "value": 30})


def _running(*, holder: str, expires_in: float, attempts: int = 1, rerun: bool = True,
             task: str = SEGMENT_SIZE, params: dict | None = None) -> TaskRun:
    now = timezone.now()
    return TaskRun.objects.create(
        name="segment_size", task=task, rerun=rerun, params=params or {},
        status=TaskRun.Status.RUNNING, started_at=now, attempts=attempts,
        lease_token="old-token", lease_holder=holder,
        lease_expires_at=now + timedelta(seconds=expires_in), heartbeat_at=now)


def test_a_queued_run_is_claimed_once_with_a_lease(settings):
    run = TaskRun.objects.create(name="x", task=SEGMENT_SIZE)
    before = timezone.now()
    claimed = task_run_claim(run.id)
    assert claimed.status == TaskRun.Status.RUNNING and claimed.attempts == 1
    assert len(claimed.lease_token) == 32
    assert claimed.lease_holder == f"{socket.gethostname()}:{os.getpid()}"
    lease = (claimed.lease_expires_at - before).total_seconds()
    assert settings.TASK_LEASE_SECONDS - 1 < lease < settings.TASK_LEASE_SECONDS + 5
    # This process holds it and is alive: a duplicate message does nothing.
    assert task_run_claim(run.id) is None
    assert TaskRun.objects.get(id=run.id).lease_token == claimed.lease_token


def test_a_redelivered_run_whose_process_died_is_taken_over_at_once():
    """The OOM-killer case: the pool process is gone, its lease has not run out yet."""
    run = _running(holder=f"{socket.gethostname()}:{_dead_pid()}", expires_in=300)
    claimed = task_run_claim(run.id)
    assert claimed is not None and claimed.attempts == 2
    assert claimed.lease_token not in {"", "old-token"}
    assert "worker process" in claimed.error and "is gone" in claimed.error
    # The lost holder can no longer write.
    with pytest.raises(LeaseLost):
        task_run_progress(run.id, 0.5, "old attempt", token="old-token")
    task_run_succeed(run.id, {"stale": True}, token="old-token")
    run.refresh_from_db()
    assert run.status == TaskRun.Status.RUNNING and run.result == {}


def test_a_run_held_on_another_host_waits_for_its_lease_to_expire():
    run = _running(holder="elsewhere:4242", expires_in=300)
    assert task_run_claim(run.id) is None
    TaskRun.objects.filter(id=run.id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1))
    claimed = task_run_claim(run.id)
    assert claimed is not None and claimed.attempts == 2 and "lease expired" in claimed.error


def test_the_reaper_restarts_a_lost_run_and_it_runs_again_from_the_start():
    segment = _segment()
    run = _running(holder="elsewhere:1", expires_in=-1, params={"segment_id": segment.id})
    report = task_runs_reap()
    assert report["requeued"] == [run.id] and report["sent"] == [run.id]
    run.refresh_from_db()  # eager in tests: the re-sent task has run here
    assert run.status == TaskRun.Status.SUCCEEDED and run.attempts == 2
    assert run.result["segment_id"] == segment.id  # the count itself: a small cell, not shown
    assert Segment.objects.get(id=segment.id).member_count == 2


def test_the_reaper_leaves_live_leases_alone():
    run = _running(holder="elsewhere:1", expires_in=60)
    assert task_runs_reap() == {"requeued": [], "failed": [], "sent": [], "unsendable": []}
    assert TaskRun.objects.get(id=run.id).status == TaskRun.Status.RUNNING


def test_an_at_most_once_run_whose_worker_was_lost_is_failed_with_the_reason():
    run = _running(holder="elsewhere:1", expires_in=-1, rerun=False,
                   task="jobs.tasks.campaign_scheduled_action_task")
    assert task_runs_reap()["failed"] == [run.id]
    run.refresh_from_db()
    assert run.status == TaskRun.Status.FAILED and run.finished_at is not None
    assert "worker lost on attempt 1" in run.error and "at most once" in run.error


def test_a_run_that_keeps_losing_its_worker_is_failed_after_the_last_attempt(settings):
    settings.TASK_RUN_MAX_ATTEMPTS = 3
    run = _running(holder="elsewhere:1", expires_in=-1, attempts=3)
    assert task_runs_reap()["failed"] == [run.id]
    run.refresh_from_db()
    assert run.status == TaskRun.Status.FAILED and "gave up after 3 attempts" in run.error


def test_the_reaper_sends_runs_left_queued_and_unsent(settings):
    segment = _segment()
    stale = TaskRun.objects.create(name="segment_size", task=SEGMENT_SIZE,
                                   params={"segment_id": segment.id})
    fresh = TaskRun.objects.create(name="segment_size", task=SEGMENT_SIZE,
                                   params={"segment_id": segment.id})
    sent_long_ago = TaskRun.objects.create(name="segment_size", task=SEGMENT_SIZE,
                                           params={"segment_id": segment.id})
    now = timezone.now()
    TaskRun.objects.filter(id=stale.id).update(
        created_at=now - timedelta(seconds=settings.TASK_RUN_SEND_GRACE_SECONDS + 5))
    TaskRun.objects.filter(id=sent_long_ago.id).update(
        sent_at=now - timedelta(seconds=settings.TASK_RUN_RESEND_SECONDS + 5))
    unknown = TaskRun.objects.create(name="legacy", task="")
    TaskRun.objects.filter(id=unknown.id).update(created_at=now - timedelta(hours=1))

    report = task_runs_reap()
    assert report["sent"] == [stale.id, sent_long_ago.id]
    assert report["unsendable"] == [unknown.id]
    statuses = dict(TaskRun.objects.values_list("id", "status"))
    assert statuses[stale.id] == statuses[sent_long_ago.id] == TaskRun.Status.SUCCEEDED
    assert statuses[fresh.id] == TaskRun.Status.QUEUED  # its own send may still be on its way
    assert statuses[unknown.id] == TaskRun.Status.FAILED


def test_a_part_counts_once_however_often_it_is_delivered():
    run = TaskRun.objects.create(name="customers_score", task="x")
    claimed = task_run_claim(run.id)
    token = claimed.lease_token
    assert task_run_part_done(run.id, token, "0-100", 4)
    assert task_run_part_done(run.id, token, "0-100", 4)  # redelivered
    assert task_run_part_done(run.id, token, "100-200", 4)
    assert TaskRun.objects.get(id=run.id).progress == pytest.approx(0.5)
    assert not task_run_part_done(run.id, "old-token", "200-300", 4)
    assert TaskRun.objects.get(id=run.id).progress == pytest.approx(0.5)


def _db_error(cause: Exception, cls=OperationalError) -> Exception:
    try:
        try:
            raise cause
        except Exception as inner:
            raise cls(str(inner)) from inner
    except Exception as outer:
        return outer


@pytest.mark.parametrize(("error", "reason"), [
    (_db_error(psycopg.errors.AdminShutdown("terminating connection due to administrator "
                                            "command")), "database connection lost"),
    (_db_error(psycopg.errors.SerializationFailure("could not serialize")),
     "serialization failure"),
    (_db_error(psycopg.errors.DeadlockDetected("deadlock detected")), "deadlock"),
    (OperationalError("server closed the connection unexpectedly"), "database connection lost"),
    (InterfaceError("connection already closed"), "database connection lost"),
    (BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
     "broker unavailable"),
    (_db_error(psycopg.errors.QueryCanceled("canceling statement due to statement timeout")),
     None),
    (OperationalError("database is locked"), None),
    (IntegrityError("duplicate key"), None),
    (ValueError("bad data"), None),
])
def test_only_named_transient_errors_are_retried(error, reason):
    assert transient_reason(error) == reason


def test_the_backoff_doubles_up_to_its_cap(settings):
    settings.TASK_RETRY_BACKOFF_SECONDS, settings.TASK_RETRY_BACKOFF_MAX_SECONDS = 2, 10
    assert [retry_countdown(n) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]


CALLS: list[int] = []


@run_task(rerun=True, name="tests.core.flaky_task")
def flaky_task(run: TaskRun) -> dict:
    CALLS.append(run.attempts)
    failures = run.params["failures"]
    if len(CALLS) <= failures:
        raise OperationalError("server closed the connection unexpectedly")
    if run.params.get("bug"):
        raise ValueError("a bug is not retried")
    return {"attempt": run.attempts}


@pytest.fixture
def calls():
    CALLS.clear()
    yield CALLS
    CALLS.clear()


def _flaky(**params) -> TaskRun:
    from core.task_runs import task_run_send

    run = TaskRun.objects.create(name="flaky", task=flaky_task.name, params=params)
    try:
        task_run_send(run)
    except Exception:  # noqa: BLE001 - the run records it; tests read the run
        pass
    run.refresh_from_db()
    return run


def test_a_transient_error_is_retried_and_the_run_succeeds(calls):
    run = _flaky(failures=2)
    assert calls == [1, 2, 3]
    assert run.status == TaskRun.Status.SUCCEEDED and run.result == {"attempt": 3}
    assert run.attempts == 3 and run.error == ""


def test_retries_stop_at_the_cap(calls, settings):
    settings.TASK_RUN_MAX_ATTEMPTS = 3
    run = _flaky(failures=10)
    assert calls == [1, 2, 3]
    assert run.status == TaskRun.Status.FAILED and "server closed the connection" in run.error


def test_a_bug_is_not_retried(calls):
    run = _flaky(failures=0, bug=True)
    assert calls == [1]
    assert run.status == TaskRun.Status.FAILED and "ValueError: a bug is not retried" in run.error


def test_the_reaper_tick_records_a_worker_heartbeat():
    from core.task_runs import worker_heartbeat_latest
    from jobs.tasks import task_runs_reap_task

    assert worker_heartbeat_latest() is None
    before = timezone.now()
    task_runs_reap_task.apply()
    assert worker_heartbeat_latest() >= before
