"""No lost work: real workers killed, the broker stopped, a database connection dropped.

The module runs its own Redis (a private ``redis-server`` on a free port, so
it can be stopped and started) and its own two prefork workers with a short
lease, on PostgreSQL. The reaper is called as beat calls it
(``task_runs_reap``, what ``jobs.tasks.task_runs_reap_task`` runs).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from django.db import connection

from core.models import TaskRun
from core.pseudonyms import idempotency_key_pseudonym
from core.task_runs import BrokerUnavailable, task_runs_reap
from tests.integration.conftest import (
    ROOT,
    free_port,
    gunicorn_serving,
    shared_database_url,
    wait_for,
)
from tests.missing import missing

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LEASE_SECONDS = 6
LONG_TRAINING = {"tarnet": {"max_epochs": 400, "patience": 400, "batch_size": 64}}


class PrivateRedis:
    """A redis-server of this module's own, which a test may stop and start again."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        def up():
            try:
                return redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
            except redis.exceptions.RedisError:
                return False

        wait_for(up, timeout=20, interval=0.1)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


class Workers:
    """Prefork workers (concurrency 1) with a short lease, each its own process group."""

    def __init__(self, broker: PrivateRedis, artifacts: Path):
        self.env = {**os.environ, "DATABASE_URL": shared_database_url(),
                    "CELERY_BROKER_URL": broker.url, "CELERY_RESULT_BACKEND": broker.url,
                    "CELERY_TASK_ALWAYS_EAGER": "false", "DJANGO_SETTINGS_MODULE": "config.settings",
                    "TASK_LEASE_SECONDS": str(LEASE_SECONDS), "TASK_HEARTBEAT_SECONDS": "1",
                    "TASK_RETRY_BACKOFF_SECONDS": "1", "MODEL_ARTIFACT_DIR": str(artifacts)}
        self.alive: dict[int, subprocess.Popen] = {}
        self.logs = []
        self.count = 0

    def start(self) -> subprocess.Popen:
        self.count += 1
        path = ROOT / "var" / f"test-lost-work-worker-{self.count}.log"
        log = open(path, "w")  # noqa: SIM115 - closed in stop_all
        self.logs.append(log)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
             "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"lost{self.count}@%h"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.alive[worker.pid] = worker
        worker.log_path = path
        return worker

    def wait_ready(self, worker: subprocess.Popen) -> None:
        def ready():
            if worker.poll() is not None:
                pytest.fail(f"worker exited with {worker.returncode}; see {worker.log_path}")
            return " ready." in worker.log_path.read_text()

        wait_for(ready, timeout=240, interval=0.5)

    def kill_group_of(self, pid: int) -> None:
        """SIGKILL the whole worker (main process and pool) that ``pid`` belongs to."""
        group = os.getpgid(pid)
        os.killpg(group, signal.SIGKILL)
        self.alive.pop(group).wait(timeout=10)

    def stop_all(self) -> None:
        for worker in self.alive.values():
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.alive.values():
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        for log in self.logs:
            log.close()


@pytest.fixture(scope="module")
def broker(django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        missing("integration tests need DATABASE_URL to point at PostgreSQL")
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed")
    redis = PrivateRedis()
    redis.start()
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, redis.url
    app._pool, app.amqp._producer_pool = None, None
    yield redis
    app.conf.task_always_eager, app.conf.broker_url = saved
    app._pool, app.amqp._producer_pool = None, None
    redis.stop()


@pytest.fixture(scope="module")
def workers(broker, tmp_path_factory):
    (ROOT / "var").mkdir(exist_ok=True)
    pool = Workers(broker, tmp_path_factory.mktemp("artifacts"))
    started = [pool.start(), pool.start()]  # start both at once: imports are the slow part
    for worker in started:
        pool.wait_ready(worker)
    yield pool
    pool.stop_all()


def _run(run_id: int) -> TaskRun:
    return TaskRun.objects.get(id=run_id)


def _finished(run_id: int) -> TaskRun | None:
    run = _run(run_id)
    return run if run.status in {TaskRun.Status.SUCCEEDED, TaskRun.Status.FAILED} else None


def _training(experiment, *, previous_score: float):
    """A champion to keep, and a long training request (killed mid-way by the tests)."""
    from jobs.requests import uplift_model_train_request
    from modelling.models import ModelVersion

    champion = ModelVersion.objects.create(
        campaign=experiment.campaign, experiment=experiment, kind=ModelVersion.Kind.UPLIFT,
        estimator="previous", target_metric="purchase", status=ModelVersion.Status.READY,
        is_champion=True, selection_score=previous_score)
    run = uplift_model_train_request(experiment=experiment, estimators=["tarnet"], baselines=[],
                                     estimator_params=LONG_TRAINING)
    return champion, run


def _mid_training(run_id: int) -> TaskRun | None:
    run = _run(run_id)
    return run if run.status == TaskRun.Status.RUNNING and "epoch 3" in run.step else None


def _champion_id(experiment) -> int:
    from modelling.models import ModelVersion

    return ModelVersion.objects.get(campaign=experiment.campaign,
                                    kind=ModelVersion.Kind.UPLIFT, is_champion=True).id


@pytest.fixture
def demo(workers):
    """The demo experiment, small (each test's data is flushed after it)."""
    from experiments.demo import demo_seed
    from experiments.models import Experiment

    demo_seed(customers=400, seed=4, anchor=datetime(2026, 10, 1, tzinfo=UTC))
    return Experiment.objects.get(key="demo_spring")


def test_a_pool_process_killed_mid_training_is_redelivered_and_the_run_completes(workers,
                                                                                 demo):
    from modelling.models import ModelVersion
    from modelling.registry import artifact_checksum

    champion, run = _training(demo, previous_score=-1e9)
    running = wait_for(lambda: _mid_training(run.id), timeout=180, interval=0.05)
    host, _, pid = running.lease_holder.rpartition(":")
    assert host == socket.gethostname() and int(pid) not in workers.alive  # a pool process
    (first,) = ModelVersion.objects.filter(task_run_id=run.id)
    os.kill(int(pid), signal.SIGKILL)  # the OOM-killer

    second = wait_for(lambda: (r := _run(run.id)).attempts >= 2 and r, timeout=60)
    assert "worker process" in second.error and "is gone" in second.error
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.FAILED and not first.is_champion
    assert first.status_reason.startswith("training abandoned")
    assert first.artifact_path == "" and first.artifact_sha256 == ""  # nothing half-written
    assert _champion_id(demo) == champion.id  # unchanged until a new model succeeds

    done = wait_for(lambda: _finished(run.id), timeout=300)
    assert done.status == TaskRun.Status.SUCCEEDED, done.error
    assert done.attempts == 2
    new = ModelVersion.objects.get(id=done.result["model_version_ids"][0])
    assert new.status == ModelVersion.Status.READY and new.id != first.id
    assert artifact_checksum(Path(new.artifact_path)) == new.artifact_sha256
    assert _champion_id(demo) == new.id


def test_a_whole_worker_killed_is_reaped_and_restarted_within_the_lease(workers, demo):
    from modelling.models import ModelVersion

    champion, run = _training(demo, previous_score=1e9)  # a champion the new one cannot beat
    running = wait_for(lambda: _mid_training(run.id), timeout=180, interval=0.05)
    workers.kill_group_of(int(running.lease_holder.rpartition(":")[2]))
    killed = time.monotonic()
    assert workers.alive  # the other worker takes the restarted run

    def restarted():
        task_runs_reap()  # what beat runs every TASK_REAPER_SECONDS
        current = _run(run.id)
        return current if current.attempts >= 2 else None

    again = wait_for(restarted, timeout=LEASE_SECONDS + 60, interval=0.5)
    took = time.monotonic() - killed
    assert took <= LEASE_SECONDS + 10, f"restarted {took:.1f} s after the kill"
    assert "lease expired" in again.error
    done = wait_for(lambda: _finished(run.id), timeout=300)
    assert done.status == TaskRun.Status.SUCCEEDED, done.error
    assert done.attempts == 2
    assert ModelVersion.objects.filter(task_run_id=run.id,
                                       status=ModelVersion.Status.TRAINING).count() == 0
    assert _champion_id(demo) == champion.id  # the better old champion stays


def test_runs_queued_while_the_broker_is_down_are_sent_when_it_is_back(workers, broker,
                                                                       settings):
    from jobs.requests import segment_size_request
    from marketing.services import segment_create
    from tests.factories import attributes_declare, customer_make

    settings.TASK_RUN_SEND_GRACE_SECONDS = 0
    attributes_declare()
    for age in (20, 40, 60):
        customer_make(age=age)
    segment = segment_create(key="over_30", name="Over 30",
                             rule={"attr": "age", "op": "gt", "value": 30})
    broker.stop()
    queued = []
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable) as refused:
            segment_size_request(segment=segment)
        assert time.monotonic() - started < 2.0
        queued.append(refused.value.run_id)
    assert task_runs_reap()["sent"] == []  # still down: nothing sent, nothing lost
    assert {r.status for r in TaskRun.objects.filter(id__in=queued)} == {TaskRun.Status.QUEUED}

    broker.start()
    from config.celery import app

    app._pool, app.amqp._producer_pool = None, None

    def all_sent():
        task_runs_reap()
        return not TaskRun.objects.filter(id__in=queued, sent_at__isnull=True).exists()

    wait_for(all_sent, timeout=60, interval=1)
    for run_id in queued:
        done = wait_for(lambda run_id=run_id: _finished(run_id), timeout=120)
        assert done.status == TaskRun.Status.SUCCEEDED, done.error
        assert done.result["segment_id"] == segment.id
    assert not TaskRun.objects.filter(status__in=[TaskRun.Status.QUEUED,
                                                  TaskRun.Status.RUNNING]).exists()


@pytest.fixture
def live_api(broker):
    with gunicorn_serving(log_name="test-lost-work-gunicorn.log", workers=1, request_timeout=60,
                          ready_timeout=120, CELERY_BROKER_URL=broker.url) as base:
        yield base


def test_a_database_connection_dropped_mid_ingest_then_a_retry_leaves_one_copy(live_api):
    import psycopg

    from core.api_keys import api_key_create
    from marketing.models import Event
    from tests.factories import attributes_declare, customer_make

    attributes_declare()
    customer = customer_make()
    http = requests.Session()
    http.headers["Authorization"] = f"Api-Key {api_key_create(name='crm', scope='write')[1]}"
    body = {"source": "shop", "events": [
        {"customer": customer.external_id, "kind": "purchase", "value": 10 + i,
         "idempotency_key": f"order-{i}", "occurred_at": "2026-06-01T12:00:00+00:00"}
        for i in range(50)]}
    url = f"{live_api}/api/v1/events/bulk/"

    # Hold the events table so the ingest waits inside its transaction, then
    # end its database session the way an operator or a failover would.
    locker = psycopg.connect(shared_database_url().replace("postgres://", "postgresql://"))
    locker.execute("LOCK TABLE marketing_event IN ACCESS EXCLUSIVE MODE")
    answer = {}
    sender = threading.Thread(target=lambda: answer.setdefault(
        "response", http.post(url, json=body, timeout=60)))
    sender.start()
    killer = psycopg.connect(shared_database_url().replace("postgres://", "postgresql://"),
                             autocommit=True)

    def waiting_ingest():
        return killer.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query ILIKE %s AND pid <> pg_backend_pid()", ["%marketing_event%"]).fetchone()

    (pid,) = wait_for(waiting_ingest, timeout=30, interval=0.1)
    killer.execute("SELECT pg_terminate_backend(%s)", [pid])
    sender.join(timeout=60)
    locker.rollback()
    locker.close()
    killer.close()

    first = answer["response"]
    assert first.status_code == 503, first.text[:500]
    assert first.json()["error"]["code"] == "temporarily_unavailable"
    assert Event.objects.filter(source="shop").count() == 0  # rolled back whole

    retry = http.post(url, json=body, timeout=60)  # the CRM sends it again
    assert retry.status_code in (200, 201), retry.text[:500]
    assert retry.json() == {"created": 50, "duplicates": 0}
    again = http.post(url, json=body, timeout=60)
    assert again.json() == {"created": 0, "duplicates": 50}
    assert Event.objects.filter(source="shop").count() == 50
    assert sorted(Event.objects.filter(source="shop").values_list("idempotency_key", flat=True)) \
        == sorted(idempotency_key_pseudonym(f"order-{i}") for i in range(50))
