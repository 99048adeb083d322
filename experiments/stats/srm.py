"""Sample ratio mismatch (SRM): do the arm sizes match the configured weights?

Pearson's chi-square goodness of fit (Fabijan et al., "Diagnosing Sample
Ratio Mismatch in Online Controlled Experiments", KDD 2019)::

    E_a  = N * w_a / sum(w)
    X^2  = sum_a (O_a - E_a)^2 / E_a,     p = P(chi2_{k-1} > X^2)

with ``k`` the number of arms of positive weight. The flag is raised at
``p < 0.001`` rather than 0.05: the check runs on every refresh of every
experiment, so a loose threshold would cry wolf, while a real assignment or
logging bug drives ``p`` far below 0.001 within days. An arm with weight 0
that received customers is a mismatch outright (``p = 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

SRM_P_VALUE_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """Observed and expected counts per arm, the chi-square test and its verdict."""

    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float
    df: int
    p_value: float
    threshold: float
    mismatch: bool


def srm_check(
    observed: Mapping[str, int],
    weights: Mapping[str, float],
    threshold: float = SRM_P_VALUE_THRESHOLD,
) -> SrmResult:
    """Chi-square test of the counts ``observed`` against ``weights`` (any positive scale)."""
    if set(observed) != set(weights):
        raise ValueError(
            f"arms differ: counts for {sorted(observed)}, weights for {sorted(weights)}"
        )
    arms = list(weights)
    counts = np.array([observed[arm] for arm in arms], dtype=np.float64)
    weight = np.array([weights[arm] for arm in arms], dtype=np.float64)
    if np.any(counts < 0) or np.any(counts != np.floor(counts)):
        raise ValueError("counts must be whole numbers >= 0")
    if np.any(weight < 0) or not np.isfinite(weight).all() or weight.sum() <= 0:
        raise ValueError("weights must be finite, >= 0 and not all zero")

    total = counts.sum()
    expected = total * weight / weight.sum()
    active = weight > 0
    df = int(active.sum()) - 1
    if np.any(counts[~active] > 0):
        statistic, p_value = float("inf"), 0.0
    elif total == 0 or df == 0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic = float(np.sum((counts[active] - expected[active]) ** 2 / expected[active]))
        p_value = float(scipy_stats.chi2.sf(statistic, df))
    return SrmResult(
        observed={arm: int(count) for arm, count in zip(arms, counts, strict=True)},
        expected={arm: float(value) for arm, value in zip(arms, expected, strict=True)},
        statistic=statistic,
        df=df,
        p_value=p_value,
        threshold=threshold,
        mismatch=p_value < threshold,
    )
