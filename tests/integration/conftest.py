"""A real Celery worker on Redis, sharing the PostgreSQL test database.

These tests need PostgreSQL (the worker is another process, so SQLite's
in-memory test database cannot be shared) and Redis. On a laptop without
them they skip; under CI=true a missing service is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.missing import missing as _missing

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


def _redis_ok() -> bool:
    import redis

    try:
        redis.Redis.from_url(BROKER, socket_connect_timeout=2).ping()
        return True
    except redis.exceptions.RedisError:
        return False


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        _missing("integration tests need DATABASE_URL to point at PostgreSQL")
    if not _redis_ok():
        _missing(f"Redis at {BROKER} is not reachable")
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    settings = connection.settings_dict
    database_url = (f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST'] or '127.0.0.1'}"
                    f":{settings['PORT'] or 5432}/{settings['NAME']}")
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": BROKER,
           "CELERY_TASK_ALWAYS_EAGER": "false", "DJANGO_SETTINGS_MODULE": "config.settings"}
    log = open(ROOT / "var" / "test-worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", "test@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    from config.celery import app

    app.conf.task_always_eager = False
    app.conf.broker_url = BROKER
    # Earlier tests in this process ran tasks eagerly on the memory:// broker;
    # drop the cached connection and producer pools so sends go to Redis.
    app._pool = None
    app.amqp._producer_pool = None
    # Importing torch and causalml makes a worker slow to start on 2 busy cores.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"celery worker exited with {worker.returncode}; see var/test-worker.log")
        if app.control.ping(timeout=1.0):
            break
    else:
        worker.kill()
        pytest.fail("celery worker did not answer a ping within 240 s")
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
    log.close()
    app.conf.task_always_eager = True


def wait_for(predicate, *, timeout: float = 120.0, interval: float = 0.25):
    """Poll until predicate() is truthy; return its value or fail on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s (worker log: var/test-worker.log)")
