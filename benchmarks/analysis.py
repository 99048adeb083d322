"""Full analysis of a 1,000,000-customer experiment (about 10,000,000 events).

    python benchmarks/analysis.py [--customers 1000000]

Prints the seconds of experiment_analyse (outcomes, CUPED, SRM, sequential,
Bayesian, 3 segments and 3 attribute breakdowns, the decision), the seconds
of one hand-written SQL aggregate over the same rows (conversion per arm in
the attribution window), their ratio (target <= 2), and peak memory.
"""

from __future__ import annotations

import argparse
import time

from bench_setup import demo_ensure, django_setup, peak_memory_mb

HAND_WRITTEN = """
    SELECT s.arm_id, COUNT(*), SUM(s.y), SUM(s.y * s.y)
    FROM (
        SELECT a.id, a.arm_id,
               CASE WHEN COUNT(e.id) > 0 THEN 1 ELSE 0 END AS y
        FROM experiments_assignment a
        LEFT JOIN marketing_event e ON e.customer_id = a.customer_id
            AND e.kind = 'purchase'
            AND e.occurred_at >= a.assigned_at
            AND e.occurred_at < a.assigned_at + make_interval(days => %s)
        WHERE a.experiment_id = %s
        GROUP BY a.id, a.arm_id
    ) s
    GROUP BY s.arm_id
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    django_setup()
    demo_ensure(args.customers)

    from django.db import connection

    from experiments.analysis import experiment_analyse
    from experiments.demo import EXPERIMENT_KEY
    from experiments.models import Experiment
    from marketing.models import Event

    experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
    events = Event.objects.count()
    hand, full = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(HAND_WRITTEN, [experiment.attribution_window_days, experiment.id])
            cursor.fetchall()
        hand.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = experiment_analyse(experiment=experiment)
        full.append(time.perf_counter() - started)
    print(f"customers {result.customers:,}  events {events:,}  "
          f"breakdowns {len(result.payload['segments'])}")
    print(f"hand-written SQL aggregate: {min(hand):.2f} s")
    print(f"full analysis:              {min(full):.2f} s")
    print(f"ratio:                      {min(full) / min(hand):.2f} (target <= 2)")
    print(f"peak memory:                {peak_memory_mb():.0f} MB")


if __name__ == "__main__":
    main()
