"""Can this deployment do its work? The database, the broker and a worker, in one answer.

``GET /health/`` answers 200 when every part is up and 503 otherwise, with
JSON naming each part, for a load balancer or a monitor. It needs no login
and says nothing secret: no URLs, no hosts, only what is up.

Without a broker (a laptop), tasks run in the web process, so the broker and
the worker are up by definition. Otherwise the broker is reached with a
connection timeout of ``HEALTH_TIMEOUT_SECONDS``, and a worker must answer a
Celery ping within the same time.
"""

from __future__ import annotations

import time

from celery import current_app
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

HEALTH_TIMEOUT_SECONDS = 1.0


def _timed(check) -> dict:
    started = time.monotonic()
    try:
        part = check()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; its kind is the detail
        part = {"ok": False, "detail": type(exc).__name__}
    return {**part, "seconds": round(time.monotonic() - started, 3)}


def _eager() -> bool:
    return bool(current_app.conf.task_always_eager)


def health_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "detail": connection.vendor}


def health_broker() -> dict:
    if _eager():
        return {"ok": True, "detail": "no broker: tasks run in the web process"}
    with current_app.connection_for_write(connect_timeout=HEALTH_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                               timeout=HEALTH_TIMEOUT_SECONDS)
        return {"ok": True, "detail": conn.transport_cls}


def health_worker() -> dict:
    if _eager():
        return {"ok": True, "detail": "no worker needed: tasks run in the web process"}
    if str(current_app.conf.broker_url).startswith("filesystem://"):
        # `make run`'s file broker cannot broadcast, so a ping never arrives.
        return {"ok": True, "detail": "not checked: the filesystem broker cannot ping workers"}
    replies = current_app.control.ping(timeout=HEALTH_TIMEOUT_SECONDS)
    workers = len(replies or [])
    return {"ok": workers > 0, "detail": f"{workers} worker(s) answered a ping",
            "workers": workers}


def health_report() -> dict:
    checks = {"database": _timed(health_database), "broker": _timed(health_broker)}
    # A worker cannot answer through a broker that is down; skip the wait.
    checks["worker"] = (_timed(health_worker) if checks["broker"]["ok"]
                        else {"ok": False, "detail": "broker down", "seconds": 0.0})
    healthy = all(part["ok"] for part in checks.values())
    return {"status": "ok" if healthy else "unavailable", "checks": checks}


@never_cache
@require_GET
def health_view(request):
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
