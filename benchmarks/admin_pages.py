"""Every admin page at 1,000,000 customers: milliseconds and queries per page.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/campaign_h16_bench \\
        python benchmarks/admin_pages.py [--customers 1000000] [--repeats 3]

Seeds once, on PostgreSQL:

- the targeting benchmark's world (benchmarks/targeting.py ``seed``): 1M
  customers, a three-arm experiment and a champion uplift version (no model
  trained) with one score per customer;
- one assignment per customer to that experiment and one purchase event per
  customer (COPY, core.db.bulk), then an analysis of it (1M assignments);
- the demo (benchmarks/bench_setup.py ``demo_ensure``, 20,000 customers),
  whose experiment has attribute and segment breakdowns, analysed twice, so
  the results page has a forest plot per arm and an effect-over-time chart;
- a targeting list from the 1M scores (no held-out evaluation: the fake
  model has no artifact).

Then it logs in as a superuser with Django's test Client and, per page,
renders it once to warm up and ``--repeats`` times timed, printing the
median milliseconds and the queries of one render. Target: under 1,000 ms
for every page.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from datetime import timedelta

import numpy as np
from bench_setup import demo_ensure, django_setup, fresh_statistics
from targeting import CAMPAIGN_KEY
from targeting import seed as targeting_seed

DEMO_CUSTOMERS = 20_000
TARGET_MS = 1_000


def seed_assignments_and_events() -> None:
    """One assignment (arms in turn) and one purchase per bench customer; analysed once."""
    from django.utils import timezone

    from core.db.bulk import rows_insert
    from experiments.analysis import experiment_analyse
    from experiments.models import Assignment, Experiment
    from marketing.models import Customer, Event

    experiment = Experiment.objects.get(campaign__key=CAMPAIGN_KEY)
    if Assignment.objects.filter(experiment=experiment).exists():
        return
    started = time.perf_counter()
    now = timezone.now()
    arms = list(experiment.arms.order_by("id").values_list("id", flat=True))
    ids = np.array(Customer.objects.filter(external_id__startswith="bench-")
                   .order_by("id").values_list("id", flat=True))
    assigned = now - timedelta(days=20)
    rows_insert(Assignment, ["experiment_id", "customer_id", "arm_id", "assigned_at"],
                ((experiment.id, int(c), arms[i % len(arms)], assigned)
                 for i, c in enumerate(ids.tolist())))
    rng = np.random.default_rng(1)
    values = np.round(rng.gamma(2.0, 20.0, len(ids)), 2).tolist()
    rows_insert(Event, ["customer_id", "kind", "occurred_at", "value", "properties", "source",
                        "idempotency_key", "received_at"],
                ((int(c), "purchase", assigned + timedelta(days=1 + i % 15), v, {},
                  "bench", None, now) for i, (c, v) in enumerate(zip(ids.tolist(), values,
                                                                      strict=True))))
    fresh_statistics()
    seeded = time.perf_counter() - started
    experiment_analyse(experiment=experiment)
    print(f"seeded {len(ids):,} assignments and events in {seeded:.1f} s; analysed in "
          f"{time.perf_counter() - started - seeded:.1f} s")


def seed_demo_analyses() -> None:
    from experiments.analysis import experiment_analyse
    from experiments.demo import EXPERIMENT_KEY
    from experiments.models import Experiment

    demo_ensure(DEMO_CUSTOMERS)
    experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
    while experiment.analyses.count() < 2:
        experiment_analyse(experiment=experiment)


def seed_targeting_list() -> None:
    from marketing.models import Campaign
    from modelling.models import TargetingList
    from modelling.targeting import targeting_list_create

    campaign = Campaign.objects.get(key=CAMPAIGN_KEY)
    if not TargetingList.objects.filter(campaign=campaign).exists():
        started = time.perf_counter()
        target = targeting_list_create(campaign=campaign, budget=50_000.0, evaluate=False)
        print(f"targeting list of {target.size:,} in {time.perf_counter() - started:.1f} s")


def pages() -> list[tuple[str, str]]:
    """(name, url) of every page a campaign manager opens, on the 1M-customer objects."""
    from django.urls import reverse

    from experiments.demo import EXPERIMENT_KEY
    from experiments.models import AnalysisResult, Experiment
    from marketing.models import Customer
    from modelling.models import ModelVersion, TargetingList

    bench = Experiment.objects.get(campaign__key=CAMPAIGN_KEY)
    demo = Experiment.objects.get(key=EXPERIMENT_KEY)
    bench_result = AnalysisResult.objects.filter(experiment=bench).latest("id")
    demo_result = AnalysisResult.objects.filter(experiment=demo).latest("id")
    version = ModelVersion.objects.get(campaign__key=CAMPAIGN_KEY)
    target = TargetingList.objects.filter(campaign__key=CAMPAIGN_KEY).latest("id")
    customer = Customer.objects.get(external_id="bench-00500000") \
        if Customer.objects.filter(external_id="bench-00500000").exists() \
        else Customer.objects.filter(external_id__startswith="bench-").latest("id")
    r = reverse
    return [
        ("admin index", r("admin:index")),
        ("experiment overview (1M assigned)", r("admin:experiments_experiment_overview",
                                                args=[bench.id])),
        ("experiment overview (demo)", r("admin:experiments_experiment_overview",
                                         args=[demo.id])),
        ("results (1M assigned)", r("admin:experiments_analysisresult_change",
                                    args=[bench_result.id])),
        ("results and forest plots (demo)", r("admin:experiments_analysisresult_change",
                                              args=[demo_result.id])),
        ("all segments (demo)", r("admin:experiments_analysisresult_change",
                                  args=[demo_result.id]) + "?segments=all"),
        ("experiment changelist", r("admin:experiments_experiment_changelist")),
        ("model version (1M scores)", r("admin:modelling_modelversion_change",
                                        args=[version.id])),
        ("model version changelist", r("admin:modelling_modelversion_changelist")),
        ("targeting form", r("admin:modelling_modelversion_target", args=[version.id])),
        ("targeting list", r("admin:modelling_targetinglist_change", args=[target.id])),
        ("targeting list changelist", r("admin:modelling_targetinglist_changelist")),
        ("customer page", r("admin:marketing_customer_change", args=[customer.id])),
        ("customer changelist", r("admin:marketing_customer_changelist")),
        ("customer changelist, page 50", r("admin:marketing_customer_changelist") + "?p=50"),
        ("customer search", r("admin:marketing_customer_changelist") + "?q=bench-0042"),
        ("events changelist", r("admin:marketing_event_changelist")),
        ("events changelist, purchases", r("admin:marketing_event_changelist")
         + "?kind__exact=purchase"),
        ("task runs changelist", r("admin:core_taskrun_changelist")),
    ]


def time_pages(repeats: int) -> list[tuple[str, float, int, int]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    user = get_user_model().objects.filter(username="bench-admin").first() or \
        get_user_model().objects.create_superuser("bench-admin", "bench@example.com",
                                                  "bench-pw-123456")
    client = Client()
    client.force_login(user)
    rows = []
    for name, url in pages():
        response = client.get(url)  # warm-up (and the page must answer 200)
        status = response.status_code
        queries = []  # counted on the connection itself (DEBUG is off: no query log)
        with connection.execute_wrapper(
                lambda execute, sql, *rest, seen=queries: (seen.append(sql), execute(sql, *rest))[1]):
            client.get(url)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        rows.append((name, statistics.median(times), len(queries), status))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DEBUG", "false")  # as served: no query log kept per request
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(48))
    django_setup()
    targeting_seed(args.customers)
    seed_assignments_and_events()
    seed_demo_analyses()
    seed_targeting_list()
    if args.seed_only:
        return
    rows = time_pages(args.repeats)
    width = max(len(name) for name, *_ in rows)
    print(f"{'page':<{width}}  {'ms (median)':>11}  {'queries':>7}  status")
    for name, ms, queries, status in rows:
        flag = "" if ms < TARGET_MS and status == 200 else "  <-- over target"
        print(f"{name:<{width}}  {ms:>11.0f}  {queries:>7}  {status}{flag}")
    slow = [name for name, ms, _, status in rows if ms >= TARGET_MS or status != 200]
    print(f"slowest: {max(ms for _, ms, _, _ in rows):.0f} ms; over {TARGET_MS} ms or not 200: "
          f"{', '.join(slow) or 'none'}")


if __name__ == "__main__":
    main()
