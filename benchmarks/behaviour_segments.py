"""Churn, value and learned segments on the behavioural-types demo: the figures of issue 18.

    python benchmarks/behaviour_segments.py --customers 4000

Seeds experiments.demo_behaviour (five latent types, order effects) into a
fresh database (a SQLite file by default, or --database-url), then prints:

1. churn risk (no purchase in the next 90 days): the three candidates
   trained on the earlier period and graded on the later one (AUC, log
   loss, expected calibration error), and which became champion;
2. expected revenue in the next 90 days (the hurdle model): R², MAE,
   the buyer AUC of its first part, predicted over actual total;
3. learned segments as of 90 days before the anchor: the adjusted Rand
   index of each embedding's clusters against the true types, beside
   k-means on the raw standardised features (k by silhouette in the same
   range, and at the true k = 5), and which embedding the run's own
   criterion (the silhouette of its clusters on the standardised
   features) picks.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_setup import django_setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--k-min", type=int, default=3)
    parser.add_argument("--k-max", type=int, default=8)
    parser.add_argument("--database-url", default=None,
                        help="default: a fresh SQLite file under /tmp")
    args = parser.parse_args()
    url = args.database_url
    if url is None:
        path = Path("/tmp/behaviour_segments_bench.sqlite3")
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    os.environ.setdefault("MODEL_ARTIFACT_DIR", "/tmp/behaviour_segments_bench_models")
    django_setup(url)

    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from experiments.demo_behaviour import behaviour_demo_seed
    from experiments.models import Experiment, TrueBehaviourType
    from marketing.features import feature_spec_default
    from marketing.models import ClusterMembership
    from modelling.behaviour_training import (
        HORIZON_DAYS,
        churn_models_train,
        period_rows,
        value_model_train,
    )
    from modelling.segmentation import (
        _best_k,
        segmentation_run_create,
        segmentation_run_execute,
    )
    from models_dl.preprocessing import TabularPreprocessor

    anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    seeded = behaviour_demo_seed(customers=args.customers, seed=args.seed, anchor=anchor)
    print(f"seeded {seeded.customers:,} customers, {seeded.events:,} events "
          f"in {time.perf_counter() - started:.1f} s")
    experiment = Experiment.objects.get(id=seeded.experiment_id)
    campaign = experiment.campaign

    # 1. churn -------------------------------------------------------------------
    started = time.perf_counter()
    versions = churn_models_train(campaign=campaign, as_of=anchor, params={
        "aggregate_mlp": {"max_epochs": 60}, "sequence_gru": {"max_epochs": 30}})
    print(f"\nchurn in the next {HORIZON_DAYS} days, trained as of anchor-180 d, graded on "
          f"anchor-90 d ({time.perf_counter() - started:.0f} s)")
    print(f"{'candidate':<15}{'AUC':>8}{'log loss':>10}{'ECE':>8}{'base rate':>11}  status")
    for v in versions:
        m = v.metrics
        print(f"{v.estimator:<15}{m.get('auc', float('nan')):>8.3f}"
              f"{m.get('log_loss', float('nan')):>10.3f}{m.get('ece', float('nan')):>8.3f}"
              f"{m.get('base_rate', float('nan')):>11.3f}  "
              f"{'champion' if v.is_champion else v.status} {v.status_reason}")
    note = next((v.metrics["comparison"]["note"] for v in versions
                 if "comparison" in v.metrics), "")
    print(f"note: {note}")

    # 2. value -------------------------------------------------------------------
    value = value_model_train(campaign=campaign, as_of=anchor)
    m = value.metrics
    print(f"\nexpected revenue in the next {HORIZON_DAYS} days (hurdle): R² {m['r2']:.3f}, "
          f"MAE {m['mae']:.2f} (mean revenue {m['mean_revenue']:.2f}), buyer AUC "
          f"{m['buyer_auc']:.3f}, predicted / actual total {m['predicted_to_actual_total']:.3f}")

    # 3. segments ----------------------------------------------------------------
    cutoff = anchor - timedelta(days=HORIZON_DAYS)
    truth = dict(TrueBehaviourType.objects.values_list("customer_id", "behaviour_type"))
    print(f"\nlearned segments as of anchor-90 d, k by silhouette in "
          f"[{args.k_min}, {args.k_max}]")
    print(f"{'representation':<28}{'k':>3}{'silhouette':>12}{'on features':>13}"
          f"{'churn probe':>13}{'ARI':>7}{'ARI at k=5':>12}")
    picked = {}
    for name in ("autoencoder", "sequence"):
        run = segmentation_run_execute(segmentation_run_create(
            campaign=campaign, experiment=experiment, cutoff=cutoff, k_min=args.k_min,
            k_max=args.k_max), embeddings=(name,))
        members = dict(ClusterMembership.objects.filter(run_id=run.id)
                       .values_list("customer_id", "cluster"))
        ids = sorted(members)
        ari = adjusted_rand_score([truth[i] for i in ids], [members[i] for i in ids])
        five = segmentation_run_execute(segmentation_run_create(
            campaign=campaign, cutoff=cutoff, k_min=5, k_max=5), embeddings=(name,))
        members5 = dict(ClusterMembership.objects.filter(run_id=five.id)
                        .values_list("customer_id", "cluster"))
        ari5 = adjusted_rand_score([truth[i] for i in ids], [members5[i] for i in ids])
        c = run.comparison["candidates"][name]
        picked[name] = c["common_silhouette"]
        print(f"{name + ' embedding':<28}{run.k:>3}{c['silhouette']:>12.3f}"
              f"{c['common_silhouette']:>13.3f}"
              f"{c.get('churn_probe_auc', float('nan')):>13.3f}{ari:>7.3f}{ari5:>12.3f}")
    ids, frame, _, _, _ = period_rows(feature_spec_default(), cutoff, HORIZON_DAYS)
    raw = TabularPreprocessor().fit_transform(frame)
    raw = (raw - raw.mean(axis=0)) / np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1.0)
    k, scores, fit = _best_k(raw, args.k_min, args.k_max, 0)
    labels_true = [truth[int(i)] for i in ids]
    ari = adjusted_rand_score(labels_true, fit.labels_)
    ari5 = adjusted_rand_score(labels_true, KMeans(5, n_init=4, random_state=0).fit(raw).labels_)
    print(f"{'k-means on raw features':<28}{k:>3}{scores[k]:>12.3f}{scores[k]:>13.3f}{'':>13}"
          f"{ari:>7.3f}{ari5:>12.3f}")
    print(f"the run's criterion (silhouette on the features) picks: "
          f"{max(picked, key=picked.get)}")


if __name__ == "__main__":
    main()
