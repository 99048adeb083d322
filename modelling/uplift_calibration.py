"""Where the model is calibrated: predicted uplift beside the observed effect.

For each treated arm, on held-out rows, in groups (the ten deciles of the
model's predicted uplift for that arm, and each declared segment), we put
the model's mean predicted uplift beside the experiment's observed effect
in that group: treated mean minus control mean with its Welch interval from
experiments.stats. A calibrated model's predictions fall inside the
observed intervals and rise with the decile.
"""

from __future__ import annotations

import numpy as np

from experiments.stats.arm_estimates import arm_estimate
from experiments.stats.frequentist import compare_arms
from experiments.stats.sufficient import ArmStatistics

DECILES = 10


def observed_effect(y: np.ndarray, treated: np.ndarray, *, kind: str,
                    alpha: float = 0.05) -> dict:
    """Treated minus control in one group, with its confidence interval."""
    def stats(values: np.ndarray) -> ArmStatistics:
        return ArmStatistics(n=values.size, sum_y=float(values.sum()),
                             sum_y2=float((values * values).sum()))

    control, treatment = y[~treated], y[treated]
    out = {"n_control": int(control.size), "n_treated": int(treatment.size)}
    if control.size < 2 or treatment.size < 2:
        return {**out, "effect": None, "ci_low": None, "ci_high": None, "p_value": None}
    effect = compare_arms(arm_estimate(stats(control), kind), arm_estimate(stats(treatment), kind),
                          alpha)
    return {**out, "effect": float(effect.absolute_effect),
            "ci_low": float(effect.absolute_ci_low), "ci_high": float(effect.absolute_ci_high),
            "p_value": float(effect.p_value)}


def calibration_table(
    y: np.ndarray, treatment: np.ndarray, effect: np.ndarray, arm_names: list[str], *,
    kind: str, segments: dict[str, np.ndarray],
) -> dict[str, list[dict]]:
    """``{arm: [{group, predicted, observed effect and interval, counts}, ...]}``.

    ``segments`` maps a segment name to a boolean mask over the rows.
    """
    effect = effect.reshape(effect.shape[0], -1)
    table: dict[str, list[dict]] = {}
    for k in range(1, effect.shape[1] + 1):
        rows = (treatment == 0) | (treatment == k)
        predicted = effect[rows, k - 1]
        y_arm, treated = y[rows], treatment[rows] == k
        # Decile 1 = the highest predicted uplift, as a targeting list reads.
        order = np.argsort(-predicted, kind="stable")
        decile = np.empty(order.size, dtype=int)
        decile[order] = np.arange(order.size) * DECILES // max(order.size, 1)
        groups = [(f"decile {d + 1}", decile == d) for d in range(DECILES)]
        groups += [(f"segment {name}", mask[rows]) for name, mask in segments.items()]
        table[arm_names[k]] = [
            {"group": name, "predicted": float(predicted[mask].mean()) if mask.any() else None,
             **observed_effect(y_arm[mask], treated[mask], kind=kind)}
            for name, mask in groups
        ]
    return table
