"""Scoring 1,000,000 customers end to end on PostgreSQL.

    python benchmarks/scoring.py [--customers 1000000] [--workers 0|N]
                                 [--snapshot-age-hours H | --no-snapshot]

End to end = point-in-time features (attributes read live, behaviour from
the daily snapshot plus the events since), model inference, and writing one
CustomerScore row per customer. First it builds the behaviour snapshot, as
beat does each night, timed and printed on its own; scoring then runs at a
cutoff ``--snapshot-age-hours`` later (default 24: the worst case of a daily
refresh, with a day of events entering and leaving every window).
``--no-snapshot`` scores from events alone.

``--workers 0`` scores every chunk in this process; ``--workers N`` starts
a Celery worker with N processes on Redis and fans the chunks out with the
same chord the platform uses. Prints customers per second (target >=
100,000/s) and peak memory of this process. The model is the platform's
default estimator trained on the demo experiment with a small budget: its
quality is not the point here, its inference cost is a fully trained one's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from datetime import timedelta

from bench_setup import ROOT, demo_ensure, django_setup, fresh_statistics, peak_memory_mb


def model_ensure():
    from experiments.demo import EXPERIMENT_KEY
    from experiments.models import Experiment
    from modelling.models import ModelVersion
    from modelling.training import uplift_model_train

    version = ModelVersion.objects.filter(estimator="default", status="ready").first()
    if version:
        return version
    experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
    started = time.perf_counter()
    (version,) = uplift_model_train(
        experiment=experiment, estimators=["default"], baselines=[],
        estimator_params={"default": {"max_epochs": 2, "max_steps_per_epoch": 200}})
    print(f"trained the benchmark model in {time.perf_counter() - started:.0f} s")
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--snapshot-age-hours", type=float, default=24.0)
    parser.add_argument("--no-snapshot", action="store_true")
    args = parser.parse_args()
    url = django_setup()
    demo_ensure(args.customers)
    version = model_ensure()

    from django.db import connection
    from django.utils import timezone

    from core.models import TaskRun
    from marketing.behaviour_snapshots import behaviour_snapshot_build
    from marketing.features import FeatureSpec
    from marketing.models import BehaviourSnapshot
    from modelling.models import CustomerScore
    from modelling.scoring import score_chunk, score_plan

    BehaviourSnapshot.objects.all().delete()
    cutoff = timezone.now()
    if not args.no_snapshot:
        # As beat would have built it args.snapshot_age_hours before this run.
        as_of = cutoff - timedelta(hours=args.snapshot_age_hours)
        snapshot = behaviour_snapshot_build(FeatureSpec.from_json(version.feature_spec),
                                            as_of=as_of)
        print(f"behaviour snapshot of {snapshot.customers:,} customers as of {as_of:%H:%M} "
              f"built in {snapshot.build_seconds:.1f} s (daily, by beat)")
    chunks = score_plan(chunk_size=args.chunk_size)
    # Time a first scoring of this version: an earlier run's rows would add a
    # million-row delete to the figure (re-scoring replaces rows chunk by chunk).
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM experiments_customerscore WHERE model_version_id = %s",
                       [version.id])
    fresh_statistics()
    worker_stats: dict[str, float] = {}
    with celery_worker(url, args.workers, worker_stats) if args.workers else \
            contextlib.nullcontext():
        started = time.perf_counter()  # a running worker, as in production
        if args.workers == 0:
            written = sum(score_chunk(version=version, chunk=c, cutoff=cutoff) for c in chunks)
        else:
            written = fan_out(version, args)
        seconds = time.perf_counter() - started
    assert CustomerScore.objects.filter(model_version=version).count() == written
    print(f"scored {written:,} customers in {seconds:.1f} s "
          f"({written / seconds:,.0f} customers/s; target >= 100,000/s), "
          f"{len(chunks)} chunks, workers={args.workers}, "
          f"{'no snapshot' if args.no_snapshot else f'snapshot {args.snapshot_age_hours:g} h old'}")
    print(f"peak memory (this process): {peak_memory_mb():.0f} MB")
    if args.workers:
        print(f"peak memory (largest worker process): {worker_stats['peak_mb']:.0f} MB")
        run = TaskRun.objects.filter(name="customers_score").order_by("-id").first()
        print(f"task run {run.id}: {run.status} {run.result}")


@contextlib.contextmanager
def celery_worker(url: str, processes: int, stats: dict[str, float]):
    """A Celery worker with ``processes`` processes on Redis, answering pings.

    On leaving, ``stats["peak_mb"]`` is the peak memory of its largest process.
    """
    from celery import current_app

    broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": broker,
           "CELERY_RESULT_BACKEND": broker, "CELERY_TASK_ALWAYS_EAGER": "false"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", f"--concurrency={processes}",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle"], cwd=ROOT, env=env)
    current_app.conf.task_always_eager = False
    current_app.conf.broker_url = broker
    current_app.conf.result_backend = broker
    try:
        while not current_app.control.ping(timeout=1.0):
            time.sleep(0.5)
        yield
        stats["peak_mb"] = max(_peak_rss_mb(pid) for pid in [worker.pid, *_children(worker.pid)])
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def _peak_rss_mb(pid: int) -> float:
    """A live process's peak resident memory (Linux VmHWM, kilobytes)."""
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def fan_out(version, args) -> int:
    """Queue the platform's scoring chord and wait for it."""
    from django.db import transaction

    from core.models import TaskRun
    from jobs.requests import customers_score_request

    with transaction.atomic():
        run = customers_score_request(model_version=version, chunk_size=args.chunk_size)
    while True:
        run.refresh_from_db()
        if run.status in {TaskRun.Status.SUCCEEDED, TaskRun.Status.FAILED}:
            break
        time.sleep(0.2)
    if run.status != TaskRun.Status.SUCCEEDED:
        raise SystemExit(f"scoring failed: {run.error}")
    return int(run.result["customers_scored"])


if __name__ == "__main__":
    main()
