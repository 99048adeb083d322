"""Is treatment assignment balanced? A permutation test on covariate means.

CFR's penalty (Shalit et al. 2017) bounds the counterfactual error by the
*population* distance between the arms' representations. Under randomised
assignment that distance is zero and the sample penalty only chases noise,
so :class:`~models_dl.estimators.CFRNet` can switch it off when this test
finds no imbalance.

Statistic, for arm ``k`` against control on standardised features ``x``::

    S = || mean(x | t = k) - mean(x | t = 0) ||^2      (the linear-kernel MMD^2)

compared with its distribution under random relabelling of the same rows
(a permutation test, e.g. Good 2005, "Permutation, Parametric and Bootstrap
Tests of Hypotheses"); ``p = (1 + #{S_perm >= S}) / (1 + B)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mean_balance_p_values"]


def mean_balance_p_values(
    features: np.ndarray,
    treatment: np.ndarray,
    rng: np.random.Generator,
    n_permutations: int = 499,
    max_rows: int = 20_000,
) -> dict[int, float]:
    """Permutation p-value of the covariate mean difference, per treated arm.

    ``features`` should be standardised (the estimators pass their
    preprocessed matrix). At most ``max_rows`` rows per comparison are used,
    drawn at random: beyond that the test has ample power and only costs time.
    """
    x = np.asarray(features, dtype=np.float64)
    t = np.asarray(treatment)
    p_values = {}
    for arm in range(1, int(t.max()) + 1):
        rows = np.flatnonzero((t == 0) | (t == arm))
        if rows.size > max_rows:
            rows = rng.choice(rows, max_rows, replace=False)
        xs, treated = x[rows], t[rows] == arm
        n_treated, n = int(treated.sum()), rows.size
        if n_treated == 0 or n_treated == n:
            continue
        total = xs.sum(axis=0)
        observed = _squared_mean_difference(xs[treated].sum(axis=0), total, n_treated, n)
        permuted = np.array(
            [xs[rng.permutation(n)[:n_treated]].sum(axis=0) for _ in range(n_permutations)]
        )
        exceed = int(np.sum(_squared_mean_difference(permuted, total, n_treated, n) >= observed))
        p_values[arm] = (1 + exceed) / (1 + n_permutations)
    return p_values


def _squared_mean_difference(
    sum_treated: np.ndarray, total: np.ndarray, n_treated: int, n: int
) -> np.ndarray:
    diff = sum_treated / n_treated - (total - sum_treated) / (n - n_treated)
    return np.sum(diff**2, axis=-1)
