"""Batch assignment of a whole population: 1,000,000 customers on PostgreSQL.

    python benchmarks/assignment.py [--customers 1000000] [--chunk-size 20000]

Creates a throw-away running experiment (three arms, no eligibility segment,
so every customer is a candidate; customers without marketing consent are
skipped because the arms contact them), runs ``assign_segment`` over the
whole demo population and prints seconds, assignments per second and peak
memory of this process (bounded by the chunk size, not by the population).
A second run of ``assign_segment`` shows the idempotent re-run (nothing new
assigned). The experiment and its assignments are deleted afterwards.
"""

from __future__ import annotations

import argparse
import time

from bench_setup import demo_ensure, django_setup, fresh_statistics, peak_memory_mb

KEY = "bench_batch_assignment"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    args = parser.parse_args()
    django_setup()
    demo_ensure(args.customers)

    from django.db import connection

    from experiments.assignment import assign_segment
    from experiments.demo import CAMPAIGN_KEY
    from experiments.models import Experiment, Metric
    from experiments.services import ArmSpec, MetricSpec, experiment_create, experiment_transition
    from marketing.models import Campaign, Event

    Experiment.objects.filter(key=KEY).delete()
    experiment = experiment_create(
        campaign=Campaign.objects.get(key=CAMPAIGN_KEY), key=KEY, name="Batch assignment benchmark",
        arms=[ArmSpec("control", 1.0, is_control=True, contacts_customer=False),
              ArmSpec("email", 1.0), ArmSpec("sms", 1.0)],
        metrics=[MetricSpec("conversion", Event.Kind.PURCHASE, Metric.Aggregation.CONVERTED,
                            role=Metric.Role.PRIMARY)])
    experiment = experiment_transition(experiment=experiment, to=Experiment.Status.RUNNING)
    try:
        started = time.perf_counter()
        result = assign_segment(experiment=experiment, chunk_size=args.chunk_size)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        again = assign_segment(experiment=experiment, chunk_size=args.chunk_size)
        rerun = time.perf_counter() - started
        assert again.assigned == 0 and again.already_assigned == result.assigned
        stored = experiment.assignments.count()
        assert stored == result.assigned
        print(f"first run: considered {result.considered:,}, assigned {result.assigned:,} "
              f"(no consent {result.no_consent:,}) in {seconds:.1f} s: "
              f"{result.assigned / seconds:,.0f} assignments/s, chunks of {args.chunk_size:,}")
        print(f"re-run: 0 new, {again.already_assigned:,} already assigned, {rerun:.1f} s")
        print(f"peak memory: {peak_memory_mb():.0f} MB")
    finally:
        # One DELETE: the ORM's cascade would collect a million rows one by one
        # (arms PROTECT their assignments). A throw-away experiment has no exposures.
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM experiments_assignment WHERE experiment_id = %s",
                           [experiment.id])
        experiment.delete()
        fresh_statistics()


if __name__ == "__main__":
    main()
