"""Celery tasks over TaskRuns: one decorator, the heartbeat, and what counts as transient.

``@run_task()`` turns ``body(run) -> dict`` into a Celery task taking the
run id. The task claims the run (core.task_runs), holds its lease with a
heartbeat thread while the body runs, and records the outcome:

- a dict: the run succeeded with it; ``RUN_CONTINUES``: a later task (a
  chord's callback) finishes the run;
- ValidationError: the request's fault, recorded on the run, not raised
  (a redelivery would not change it);
- a transient error (``transient_reason``: connection loss, serialization
  failure, deadlock, broker unavailable): the run goes back to the queue
  and is sent again after an exponential backoff, up to
  ``TASK_RUN_MAX_ATTEMPTS`` attempts;
- anything else: the run failed with the error.

``rerun=True`` tasks are safe to repeat: they are acknowledged late and
rejected back to the queue when their worker process dies
(``acks_late`` + ``reject_on_worker_lost``), and a lost attempt is started
over. ``rerun=False`` tasks are at most once: acknowledged on receipt, never
retried, and a lost attempt is failed with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connections

from core.models import TaskRun
from core.task_runs import (
    LeaseLost,
    task_run_claim,
    task_run_fail,
    task_run_heartbeat,
    task_run_retry_later,
    task_run_succeed,
)

logger = logging.getLogger(__name__)

RUN_CONTINUES = object()

# PostgreSQL SQLSTATEs: class 08 is "connection exception"; 57P01-03 are the
# server ending the session (pg_terminate_backend, shutdown, not yet up).
_SERIALIZATION, _DEADLOCK = "40001", "40P01"
_SESSION_ENDED = {"57P01", "57P02", "57P03"}
_CONNECTION_LOST_TEXT = (
    "server closed the connection", "connection already closed", "connection is closed",
    "terminating connection", "could not connect", "connection refused",
    "consuming input failed", "ssl connection has been closed", "connection timed out",
    "no connection to the server",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def transient_reason(exc: BaseException) -> str | None:
    """The named transient error ``exc`` is (worth retrying), or None.

    Only these: database connection lost, serialization failure, deadlock,
    broker unavailable. A bug, bad data or a timeout is not retried.
    """
    from kombu.exceptions import OperationalError as BrokerError

    for error in _chain(exc):
        if isinstance(error, BrokerError):
            return "broker unavailable"
        sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if sqlstate == _SERIALIZATION:
            return "serialization failure"
        if sqlstate == _DEADLOCK:
            return "deadlock"
        if sqlstate and (sqlstate.startswith("08") or sqlstate in _SESSION_ENDED):
            return "database connection lost"
        if isinstance(error, InterfaceError):
            return "database connection lost"
        if isinstance(error, OperationalError) and any(
                text in str(error).lower() for text in _CONNECTION_LOST_TEXT):
            return "database connection lost"
    return None


def retry_countdown(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: base * 2**(attempt-1), capped."""
    base, cap = settings.TASK_RETRY_BACKOFF_SECONDS, settings.TASK_RETRY_BACKOFF_MAX_SECONDS
    return float(min(cap, base * 2 ** max(attempt - 1, 0)))


def connections_reset() -> None:
    """Drop this thread's database connections: after a connection loss they are dead.

    One still inside a transaction (an eager task in a test) is left alone:
    its owner ends it.
    """
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            continue
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - a dead connection may fail to close; it is dropped
            conn.connection = None


@contextmanager
def lease_heartbeat(run_id: int, token: str, *, enabled: bool = True):
    """Renew the run's lease every TASK_HEARTBEAT_SECONDS from a thread while the block runs.

    The thread has its own database connection (Django's are per thread)
    and closes it at the end. Not started for eager or direct calls: the
    caller is there, and a test database in a transaction would block it.
    """
    if not enabled:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.TASK_HEARTBEAT_SECONDS):
                try:
                    if not task_run_heartbeat(run_id, token):
                        logger.warning("task run %s: lease taken over; heartbeat stops", run_id)
                        return
                except Exception:  # noqa: BLE001 - keep beating through a short outage
                    logger.exception("task run %s: heartbeat failed", run_id)
                    connections_reset()
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, name=f"lease-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _in_worker(task) -> bool:
    request = task.request
    return not (request.is_eager or request.called_directly)


def task_run_execute(task, run_id: int, body: Callable[[TaskRun], object], *,
                     retry: bool = True) -> object:
    """Claim, hold the lease, run ``body(run)`` and record its outcome (see the module doc)."""
    run = task_run_claim(run_id)
    if run is None:
        return None
    token = run.lease_token
    try:
        with lease_heartbeat(run_id, token, enabled=_in_worker(task)):
            result = body(run)
    except LeaseLost:
        logger.warning("task run %s: claim taken over; this attempt stops", run_id)
        return None
    except ValidationError as exc:
        task_run_fail(run_id, exc, token=token)
        return None
    except Exception as exc:
        reason = transient_reason(exc)
        if reason and retry and run.attempts < settings.TASK_RUN_MAX_ATTEMPTS:
            connections_reset()
            countdown = retry_countdown(run.attempts)
            logger.warning("task run %s: %s (%s); retrying in %.0f s", run_id, reason, exc,
                           countdown)
            if task_run_retry_later(run, f"{reason}: {type(exc).__name__}: {exc}", countdown):
                return None
        if reason:
            connections_reset()
        task_run_fail(run_id, exc, token=token)
        raise
    if result is not RUN_CONTINUES:
        task_run_succeed(run_id, result or {}, token=token)
    return None


def run_task(*, rerun: bool = True, name: str | None = None):
    """Decorator: ``body(run) -> dict`` becomes a Celery task ``task(run_id)`` (module doc)."""

    def wrap(body: Callable[[TaskRun], object]):
        def task(self, run_id: int):
            return task_run_execute(self, run_id, body)

        task.__doc__ = body.__doc__
        return shared_task(bind=True, name=name or f"{body.__module__}.{body.__name__}",
                           acks_late=rerun, reject_on_worker_lost=rerun,
                           ignore_result=True, rerun_on_lost=rerun)(task)

    return wrap
