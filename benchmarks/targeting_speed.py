"""Seconds of targeting_select on 1,000,000 customers x 3 arms (no Django needed).

    OMP_NUM_THREADS=1 python benchmarks/targeting_speed.py [--customers 1000000]

Three settings: a money budget only; budget + contact count + per-arm
capacities; and all of these plus a priced and capped guardrail. Prints wall
and CPU seconds (CPU is the fairer figure on a shared machine), the list
size per arm, spend and expected profit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from models_dl.policy import targeting_select  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    n = parser.parse_args().customers
    rng = np.random.default_rng(0)
    uplift = rng.normal(0.01, 0.03, (n, 3))
    treated_outcome = rng.uniform(0.02, 0.3, (n, 3))
    unsubscribes = rng.normal(0.001, 0.002, (n, 3, 1))
    scale = n / 1_000_000
    limits = dict(budget=50_000.0 * scale, max_contacts=int(150_000 * scale),
                  arm_capacity=np.array([60_000, 40_000, 80_000]) * scale)
    settings = {
        "budget only": dict(budget=limits["budget"]),
        "budget + contacts + arm capacity": limits,
        "all + guardrail": dict(limits, guardrail_uplift=unsubscribes, guardrail_price=[2.0],
                                guardrail_cap=[100.0 * scale]),
    }
    for label, extra in settings.items():
        wall, cpu = time.perf_counter(), time.process_time()
        decision = targeting_select(uplift, value_per_conversion=40.0,
                                    cost_per_contact=[0.2, 0.5, 0.35],
                                    conversion_cost=[0.0, 1.0, 0.5],
                                    treated_outcome=treated_outcome, **extra)
        print(f"{label}: wall {time.perf_counter() - wall:.2f} s, "
              f"cpu {time.process_time() - cpu:.2f} s, by arm {decision.contacts_by_arm}, "
              f"spend {decision.total_cost:.0f}, profit {decision.total_expected_profit:.0f}")


if __name__ == "__main__":
    main()
