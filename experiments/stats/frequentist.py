"""Fixed-horizon comparison of a treatment arm against control.

With ``m`` the arm estimates and ``v = variance / n`` their squared standard
errors (see ``arm_estimates``)::

    d      = m_t - m_c                      absolute effect
    se_d   = sqrt(v_t + v_c)                unpooled (Welch) standard error
    df     = (v_t + v_c)^2 / (v_t^2 / df_t + v_c^2 / df_c)   Welch-Satterthwaite
    T      = d / se_d,   p = 2 * P(t_df > |T|)
    CI     = d -/+ t_{df, 1 - alpha/2} * se_d

Why Welch's t and not a pooled t or a plain z: the arms need not share a
variance (a treatment that changes behaviour usually changes its spread), and
the t reference costs nothing at large n, where it equals the z-test, while
staying honest for a small segment. Proportions carry ``df = inf`` and so get
the unpooled Wald z-test; the result equals ``scipy.stats.ttest_ind(...,
equal_var=False)`` for means and statsmodels' ``test_proportions_2indep`` /
``confint_proportions_2indep`` with ``method="wald"`` for proportions (see the
tests).

Relative lift ``L = m_t / m_c - 1`` uses the delta method for a ratio of two
independent means::

    Var(L) ~= v_t / m_c^2 + m_t^2 v_c / m_c^4
    CI     = L -/+ t_{df, 1 - alpha/2} * sqrt(Var(L))

The relative interval reuses the absolute test's critical value so both
intervals agree in level; its p-value is the absolute one (``L = 0`` and
``d = 0`` are the same null).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments.stats.arm_estimates import ArmEstimate
from experiments.stats.sufficient import Numeric, scalar_or_array


@dataclass(frozen=True)
class EffectEstimate:
    """Treatment minus control, absolute and relative, at one point in time."""

    control_mean: Numeric
    treatment_mean: Numeric
    absolute_effect: Numeric
    absolute_se: Numeric
    absolute_ci_low: Numeric
    absolute_ci_high: Numeric
    relative_effect: Numeric
    relative_se: Numeric
    relative_ci_low: Numeric
    relative_ci_high: Numeric
    statistic: Numeric
    df: Numeric
    p_value: Numeric
    alpha: float


def welch_degrees_of_freedom(control: ArmEstimate, treatment: ArmEstimate) -> Numeric:
    """Welch-Satterthwaite ``(v_t + v_c)^2 / (v_t^2 / df_t + v_c^2 / df_c)``; ``inf`` for z-tests."""
    v_c = np.asarray(control.variance_of_mean, dtype=np.float64)
    v_t = np.asarray(treatment.variance_of_mean, dtype=np.float64)
    df_c = np.asarray(control.df, dtype=np.float64)
    df_t = np.asarray(treatment.df, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # v^2 / inf is 0, so normal-reference arms drop out of the denominator.
        denominator = v_t**2 / df_t + v_c**2 / df_c
        df = np.where(denominator > 0, (v_t + v_c) ** 2 / denominator, np.inf)
    df = np.where(np.isnan(v_c) | np.isnan(v_t), np.nan, df)
    return scalar_or_array(df)


def two_sided_p_value(statistic: Numeric, df: Numeric) -> Numeric:
    """``2 * P(t_df > |statistic|)`` (the normal when ``df = inf``)."""
    return scalar_or_array(2.0 * scipy_stats.t.sf(np.abs(np.asarray(statistic)), np.asarray(df)))


def compare_arms(
    control: ArmEstimate, treatment: ArmEstimate, alpha: float = 0.05
) -> EffectEstimate:
    """Welch comparison of ``treatment`` against ``control``; formulas in the module docstring."""
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie in (0, 1)")
    m_c = np.asarray(control.mean, dtype=np.float64)
    m_t = np.asarray(treatment.mean, dtype=np.float64)
    v_c = np.asarray(control.variance_of_mean, dtype=np.float64)
    v_t = np.asarray(treatment.variance_of_mean, dtype=np.float64)

    effect = m_t - m_c
    se = np.sqrt(v_t + v_c)
    df = np.asarray(welch_degrees_of_freedom(control, treatment))
    critical = scipy_stats.t.ppf(1.0 - alpha / 2.0, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = effect / se
        # Zero spread in both arms: identical constants are "no difference"
        # (p = 1); different constants are a certain difference (p = 0).
        statistic = np.where(
            se == 0, np.where(effect == 0, 0.0, np.sign(effect) * np.inf), statistic
        )
        p_value = np.asarray(two_sided_p_value(statistic, df))

        relative = m_t / m_c - 1.0
        relative_se = np.sqrt(v_t / m_c**2 + m_t**2 * v_c / m_c**4)
        undefined = m_c == 0
        relative = np.where(undefined, np.nan, relative)
        relative_se = np.where(undefined, np.nan, relative_se)

    return EffectEstimate(
        control_mean=scalar_or_array(m_c),
        treatment_mean=scalar_or_array(m_t),
        absolute_effect=scalar_or_array(effect),
        absolute_se=scalar_or_array(se),
        absolute_ci_low=scalar_or_array(effect - critical * se),
        absolute_ci_high=scalar_or_array(effect + critical * se),
        relative_effect=scalar_or_array(relative),
        relative_se=scalar_or_array(relative_se),
        relative_ci_low=scalar_or_array(relative - critical * relative_se),
        relative_ci_high=scalar_or_array(relative + critical * relative_se),
        statistic=scalar_or_array(statistic),
        df=scalar_or_array(df),
        p_value=scalar_or_array(p_value),
        alpha=alpha,
    )
