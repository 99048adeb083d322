"""Bookkeeping for background jobs: queue, claim, progress, finish.

A service creates a TaskRun and queues the Celery task with the run id after
the transaction commits (so the worker can see the row). The task claims
the run with ``filter(status=queued).update(status=running)``: zero rows
updated means another delivery got there first, so running twice is safe.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from core.models import TaskRun

logger = logging.getLogger(__name__)


def task_run_queue(*, name: str, params: dict, task: Callable) -> TaskRun:
    """Create the run and queue ``task.delay(run_id)`` once the data is committed."""
    run = TaskRun.objects.create(name=name, params=params)
    transaction.on_commit(lambda: task.delay(run.id))
    return run


def task_run_claim(run_id: int) -> TaskRun | None:
    """Mark the run running; None when it is not queued any more."""
    claimed = TaskRun.objects.filter(id=run_id, status=TaskRun.Status.QUEUED).update(
        status=TaskRun.Status.RUNNING, started_at=timezone.now(), progress=0.0
    )
    if not claimed:
        logger.info("task run %s already claimed or finished; skipping", run_id)
        return None
    return TaskRun.objects.get(id=run_id)


def task_run_progress(run_id: int, progress: float, step: str) -> None:
    TaskRun.objects.filter(id=run_id).update(progress=max(0.0, min(1.0, progress)), step=step[:200])


def task_run_fail(run_id: int, exc: BaseException) -> None:
    TaskRun.objects.filter(id=run_id).update(
        status=TaskRun.Status.FAILED, finished_at=timezone.now(),
        error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}",
    )


def task_run_succeed(run_id: int, result: dict) -> None:
    TaskRun.objects.filter(id=run_id).update(
        status=TaskRun.Status.SUCCEEDED, finished_at=timezone.now(), progress=1.0,
        step="done", result=result,
    )


@contextmanager
def task_run_tracking(run_id: int):
    """Claim the run, yield it (None if not ours), and record success or failure."""
    run = task_run_claim(run_id)
    if run is None:
        yield None
        return
    try:
        yield run
    except Exception as exc:
        task_run_fail(run_id, exc)
        raise
    task_run_succeed(run_id, run.result)
