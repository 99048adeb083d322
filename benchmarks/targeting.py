"""A targeting list from 1,000,000 scored customers on PostgreSQL.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/campaign_bench_targeting \\
        python benchmarks/targeting.py [--customers 1000000] [--budget 50000]

Seeds, once, a campaign with a three-arm experiment (control, email, coupon
with its own contact and conversion costs), an uplift model version whose
metadata names one guardrail model, and one score row per customer (uplift
per arm, control outcome, guardrail effect per arm), all written with COPY
(core.db.bulk), so no model is trained. Then times targeting_list_create:
reading the scores into numpy columns, the knapsack over 1M x 2 options
with a budget and an unsubscribe price, writing the entries, the digest.
The held-out evaluation is left out (it runs on the experiment's test
customers, whose number does not grow with the scored population). Prints
seconds and the peak memory of this process (targets: 15 s, 1 GB).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from bench_setup import django_setup, fresh_statistics, peak_memory_mb

CAMPAIGN_KEY = "bench_targeting"


def seed(customers: int) -> None:
    from django.utils import timezone

    from core.db.bulk import frame_insert, rows_insert
    from experiments.models import Experiment
    from experiments.services import ArmSpec, MetricSpec, experiment_create
    from marketing.models import Campaign, Customer
    from modelling.models import CustomerScore, ModelVersion

    if Campaign.objects.filter(key=CAMPAIGN_KEY).exists():
        return
    started = time.perf_counter()
    now = timezone.now()
    campaign = Campaign.objects.create(key=CAMPAIGN_KEY, name="Bench", channel="email",
                                       cost_per_contact="0.15", value_per_conversion="45.00",
                                       harm_prices={"unsubscribe": 8.0})
    experiment = experiment_create(
        campaign=campaign, key="bench_targeting_exp", name="Bench",
        arms=[ArmSpec("control", 1.0, is_control=True, contacts_customer=False),
              ArmSpec("email", 1.0), ArmSpec("coupon", 1.0, cost_per_contact=0.2,
                                             cost_per_conversion=5.0)],
        metrics=[MetricSpec("conversion", "purchase", "converted", role="primary"),
                 MetricSpec("unsubscribes", "unsubscribe", "converted", role="guardrail",
                            higher_is_better=False)])
    Experiment.objects.filter(pk=experiment.pk).update(status="stopped")
    version = ModelVersion.objects.create(
        campaign=campaign, experiment=experiment, kind="uplift", estimator="bench",
        target_metric="conversion", status="ready", is_champion=True,
        metrics={"arm_names": ["control", "email", "coupon"],
                 "guardrails": {"unsubscribes": {"event_kind": "unsubscribe",
                                                 "aggregation": "converted",
                                                 "higher_is_better": False, "model": True}}})
    first = Customer.objects.order_by("-id").values_list("id", flat=True).first() or 0
    rows_insert(Customer, ["external_id", "attributes", "marketing_consent", "created_at",
                           "updated_at"],
                ((f"bench-{i:08d}", {}, True, now, now) for i in range(customers)))
    ids = np.arange(first + 1, first + customers + 1)
    rng = np.random.default_rng(0)
    for low in range(0, customers, 200_000):
        n = min(200_000, customers - low)
        uplift = np.round(rng.normal(0.004, 0.01, (n, 2)), 6)
        harm = np.round(np.abs(rng.normal(0.0, 0.004, (n, 2))), 6)
        control = np.round(rng.uniform(0.01, 0.2, n), 6)
        best = uplift.argmax(axis=1)
        frame_insert(CustomerScore, pd.DataFrame({
            "model_version_id": version.id, "customer_id": ids[low:low + n],
            "uplift": uplift.max(axis=1), "best_arm": np.array(["email", "coupon"])[best],
            "uplift_by_arm": [f'{{"email": {a!r}, "coupon": {b!r}}}'
                              for a, b in uplift.tolist()],
            "guardrail_by_arm": [f'{{"unsubscribes": {{"email": {a!r}, "coupon": {b!r}}}}}'
                                 for a, b in harm.tolist()],
            "response": control, "scored_at": now}))
    fresh_statistics()
    print(f"seeded {customers:,} customers and scores in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--budget", type=float, default=50_000.0)
    args = parser.parse_args()
    django_setup()
    seed(args.customers)

    from marketing.models import Campaign
    from modelling.targeting import targeting_list_create

    campaign = Campaign.objects.get(key=CAMPAIGN_KEY)
    before = peak_memory_mb()
    started = time.perf_counter()
    target = targeting_list_create(campaign=campaign, budget=args.budget, evaluate=False)
    seconds = time.perf_counter() - started
    print(f"list of {target.size:,} from {target.parameters['eligible']:,} scored customers "
          f"in {seconds:.1f} s; contacts by arm {target.contacts_by_arm}, spend "
          f"{target.total_cost:,.0f}, expected unsubscribes {target.guardrail_harm}")
    print(f"peak memory {peak_memory_mb():,.0f} MB (before the list: {before:,.0f} MB)")


if __name__ == "__main__":
    main()
