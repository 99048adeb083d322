"""Turning predicted uplift into a contact decision under costs and a budget.

For customer i with predicted uplift ``u_i`` of the best arm (change in
conversion probability, or in revenue when ``value_per_conversion`` is 1
and the target is revenue), contacting earns in expectation

    profit_i = u_i * value_per_conversion - cost_per_contact

The policy contacts customers in decreasing order of ``profit_i`` while
``profit_i > 0`` (contacting anyone else loses money in expectation), the
running cost stays within ``budget`` and the count within ``max_contacts``.
Ranking by profit is the same as ranking by uplift when every contact costs
the same; it is optimal for the expected profit under a budget because every
contact costs the same amount (a knapsack with equal weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TargetingDecision:
    order: np.ndarray  # indices of the selected customers, best first
    expected_profit: np.ndarray  # per selected customer, same order
    total_cost: float
    total_expected_profit: float
    curve_contacts: np.ndarray  # profit curve over everyone ranked, downsampled
    curve_profit: np.ndarray


def targeting_select(
    uplift: np.ndarray, *, cost_per_contact: float, value_per_conversion: float,
    budget: float | None = None, max_contacts: int | None = None, curve_points: int = 101,
) -> TargetingDecision:
    """Choose whom to contact; see the module docstring for the rule."""
    uplift = np.asarray(uplift, dtype=np.float64).reshape(-1)
    if cost_per_contact < 0 or value_per_conversion < 0:
        raise ValueError("costs and values must be non-negative")
    if budget is not None and budget < 0:
        raise ValueError("budget must be non-negative")
    profit = uplift * value_per_conversion - cost_per_contact
    ranked = np.argsort(-profit, kind="stable")
    ranked_profit = profit[ranked]
    cumulative = np.concatenate([[0.0], np.cumsum(ranked_profit)])
    keep = int(np.sum(ranked_profit > 0))
    if budget is not None and cost_per_contact > 0:
        keep = min(keep, int(np.floor(budget / cost_per_contact + 1e-9)))
    if max_contacts is not None:
        keep = min(keep, max(int(max_contacts), 0))
    points = np.unique(np.linspace(0, uplift.size, min(curve_points, uplift.size + 1)).astype(int))
    return TargetingDecision(
        order=ranked[:keep], expected_profit=ranked_profit[:keep],
        total_cost=keep * cost_per_contact, total_expected_profit=float(cumulative[keep]),
        curve_contacts=points, curve_profit=cumulative[points],
    )
