"""Full analysis of a 1,000,000-customer experiment (about 10,000,000 events).

    python benchmarks/analysis.py [--customers 1000000]

Prints the seconds of experiment_analyse (outcomes, CUPED, SRM, sequential,
Bayesian, 3 segments and 3 attribute breakdowns, the decision), the seconds
of one hand-written SQL aggregate over the same rows (per arm, every metric
in the attribution window and the pre-period), their ratio (target <= 2),
the ratio to a narrower conversion-only aggregate, and peak memory. It also
checks that the analysis reports the hand-written query's numbers.
"""

from __future__ import annotations

import argparse
import time

from bench_setup import demo_ensure, django_setup, fresh_statistics, peak_memory_mb

# The per-arm sufficient statistics of the demo's three metrics (conversion:
# any purchase; revenue: purchase value; unsubscribes: any unsubscribe) over
# the attribution window W and the W before assignment: the rows an analysis
# must read from assignments and events, aggregated the way one would by hand.
HAND_WRITTEN = """
    SELECT arm_id, COUNT(*),
           SUM(conv), SUM(conv_pre), SUM(conv * conv_pre),
           SUM(rev), SUM(rev * rev), SUM(rev_pre), SUM(rev_pre * rev_pre), SUM(rev * rev_pre),
           SUM(unsub), SUM(unsub_pre), SUM(unsub * unsub_pre)
    FROM (
        SELECT a.id, a.arm_id,
               MAX(CASE WHEN e.kind = 'purchase' AND e.occurred_at >= a.assigned_at
                        THEN 1 ELSE 0 END) AS conv,
               MAX(CASE WHEN e.kind = 'purchase' AND e.occurred_at < a.assigned_at
                        THEN 1 ELSE 0 END) AS conv_pre,
               SUM(CASE WHEN e.kind = 'purchase' AND e.occurred_at >= a.assigned_at
                        THEN e.value ELSE 0 END) AS rev,
               SUM(CASE WHEN e.kind = 'purchase' AND e.occurred_at < a.assigned_at
                        THEN e.value ELSE 0 END) AS rev_pre,
               MAX(CASE WHEN e.kind = 'unsubscribe' AND e.occurred_at >= a.assigned_at
                        THEN 1 ELSE 0 END) AS unsub,
               MAX(CASE WHEN e.kind = 'unsubscribe' AND e.occurred_at < a.assigned_at
                        THEN 1 ELSE 0 END) AS unsub_pre
        FROM experiments_assignment a
        LEFT JOIN marketing_event e ON e.customer_id = a.customer_id
            AND e.kind IN ('purchase', 'unsubscribe')
            AND e.occurred_at >= a.assigned_at - make_interval(days => %(w)s)
            AND e.occurred_at < a.assigned_at + make_interval(days => %(w)s)
        WHERE a.experiment_id = %(experiment)s
        GROUP BY a.id, a.arm_id
    ) s
    GROUP BY arm_id
"""

# The previous, narrower reference: conversion alone, attribution window only.
CONVERSION_ONLY = """
    SELECT s.arm_id, COUNT(*), SUM(s.y)
    FROM (
        SELECT a.id, a.arm_id, CASE WHEN COUNT(e.id) > 0 THEN 1 ELSE 0 END AS y
        FROM experiments_assignment a
        LEFT JOIN marketing_event e ON e.customer_id = a.customer_id
            AND e.kind = 'purchase'
            AND e.occurred_at >= a.assigned_at
            AND e.occurred_at < a.assigned_at + make_interval(days => %(w)s)
        WHERE a.experiment_id = %(experiment)s
        GROUP BY a.id, a.arm_id
    ) s
    GROUP BY s.arm_id
"""


def timed_sql(sql: str, params: dict) -> tuple[float, list]:
    from django.db import connection

    from core.db.sql_tuning import large_aggregates

    started = time.perf_counter()
    # The same session settings the analysis uses, so only the work differs.
    with large_aggregates(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    django_setup()
    demo_ensure(args.customers)
    fresh_statistics()  # other benchmarks' bulk writes and deletes leave stale plans

    from experiments.analysis import experiment_analyse
    from experiments.demo import EXPERIMENT_KEY
    from experiments.models import Experiment
    from marketing.models import Event

    experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
    metrics = sorted((m.name, m.event_kind, m.aggregation) for m in experiment.metrics.all())
    assert metrics == [("conversion", "purchase", "converted"), ("revenue", "purchase", "sum"),
                       ("unsubscribes", "unsubscribe", "converted")], metrics
    params = {"w": experiment.attribution_window_days, "experiment": experiment.id}
    events = Event.objects.count()
    hand, narrow, full = [], [], []
    for _ in range(args.repeat):
        seconds, rows = timed_sql(HAND_WRITTEN, params)
        hand.append(seconds)
        narrow.append(timed_sql(CONVERSION_ONLY, params)[0])
        started = time.perf_counter()
        result = experiment_analyse(experiment=experiment)
        full.append(time.perf_counter() - started)
    check_agreement(result, rows, experiment)
    print(f"customers {result.customers:,}  events {events:,}  "
          f"breakdowns {len(result.payload['segments'])}")
    print(f"hand-written SQL, all metrics with pre-period: {min(hand):.2f} s")
    print(f"hand-written SQL, conversion only:             {min(narrow):.2f} s")
    print(f"full analysis:                                 {min(full):.2f} s")
    print(f"ratio to the all-metrics aggregate:            {min(full) / min(hand):.2f} "
          f"(target <= 2)")
    print(f"ratio to the conversion-only aggregate:        {min(full) / min(narrow):.2f}")
    print(f"peak memory:                                   {peak_memory_mb():.0f} MB")


def check_agreement(result, rows, experiment) -> None:
    """The analysis must report the hand-written query's per-arm numbers."""
    names = dict(experiment.arms.values_list("id", "name"))
    by_metric = {m["metric"]: m for m in result.payload["metrics"]}
    for arm_id, n, conv, *_ in rows:
        (arm,) = [a for a in by_metric["conversion"]["arms"] if a["arm"] == names[arm_id]]
        assert int(arm["n"]) == n and abs(arm["mean"] - float(conv) / n) < 1e-12, (arm, n, conv)


if __name__ == "__main__":
    main()
