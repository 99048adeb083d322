"""The uplift policy against its baselines and its own rules, on held-out customers.

    DATABASE_URL=sqlite:////tmp/report-demo.sqlite3 MODEL_ARTIFACT_DIR=/tmp/report-demo-models \\
        python benchmarks/targeting_report.py --dataset demo --customers 20000
    DATABASE_URL=sqlite:////tmp/report-hill.sqlite3 MODEL_ARTIFACT_DIR=/tmp/report-hill-models \\
        python benchmarks/targeting_report.py --dataset hillstrom --cost 0.10 --budget 2000

Demo: demo_seed(seed=7), the default estimator at ``--max-epochs`` (40, as
``make run``'s demo_pipeline), every customer scored, a list at the
campaign's costs and budget. Hillstrom: the MineThatData import, the model
trained on ``spend`` (a SUM metric: uplift is money, value 1 per unit) at
``--cost`` per e-mail. Prints markdown: the held-out evaluation of every
policy (DR profit with its 95% interval, true profit on the demo), the
champion's top uplift drivers, the rules and the share of value they keep.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_setup import django_setup

ANCHOR = datetime(2026, 10, 1, tzinfo=UTC)
HILLSTROM = Path(__file__).resolve().parents[2] / "shared" / "data" / "hillstrom.csv.gz"
# What drives the demo's true effects (models_dl.synthetic): email by engagement, lapsed
# buyers (61-365 days) and, against it, annoyed heavy buyers; the discount by small
# baskets (price sensitivity), newcomers (tenure < 180 days), engagement, annoyance.
TRUE_DRIVERS = {
    "email": "e-mail engagement (+0.8), lapsed 61-365 days (+0.4), annoyed heavy recent "
             "buyers (-1.8: low engagement and >= 2 purchases in 90 days)",
    "email_discount": "basket value < 60 (+0.8 price sensitivity), tenure < 180 days (+0.4), "
                      "e-mail engagement (+0.2), annoyed heavy recent buyers (-1.5)",
}


def _money(estimate: dict | None) -> str:
    if estimate is None:
        return ""
    return f"{estimate['value']:,.0f} [{estimate['low']:,.0f}, {estimate['high']:,.0f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", choices=["demo", "hillstrom"], default="demo")
    parser.add_argument("--customers", type=int, default=20_000,
                        help="demo customers (Hillstrom: all 64,000 rows are imported)")
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--cost", type=float, default=0.10, help="Hillstrom cost per e-mail")
    parser.add_argument("--budget", type=float, default=None,
                        help="default: the campaign's (demo 5,000; Hillstrom 2,000)")
    args = parser.parse_args()
    django_setup(os.environ["DATABASE_URL"])

    from experiments.models import Experiment
    from modelling.scoring import score_chunk, score_plan
    from modelling.targeting import targeting_list_create
    from modelling.training import uplift_model_train

    started = time.perf_counter()
    if args.dataset == "demo":
        from experiments.demo import EXPERIMENT_KEY, demo_seed

        demo_seed(customers=args.customers, seed=7, anchor=ANCHOR)
        experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
        metric = None
    else:
        from experiments.minethatdata_import import EXPERIMENT_KEY, hillstrom_import

        hillstrom_import(HILLSTROM)
        experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
        campaign = experiment.campaign
        campaign.cost_per_contact, campaign.value_per_conversion = args.cost, 1
        campaign.budget = 2_000 if args.budget is None else args.budget
        campaign.save()
        metric = experiment.metrics.get(name="spend")
    (version,) = uplift_model_train(experiment=experiment, metric=metric, estimators=["default"],
                                    baselines=[],
                                    estimator_params={"default": {"max_epochs": args.max_epochs}})
    trained = time.perf_counter() - started
    for chunk in score_plan(chunk_size=20_000):
        score_chunk(version=version, chunk=chunk, cutoff=ANCHOR)
    target = targeting_list_create(campaign=experiment.campaign, model_version=version,
                                   budget=args.budget)
    evaluation = target.evaluation
    p = target.parameters
    print(f"## {args.dataset}: {p['eligible']} customers, model version {version.id} "
          f"({version.estimator}, {version.status}, held-out Qini {version.selection_score}), "
          f"trained in {trained:.0f} s\n")
    print(f"Economics: value {p['value_per_conversion']} per unit, contact cost by arm "
          f"{p['cost_per_contact_by_arm']}, conversion cost by arm "
          f"{p['cost_per_conversion_by_arm']}, harm prices {p['harm_prices']}, budget "
          f"{p['budget']}. List: {target.size} contacts, spend {target.total_cost:,.0f}, "
          f"predicted profit {target.expected_profit:,.0f}.\n")
    if not evaluation.get("available"):
        print(f"No held-out evaluation: {evaluation.get('reason')}")
        return
    print(f"Held-out: {evaluation['rows']} customers ({evaluation['share']:.0%} of the "
          f"eligible), budget scaled to {evaluation['limits']['budget']}.\n")
    truth = any("true" in e for e in evaluation["policies"].values())
    header = "| policy | contacts | spend | DR profit [95% CI] | predicted profit |"
    print(header + (" true profit |" if truth else ""))
    print("|---|---:|---:|---:|---:|" + ("---:|" if truth else ""))
    for name, e in evaluation["policies"].items():
        row = (f"| {name} | {e['contacts']} | {e['spend']:,.0f} | {_money(e['profit'])} | "
               f"{e['predicted']['profit']:,.0f} |")
        if truth:
            row += f" {e['true']['profit']:,.0f} |" if "true" in e else " |"
        print(row)
        if "priced_profit" in e:
            print(f"|   (priced harm) | | | {_money(e['priced_profit'])} | | " + (
                "|" if truth else ""))

    explanations = version.explanations or {}
    print("\n### Top uplift drivers (held-out sample)\n")
    for arm, ranking in explanations.get("drivers", {}).get("ranking", {}).items():
        top = ", ".join(f"{name} {size:.3g}" for name, size in ranking[:5])
        print(f"- {arm}: {top}")
        if args.dataset == "demo":
            print(f"  - true: {TRUE_DRIVERS.get(arm, '')}")
    rules = explanations.get("rules", {})
    print("\n### Rules (fitted at the campaign's costs per arm)\n")
    for line in rules.get("text", []):
        print(f"- {line}")
    for kind, share in rules.get("value_share", {}).items():
        value = "n/a" if share["share"] is None else f"{share['share']:.0%}"
        print(f"\nShare of the model policy's value the rules keep ({kind}): {value} "
              f"(rules {share['rules_per_customer']:.3f}, model {share['model_per_customer']:.3f}"
              f" per customer) {share['note']}")


if __name__ == "__main__":
    main()
