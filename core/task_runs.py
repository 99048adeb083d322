"""Bookkeeping and delivery of background jobs: queue, send, claim, lease, finish, reap.

A service creates a TaskRun and sends the Celery task with the run id once
the transaction commits (so the worker can see the row). Delivery model:

- **Claim.** A task claims its run with a conditional update: a queued run,
  or a running one whose holder is gone (its lease expired, or its process
  on this host no longer exists: a pool process killed mid-task and its
  message redelivered at once). Each claim gets a new ``lease_token``; every
  later write of the holder (heartbeat, progress, success, failure) is
  conditional on it, so a holder presumed lost can no longer write.
- **Lease.** The holder renews ``lease_expires_at`` with a heartbeat thread
  every ``TASK_HEARTBEAT_SECONDS`` while it runs.
- **Lost worker.** A run whose holder is gone is started over when
  ``rerun`` says it is safe to repeat (each task cleans up its previous
  attempt: receivers of ``task_run_lost``), at most
  ``TASK_RUN_MAX_ATTEMPTS`` times; otherwise, and for at-most-once tasks, it
  is failed with the reason. Nothing stays ``running`` forever.
- **Never sent.** A run whose message could not be sent (broker down) stays
  ``queued`` with ``sent_at`` NULL; the queueing request answers 503
  (BrokerUnavailable), and the reaper sends it once the broker is back.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.dispatch import Signal
from django.utils import timezone

from core.models import TaskRun, WorkerHeartbeat

logger = logging.getLogger(__name__)

# Sent (sender=TaskRun, run=, reason=) when an attempt of a run is given up
# because its worker was lost, before the run starts over or is failed: the
# app that owns the run's leftovers marks them (e.g. a ModelVersion left
# "training" becomes "failed").
task_run_lost = Signal()


class BrokerUnavailable(Exception):
    """The task queue could not be reached; the run is recorded and stays queued."""

    def __init__(self, run_id: int, cause: BaseException):
        self.run_id = run_id
        super().__init__(
            f"The task queue is unreachable, so task run {run_id} has not been started yet. "
            f"It is recorded and will be sent as soon as the queue is back "
            f"({type(cause).__name__}).")


class LeaseLost(Exception):
    """This holder's claim on the run was taken over: stop without writing."""


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError

    errors: tuple[type[BaseException], ...] = (OperationalError, ConnectionError, TimeoutError)
    try:
        import redis.exceptions

        errors += (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
    except ImportError:  # pragma: no cover - redis is pinned
        pass
    return errors


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_end(now: datetime, seconds: float | None = None) -> datetime:
    return now + timedelta(seconds=seconds or settings.TASK_LEASE_SECONDS)


# --- queue and send -------------------------------------------------------

def task_run_queue(*, name: str, params: dict, task) -> TaskRun:
    """Create the run and send ``task`` with its id once the data is committed.

    When the broker cannot be reached the commit stands, the run stays
    queued (the reaper sends it later) and BrokerUnavailable is raised out
    of the outermost ``transaction.atomic`` for the caller to answer 503.
    """
    run = TaskRun.objects.create(name=name, params=params, task=task.name,
                                 rerun=getattr(task, "rerun_on_lost", True))
    transaction.on_commit(lambda: task_run_send(run))
    return run


def task_run_send(run: TaskRun, *, countdown: float | None = None) -> None:
    """Hand the run's message to the broker; BrokerUnavailable when that fails fast."""
    task = current_app.tasks[run.task]
    if current_app.conf.task_always_eager:
        TaskRun.objects.filter(id=run.id).update(sent_at=timezone.now())
        task.apply_async((run.id,))  # runs here and now: no broker involved
        return
    try:
        # Nobody waits on the result (the run records it): without
        # ignore_result a Redis result backend would also subscribe this
        # process to the task's result channel, a second connection to fail.
        task.apply_async((run.id,), countdown=countdown, ignore_result=True)
    except _broker_errors() as exc:
        logger.warning("task run %s not sent: broker unavailable (%s)", run.id, exc)
        TaskRun.objects.filter(id=run.id, status=TaskRun.Status.QUEUED).update(
            step="waiting for the task queue")
        raise BrokerUnavailable(run.id, exc) from exc
    TaskRun.objects.filter(id=run.id).update(sent_at=timezone.now())


# --- claim, lease, progress, finish ----------------------------------------

def _claim_fields(now: datetime) -> dict:
    return {"status": TaskRun.Status.RUNNING, "started_at": now, "finished_at": None,
            "progress": 0.0, "lease_token": uuid.uuid4().hex, "lease_holder": _holder(),
            "lease_expires_at": _lease_end(now), "heartbeat_at": now,
            "attempts": F("attempts") + 1}


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed child not yet waited for is a zombie: gone all the same
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def task_run_holder_lost(run: TaskRun, now: datetime | None = None) -> str | None:
    """Why the running run's holder is gone, or None while it may still be working."""
    now = now or timezone.now()
    if run.lease_expires_at is None:
        started = run.started_at or run.created_at
        if started < now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT):
            return f"no lease and started at {started:%Y-%m-%d %H:%M:%S}"
        return None
    if run.lease_expires_at < now:
        return f"its lease expired at {run.lease_expires_at:%Y-%m-%d %H:%M:%S}"
    host, _, pid = run.lease_holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid() \
            and _pid_gone(int(pid)):
        return f"its worker process {pid} on {host} is gone"
    return None


def task_run_give_up(run: TaskRun, reason: str) -> str | None:
    """Give up the lost attempt of a running run: "requeued", "failed", or None if it moved on.

    Requeued when the task is safe to repeat and attempts remain; failed
    with the reason otherwise. Conditional on the lost holder's token, so
    two reapers (or a reaper and a redelivery) act once.
    """
    current = TaskRun.objects.filter(id=run.id, status=TaskRun.Status.RUNNING,
                                     lease_token=run.lease_token)
    now = timezone.now()
    lost = f"worker lost on attempt {run.attempts}: {reason}"
    if run.rerun and run.attempts < settings.TASK_RUN_MAX_ATTEMPTS:
        changed = current.update(status=TaskRun.Status.QUEUED, lease_token="",
                                 lease_expires_at=None, step=f"restarting: {lost}"[:200],
                                 error=lost, sent_at=None)
        outcome = "requeued"
    else:
        why = ("not safe to repeat (at most once)" if not run.rerun
               else f"gave up after {run.attempts} attempts")
        changed = current.update(status=TaskRun.Status.FAILED, finished_at=now,
                                 lease_expires_at=None, error=f"{lost}; {why}")
        outcome = "failed"
    if not changed:
        return None
    logger.warning("task run %s (%s) %s: %s", run.id, run.name, outcome, lost)
    task_run_lost.send(sender=TaskRun, run=run, reason=lost)
    return outcome


def task_run_claim(run_id: int) -> TaskRun | None:
    """Claim the run with a new lease; None when it is not ours to run.

    A queued run is claimed. A running run is taken over only when its
    holder is gone (task_run_holder_lost) and it is safe to repeat; an
    at-most-once run is failed then. Finished runs and runs held by a live
    worker are skipped: a duplicate message does nothing.
    """
    now = timezone.now()
    if TaskRun.objects.filter(id=run_id, status=TaskRun.Status.QUEUED).update(
            **_claim_fields(now)):
        return TaskRun.objects.get(id=run_id)
    run = TaskRun.objects.filter(id=run_id).first()
    if run is not None and run.status == TaskRun.Status.RUNNING:
        reason = task_run_holder_lost(run, now)
        if reason is not None and task_run_give_up(run, reason) == "requeued":
            return task_run_claim(run_id)
        if reason is None:
            logger.info("task run %s is held by %s until %s; skipping", run_id,
                        run.lease_holder, run.lease_expires_at)
            return None
    logger.info("task run %s already claimed or finished; skipping", run_id)
    return None


def task_run_heartbeat(run_id: int, token: str, *, seconds: float | None = None) -> bool:
    """Renew the lease; False when this holder's claim is gone."""
    now = timezone.now()
    return bool(TaskRun.objects.filter(
        id=run_id, lease_token=token, status=TaskRun.Status.RUNNING).update(
        heartbeat_at=now, lease_expires_at=_lease_end(now, seconds)))


def task_run_progress(run_id: int, progress: float, step: str, *, token: str | None = None) -> None:
    """Record progress (and renew the lease); LeaseLost when ``token`` no longer holds it."""
    runs = TaskRun.objects.filter(id=run_id)
    fields = {"progress": max(0.0, min(1.0, progress)), "step": step[:200]}
    if token is not None:
        now = timezone.now()
        fields.update(heartbeat_at=now, lease_expires_at=_lease_end(now))
        runs = runs.filter(lease_token=token, status=TaskRun.Status.RUNNING)
    if not runs.update(**fields) and token is not None:
        raise LeaseLost(f"task run {run_id}: the claim was taken over")


def task_run_reporter(run: TaskRun) -> Callable[[float, str], None]:
    """``progress(fraction, step)`` for a service, writing under the run's lease."""
    return lambda fraction, step: task_run_progress(run.id, fraction, step,
                                                    token=run.lease_token or None)


def task_run_part_done(run_id: int, token: str, part: str, total: int) -> bool:
    """Count one finished part (a scoring chunk) once, however often it is delivered.

    The parts done are kept in the run's result until it finishes; progress
    is their share of ``total``. False when the claim is gone.
    """
    with transaction.atomic():
        run = (TaskRun.objects.select_for_update()
               .filter(id=run_id, lease_token=token, status=TaskRun.Status.RUNNING).first())
        if run is None:
            return False
        done = set(run.result.get("parts_done", [])) | {part}
        now = timezone.now()
        TaskRun.objects.filter(id=run_id).update(
            result={**run.result, "parts_done": sorted(done)},
            progress=min(1.0, len(done) / max(total, 1)), heartbeat_at=now,
            lease_expires_at=_lease_end(now))
    return True


def _holding(run_id: int, token: str | None):
    runs = TaskRun.objects.filter(id=run_id)
    return runs.filter(lease_token=token, status=TaskRun.Status.RUNNING) if token else runs


def task_run_fail(run_id: int, exc: BaseException, *, token: str | None = None) -> None:
    _holding(run_id, token).update(
        status=TaskRun.Status.FAILED, finished_at=timezone.now(), lease_expires_at=None,
        error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}",
    )


def task_run_succeed(run_id: int, result: dict, *, token: str | None = None) -> None:
    _holding(run_id, token).update(
        status=TaskRun.Status.SUCCEEDED, finished_at=timezone.now(), progress=1.0,
        step="done", result=result, lease_expires_at=None, error="",
    )


def task_run_retry_later(run: TaskRun, reason: str, countdown: float) -> bool:
    """Put the run back in the queue and send it again after ``countdown`` seconds.

    False when the claim was taken over meanwhile. A send that fails leaves
    it queued and unsent: the reaper sends it when the broker is back.
    """
    if not _holding(run.id, run.lease_token).update(
            status=TaskRun.Status.QUEUED, lease_token="", lease_expires_at=None,
            sent_at=None, error=reason,
            step=f"retrying in {countdown:.0f} s after attempt {run.attempts}: {reason}"[:200]):
        return False
    try:
        task_run_send(run, countdown=countdown)
    except BrokerUnavailable:
        pass
    return True


# --- the reaper (beat) ---------------------------------------------------

def task_runs_reap(now: datetime | None = None) -> dict:
    """Give up lost attempts and send runs left unsent; what beat runs every minute.

    - running with an expired lease (or no lease for longer than the task
      time limit): started over or failed (task_run_give_up);
    - queued and never sent for ``TASK_RUN_SEND_GRACE_SECONDS`` (the broker
      was down, or the process died between commit and send), or sent but
      unclaimed for ``TASK_RUN_RESEND_SECONDS`` (a message lost with its
      broker): sent (again). A duplicate message is harmless: the claim is
      atomic.
    """
    now = now or timezone.now()
    out = {"requeued": [], "failed": [], "sent": [], "unsendable": []}
    lost = TaskRun.objects.filter(status=TaskRun.Status.RUNNING).filter(
        Q(lease_expires_at__lt=now) | Q(
            lease_expires_at__isnull=True,
            started_at__lt=now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)))
    for run in lost:
        reason = task_run_holder_lost(run, now)
        outcome = task_run_give_up(run, reason) if reason else None
        if outcome:
            out[outcome].append(run.id)
    unsent = TaskRun.objects.filter(status=TaskRun.Status.QUEUED).filter(
        Q(sent_at__isnull=True,
          created_at__lt=now - timedelta(seconds=settings.TASK_RUN_SEND_GRACE_SECONDS))
        | Q(sent_at__lt=now - timedelta(seconds=settings.TASK_RUN_RESEND_SECONDS))
        | Q(id__in=out["requeued"])).order_by("id")
    for run in unsent:
        if run.task not in current_app.tasks:
            TaskRun.objects.filter(id=run.id, status=TaskRun.Status.QUEUED).update(
                status=TaskRun.Status.FAILED, finished_at=now,
                error=f"cannot be sent: unknown task {run.task!r}")
            out["unsendable"].append(run.id)
            continue
        try:
            task_run_send(run)
        except BrokerUnavailable:
            logger.warning("reaper: broker still unavailable; %s runs wait", unsent.count())
            break
        out["sent"].append(run.id)
    if any(out.values()):
        logger.info("reaper: %s", out)
    return out


def worker_heartbeat_record(worker: str) -> None:
    """Note that ``worker`` (Celery's hostname, e.g. ``celery@host``) is alive now."""
    WorkerHeartbeat.objects.update_or_create(worker=worker[:200],
                                             defaults={"seen_at": timezone.now()})


def worker_heartbeat_latest() -> datetime | None:
    """When a worker last ran the reaper; None when none ever did."""
    return WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
