"""CUPED: regression adjustment on a pre-period covariate.

Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online Controlled
Experiments by Utilizing Pre-Experiment Data" (WSDM 2013). The covariate ``x``
is the same metric over the same length of time before assignment, so it is
independent of the arm and adjusting for it removes noise, not effect.

One slope for all arms, pooled within arms::

    theta = sum_a S_xy,a / sum_a S_xx,a

This is the OLS coefficient of ``x`` in ``y ~ arm dummies + x`` (ANCOVA), so a
treatment effect on the level of ``y`` cannot leak into it. Each arm's
adjusted mean and per-customer variance are::

    ybar_adj,a = ybar_a - theta * (xbar_a - xbar)        xbar: pooled over all arms
    var_adj,a  = (S_yy,a - 2 theta S_xy,a + theta^2 S_xx,a) / (n_a - 1)

i.e. the mean and sample variance of ``y - theta * x`` (shifted by a constant
that cancels in differences); the comparison is then the Welch test of
``frequentist`` on these. The uncertainty in ``theta`` is ignored, as in the
paper: it is O(1/n) against the O(1/sqrt(n)) of the effect.

The variance reduction of the effect estimate is reported as
``1 - Var_adj(d) / Var_unadj(d)`` with both variances from ddof=1 sample
variances; with one common slope and equal spread it approaches
``corr(x, y)^2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from experiments.stats.arm_estimates import ArmEstimate
from experiments.stats.frequentist import EffectEstimate, compare_arms
from experiments.stats.sufficient import ArmStatistics, InvalidStatistics, Numeric, scalar_or_array


@dataclass(frozen=True)
class CupedEffect:
    """An adjusted comparison, the slope used and the variance it removed."""

    theta: Numeric
    variance_reduction: Numeric
    effect: EffectEstimate


def _require_covariates(arms: Sequence[ArmStatistics]) -> None:
    if not arms:
        raise ValueError("need at least one arm")
    if not all(arm.has_covariate for arm in arms):
        raise InvalidStatistics("CUPED needs sum_x, sum_x2 and sum_xy for every arm")


def pooled_theta(arms: Sequence[ArmStatistics]) -> Numeric:
    """``theta = sum_a S_xy,a / sum_a S_xx,a``; 0 when ``x`` never varies (nothing to adjust for)."""
    _require_covariates(arms)
    s_xy = sum(np.asarray(arm.centred_xy, dtype=np.float64) for arm in arms)
    s_xx = sum(np.asarray(arm.centred_xx, dtype=np.float64) for arm in arms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return scalar_or_array(np.where(s_xx > 0, s_xy / s_xx, 0.0))


def pooled_covariate_mean(arms: Sequence[ArmStatistics]) -> Numeric:
    """``xbar = sum_a sum_x,a / sum_a n_a``, the centre the adjusted means share."""
    _require_covariates(arms)
    total_x = sum(np.asarray(arm.sum_x, dtype=np.float64) for arm in arms)
    total_n = sum(np.asarray(arm.n, dtype=np.float64) for arm in arms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return scalar_or_array(np.where(total_n > 0, total_x / total_n, 0.0))


def cuped_estimate(stats: ArmStatistics, theta: Numeric, covariate_mean: Numeric) -> ArmEstimate:
    """Adjusted mean and variance of one arm; formulas in the module docstring."""
    _require_covariates([stats])
    n = np.asarray(stats.n, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    adjusted_mean = np.asarray(stats.mean_y) - theta * (np.asarray(stats.mean_x) - covariate_mean)
    centred = (
        np.asarray(stats.centred_yy)
        - 2.0 * theta * np.asarray(stats.centred_xy)
        + theta**2 * np.asarray(stats.centred_xx)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.where(n >= 2, np.clip(centred, 0.0, None) / (n - 1.0), np.nan)
    return ArmEstimate(
        n=scalar_or_array(n),
        mean=scalar_or_array(adjusted_mean),
        variance=scalar_or_array(variance),
        df=scalar_or_array(n - 1.0),
    )


def cuped_compare(
    control: ArmStatistics,
    treatment: ArmStatistics,
    theta: Numeric,
    covariate_mean: Numeric,
    alpha: float = 0.05,
) -> CupedEffect:
    """Welch comparison of the adjusted means, with ``1 - Var_adj(d) / Var_unadj(d)``.

    ``theta`` and ``covariate_mean`` come from :func:`pooled_theta` and
    :func:`pooled_covariate_mean` over *all* arms of the experiment, so every
    arm is adjusted with the same slope.
    """
    adjusted_control = cuped_estimate(control, theta, covariate_mean)
    adjusted_treatment = cuped_estimate(treatment, theta, covariate_mean)
    effect = compare_arms(adjusted_control, adjusted_treatment, alpha=alpha)

    def unadjusted_variance_of_mean(stats: ArmStatistics) -> np.ndarray:
        n = np.asarray(stats.n, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(stats.var_y) / n

    unadjusted = unadjusted_variance_of_mean(control) + unadjusted_variance_of_mean(treatment)
    adjusted = np.asarray(adjusted_control.variance_of_mean) + np.asarray(
        adjusted_treatment.variance_of_mean
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = np.where(unadjusted > 0, 1.0 - adjusted / unadjusted, 0.0)
    return CupedEffect(
        theta=scalar_or_array(np.asarray(theta)),
        variance_reduction=scalar_or_array(reduction),
        effect=effect,
    )
