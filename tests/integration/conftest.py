"""A real Celery worker on Redis, sharing the PostgreSQL test database.

These tests need PostgreSQL (the worker is another process, so SQLite's
in-memory test database cannot be shared) and Redis. On a laptop without
them they skip; under CI=true a missing service is a failure.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
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
    env = {**os.environ, "DATABASE_URL": shared_database_url(), "CELERY_BROKER_URL": BROKER,
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


def shared_database_url() -> str:
    """The PostgreSQL test database as a URL, for the processes the tests start."""
    db = connection.settings_dict
    return (f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}"
            f":{db['PORT'] or 5432}/{db['NAME']}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn_serving(*, log_name: str, workers: int, request_timeout: int,
                     ready_timeout: float, **env: str):
    """gunicorn with DEBUG off serving the test database; yields its base URL.

    ``env`` adds to (or overrides) the environment: the broker, a privacy key.
    """
    port = free_port()
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(48), "ALLOWED_HOSTS": "127.0.0.1",
                "DATABASE_URL": shared_database_url(), "CELERY_TASK_ALWAYS_EAGER": "false", **env}
    (ROOT / "var").mkdir(exist_ok=True)
    log = open(ROOT / "var" / log_name, "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", str(request_timeout)],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up():
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}; see var/{log_name}")
        try:
            # Any answer will do: an unknown path is a quick JSON 404.
            return requests.get(f"{base}/api/v1/", timeout=5).status_code == 404
        except requests.RequestException:
            return False

    try:
        wait_for(up, timeout=ready_timeout)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
