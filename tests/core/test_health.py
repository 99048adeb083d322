"""GET /health/: the database, the broker and a worker; 200 when all are up, 503 otherwise."""

import os
import time

import pytest
from celery import current_app
from django.db import OperationalError

from core import health

pytestmark = pytest.mark.django_db

REDIS = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def queued_mode():
    """Tasks go through a broker (as on a server) instead of running in process."""
    conf = current_app.conf
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager = False

    def use(url: str):
        conf.broker_url = url
        current_app._pool = None  # forget connections to the previous broker
    yield use
    conf.task_always_eager, conf.broker_url = saved
    current_app._pool = None


def test_it_answers_200_with_every_part_when_tasks_run_in_process(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "worker"}
    assert all(part["ok"] for part in body["checks"].values())
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_answers_503_within_two_seconds_when_the_broker_is_down(client, queued_mode):
    queued_mode("redis://127.0.0.1:1/0")  # nothing listens on port 1
    started = time.monotonic()
    response = client.get("/health/")
    assert time.monotonic() - started < 2.0
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] and not checks["broker"]["ok"]
    assert not checks["worker"]["ok"] and checks["worker"]["detail"] == "broker down"
    assert "127.0.0.1" not in response.content.decode()  # no address in a public answer


def test_it_answers_503_when_the_database_is_down(client, monkeypatch):
    def refuse():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health, "health_database", refuse)
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {
        "ok": False, "detail": "OperationalError",
        "seconds": response.json()["checks"]["database"]["seconds"]}


def test_it_answers_503_when_no_worker_answers_a_ping(client, queued_mode):
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        from tests.missing import missing
        missing(f"Redis at {REDIS} is not reachable")
    queued_mode(REDIS.rsplit("/", 1)[0] + "/14")  # a database no test worker listens on
    response = client.get("/health/")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] and checks["worker"] == {
        "ok": False, "detail": "0 worker(s) answered a ping", "workers": 0,
        "seconds": checks["worker"]["seconds"]}
    assert checks["worker"]["seconds"] < 2.0


def test_only_get_is_answered(client):
    assert client.post("/health/").status_code == 405
