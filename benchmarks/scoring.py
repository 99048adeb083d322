"""Scoring 1,000,000 customers end to end on PostgreSQL.

    python benchmarks/scoring.py [--customers 1000000] [--workers 0|N]

End to end = point-in-time features in SQL, model inference, and writing
one CustomerScore row per customer. ``--workers 0`` scores every chunk in
this process; ``--workers N`` starts a Celery worker with N processes on
Redis and fans the chunks out with the same chord the platform uses.
Prints customers per second (target >= 100,000/s) and peak memory of this
process (and of the worker processes, when used). The model is a TARNet
trained for a few epochs on the demo experiment: its quality is not the
point here, its inference cost is the same as a fully trained one's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench_setup import ROOT, demo_ensure, django_setup, fresh_statistics, peak_memory_mb


def model_ensure():
    from experiments.demo import EXPERIMENT_KEY
    from experiments.models import Experiment, ModelVersion
    from experiments.training import uplift_model_train

    version = ModelVersion.objects.filter(estimator="tarnet", status="ready").first()
    if version:
        return version
    experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
    started = time.perf_counter()
    (version,) = uplift_model_train(
        experiment=experiment, estimators=["tarnet"], baselines=[],
        estimator_params={"tarnet": {"max_epochs": 2, "max_steps_per_epoch": 200}})
    print(f"trained the benchmark model in {time.perf_counter() - started:.0f} s")
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    url = django_setup()
    demo_ensure(args.customers)
    version = model_ensure()

    from django.db import connection
    from django.utils import timezone

    from experiments.models import CustomerScore, TaskRun
    from experiments.scoring import score_chunk, score_plan

    chunks = score_plan(chunk_size=args.chunk_size)
    # Time a first scoring of this version: an earlier run's rows would add a
    # million-row delete to the figure (re-scoring replaces rows chunk by chunk).
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM experiments_customerscore WHERE model_version_id = %s",
                       [version.id])
    fresh_statistics()
    started = time.perf_counter()
    if args.workers == 0:
        cutoff = timezone.now()
        written = sum(score_chunk(version=version, chunk=c, cutoff=cutoff) for c in chunks)
    else:
        written = fan_out(url, version, args)
    seconds = time.perf_counter() - started
    assert CustomerScore.objects.filter(model_version=version).count() == written
    print(f"scored {written:,} customers in {seconds:.1f} s "
          f"({written / seconds:,.0f} customers/s; target >= 100,000/s), "
          f"{len(chunks)} chunks, workers={args.workers}")
    print(f"peak memory (this process): {peak_memory_mb():.0f} MB")
    if args.workers:
        run = TaskRun.objects.filter(name="customers_score").order_by("-id").first()
        print(f"task run {run.id}: {run.status} {run.result}")


def fan_out(url: str, version, args) -> int:
    from celery import current_app
    from django.db import transaction

    from experiments.models import TaskRun
    from experiments.services import customers_score_request

    broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": broker,
           "CELERY_RESULT_BACKEND": broker, "CELERY_TASK_ALWAYS_EAGER": "false"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", f"--concurrency={args.workers}",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle"], cwd=ROOT, env=env)
    current_app.conf.task_always_eager = False
    current_app.conf.broker_url = broker
    current_app.conf.result_backend = broker
    try:
        while not current_app.control.ping(timeout=1.0):
            time.sleep(0.5)
        with transaction.atomic():
            run = customers_score_request(model_version=version, chunk_size=args.chunk_size)
        while True:
            run.refresh_from_db()
            if run.status in {TaskRun.Status.SUCCEEDED, TaskRun.Status.FAILED}:
                break
            time.sleep(0.5)
        if run.status != TaskRun.Status.SUCCEEDED:
            raise SystemExit(f"scoring failed: {run.error}")
        return int(run.result["customers_scored"])
    finally:
        worker.terminate()
        worker.wait(timeout=60)


if __name__ == "__main__":
    main()
