"""Per-arm point estimate and variance for each metric kind.

Every metric kind is reduced to the same small object, :class:`ArmEstimate`:
an estimate ``mean``, a per-customer ``variance`` such that
``Var(mean) = variance / n``, and the degrees of freedom to use for a
t reference distribution (``inf`` means the normal distribution). The
comparisons in ``frequentist``, ``sequential`` and ``bayesian`` only ever see
``ArmEstimate``, so one formula serves proportions, means, ratios and CUPED.

Formulas (``S_..`` are centred sums, see ``sufficient``):

* proportion: ``p = sum_y / n``, ``variance = p (1 - p)`` (the Bernoulli
  variance, ddof=0, as in the Wald interval), ``df = inf``.
* mean: ``ybar = sum_y / n``, ``variance = S_yy / (n - 1)``, ``df = n - 1``.
* ratio ``R = sum_num / sum_den`` (delta method, e.g. Deng, Knoblich & Lu,
  "Applying the Delta Method in Metric Analytics", KDD 2018)::

      Var(R) ~= (1 / n) * (s_nn - 2 R s_nd + R^2 s_dd) / dbar^2

  i.e. the per-customer variance of the linearisation ``(num - R den) / dbar``
  with ``s_..`` the ddof=1 (co)variances and ``dbar = sum_den / n``;
  ``df = n - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from experiments.stats.sufficient import (
    ArmStatistics,
    FloatArray,
    Numeric,
    RatioArmStatistics,
    centred_sum_of_products,
    scalar_or_array,
)

MetricKind = Literal["proportion", "mean", "ratio"]
METRIC_KINDS: tuple[MetricKind, ...] = ("proportion", "mean", "ratio")


@dataclass(frozen=True)
class ArmEstimate:
    """An arm's estimate with ``Var(mean) = variance / n`` and t degrees of freedom ``df``."""

    n: Numeric
    mean: Numeric
    variance: Numeric
    df: Numeric

    @property
    def variance_of_mean(self) -> Numeric:
        n = np.asarray(self.n, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return scalar_or_array(np.where(n > 0, np.asarray(self.variance) / n, np.nan))

    @property
    def standard_error(self) -> Numeric:
        return scalar_or_array(np.sqrt(np.asarray(self.variance_of_mean)))


def _safe_divide(numerator: Numeric, denominator: Numeric) -> FloatArray:
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, np.asarray(numerator) / denominator, np.nan)


def proportion_estimate(stats: ArmStatistics) -> ArmEstimate:
    """``p = sum_y / n`` with Bernoulli variance ``p (1 - p)``; normal reference."""
    stats.check_binary()
    n = np.asarray(stats.n, dtype=np.float64)
    p = _safe_divide(stats.sum_y, n)
    return ArmEstimate(
        n=scalar_or_array(n),
        mean=scalar_or_array(p),
        variance=scalar_or_array(p * (1.0 - p)),
        df=scalar_or_array(np.full_like(n, np.inf)),
    )


def mean_estimate(stats: ArmStatistics) -> ArmEstimate:
    """``ybar`` with the sample variance ``S_yy / (n - 1)``; t reference with ``n - 1`` df."""
    n = np.asarray(stats.n, dtype=np.float64)
    return ArmEstimate(
        n=scalar_or_array(n),
        mean=stats.mean_y,
        variance=stats.var_y,
        df=scalar_or_array(n - 1.0),
    )


def ratio_estimate(stats: RatioArmStatistics) -> ArmEstimate:
    """``R = sum_num / sum_den`` with the delta-method variance in the module docstring."""
    n = np.asarray(stats.n, dtype=np.float64)
    ratio = _safe_divide(stats.sum_num, stats.sum_den)
    mean_den = _safe_divide(stats.sum_den, n)
    s_nn = centred_sum_of_products(n, stats.sum_num, stats.sum_num, stats.sum_num2)
    s_dd = centred_sum_of_products(n, stats.sum_den, stats.sum_den, stats.sum_den2)
    s_nd = centred_sum_of_products(n, stats.sum_num, stats.sum_den, stats.sum_num_den)
    linearised = np.clip(s_nn - 2.0 * ratio * s_nd + ratio**2 * s_dd, 0.0, None)
    variance = _safe_divide(linearised, (n - 1.0) * mean_den**2)
    variance = np.where(n >= 2, variance, np.nan)
    return ArmEstimate(
        n=scalar_or_array(n),
        mean=scalar_or_array(ratio),
        variance=scalar_or_array(variance),
        df=scalar_or_array(n - 1.0),
    )


def arm_estimate(stats: ArmStatistics | RatioArmStatistics, kind: MetricKind) -> ArmEstimate:
    """Dispatch on the metric kind; checks that the statistics fit the kind."""
    if kind == "ratio":
        if not isinstance(stats, RatioArmStatistics):
            raise TypeError("a ratio metric needs RatioArmStatistics")
        return ratio_estimate(stats)
    if not isinstance(stats, ArmStatistics):
        raise TypeError(f"a {kind} metric needs ArmStatistics")
    if kind == "proportion":
        return proportion_estimate(stats)
    if kind == "mean":
        return mean_estimate(stats)
    raise ValueError(f"unknown metric kind {kind!r}; expected one of {METRIC_KINDS}")
