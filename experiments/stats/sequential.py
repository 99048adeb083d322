"""Always-valid inference: asymptotic confidence sequences for an A/B difference.

Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, "Time-uniform central limit
theory and asymptotic confidence sequences" (arXiv:2103.06476, Annals of
Statistics 2024), Theorem 2.2: for i.i.d. observations with mean ``mu`` and
finite variance, with ``mu_t`` the running mean and ``sigma_t`` the running
standard deviation,

    mu_t -/+ sigma_t * sqrt( 2 (t rho^2 + 1) / (t^2 rho^2) * log( sqrt(t rho^2 + 1) / alpha ) )

covers ``mu`` at all ``t`` simultaneously with asymptotic probability
``1 - alpha`` (two-sided normal-mixture boundary of Robbins, with a
data-driven variance).

**The A/B difference.** In a randomised experiment the paper applies the
recipe to pseudo-outcomes whose mean is the effect; with assignment
probability ``pi`` the efficient one has variance
``sigma^2 = s_t^2 / pi + s_c^2 / (1 - pi)``. Plugging in the empirical share
``pi = n_t / t`` with ``t = n_t + n_c`` (customers in the two arms) gives
``sigma_t^2 / t = s_t^2 / n_t + s_c^2 / n_c = se_d^2``, so the sequence for
``d = m_t - m_c`` is

    d -/+ se_d * M_t,   M_t = sqrt( (t rho^2 + 1) / (t rho^2) * 2 log( sqrt(t rho^2 + 1) / alpha ) )

where ``se_d`` is the fixed-horizon standard error of ``frequentist``
(proportion, mean, ratio or CUPED-adjusted). ``M_t`` replaces the fixed
``z_{1 - alpha/2}`` (1.96); it is larger at every ``t``, which buys the right
to look after every customer and stop whenever the sequence excludes 0.

**Tuning rho.** ``rho`` only moves where the boundary is tightest, never the
validity, but it must be fixed before the data arrive (not re-chosen at each
look). We pick it to minimise ``M_t`` at the planned sample size ``t*``.
Writing ``u = t* rho^2``, ``d M / d u = 0`` gives ``u = log(1 + u) - 2 log alpha``,
whose solution is ``u + 1 = -W_{-1}(-alpha^2 / e)`` (Lambert W, lower branch)::

    rho = sqrt( (-W_{-1}(-alpha^2 / e) - 1) / t* )

The paper's closed-form approximation replaces ``log(1 + u)`` by its value
at ``u = -2 log alpha``: ``rho ~= sqrt((-2 log alpha + log(-2 log alpha + 1)) / t*)``
(:func:`approximate_optimal_rho`); the two differ by under 2% at alpha = 0.05.
At the optimum ``M_{t*}^2 = u + 1``, so ``M_{t*} = 3.04`` for alpha = 0.05: at
the planned sample the sequence is 55% wider than the fixed 1.96 interval,
the price of being allowed to look at every customer.

**Always-valid p-value.** The mixture martingale under ``d = 0`` is
``L_t = (t rho^2 + 1)^{-1/2} exp( t rho^2 z^2 / (2 (t rho^2 + 1)) )`` with
``z = d / se_d``; by Ville's inequality ``p_t = min(1, 1 / max_{s <= t} L_s)``
is valid at any stopping time, and ``p_t <= alpha`` exactly when the sequence
at time ``t`` excludes 0. Pass the previous look's p-value to carry the
running minimum.

These guarantees are asymptotic (as for any CLT interval); in simulation the
sequence is conservative from a few hundred customers per arm.

With CUPED the pseudo-outcome is ``y - theta x``. The paper's regression-
adjusted sequences fit the adjustment on past data only; ``analysis`` instead
re-estimates one ``theta`` from all data at each look, which is asymptotically
equivalent (``theta`` converges at rate 1/sqrt(t)) but not exactly the
paper's construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from experiments.stats.arm_estimates import ArmEstimate
from experiments.stats.sufficient import Numeric, scalar_or_array


@dataclass(frozen=True)
class SequentialEffect:
    """The confidence sequence for ``d = m_t - m_c`` at the current look."""

    absolute_effect: Numeric
    ci_low: Numeric
    ci_high: Numeric
    boundary_multiplier: Numeric
    p_value: Numeric
    t: Numeric
    rho: float
    alpha: float


def optimal_rho(planned_sample_size: float, alpha: float = 0.05) -> float:
    """``rho`` that makes the boundary tightest at ``t* = planned_sample_size`` (exact, via Lambert W)."""
    _check(planned_sample_size, alpha)
    u_plus_one = -special.lambertw(-(alpha**2) / np.e, k=-1).real
    return float(np.sqrt((u_plus_one - 1.0) / planned_sample_size))


def approximate_optimal_rho(planned_sample_size: float, alpha: float = 0.05) -> float:
    """The paper's approximation ``sqrt((-2 log alpha + log(-2 log alpha + 1)) / t*)``."""
    _check(planned_sample_size, alpha)
    minus_two_log_alpha = -2.0 * np.log(alpha)
    return float(
        np.sqrt((minus_two_log_alpha + np.log(minus_two_log_alpha + 1.0)) / planned_sample_size)
    )


def _check(planned_sample_size: float, alpha: float) -> None:
    if not planned_sample_size > 0:
        raise ValueError("planned_sample_size must be > 0")
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie in (0, 1)")


def boundary_multiplier(t: Numeric, rho: float, alpha: float = 0.05) -> Numeric:
    """``M_t = sqrt((t rho^2 + 1) / (t rho^2) * 2 log(sqrt(t rho^2 + 1) / alpha))``: radius over ``se_d``."""
    t = np.asarray(t, dtype=np.float64)
    scaled = t * rho**2
    with np.errstate(divide="ignore", invalid="ignore"):
        multiplier = np.sqrt((scaled + 1.0) / scaled * 2.0 * np.log(np.sqrt(scaled + 1.0) / alpha))
    return scalar_or_array(np.where(t > 0, multiplier, np.inf))


def always_valid_p_value(z: Numeric, t: Numeric, rho: float) -> Numeric:
    """``min(1, sqrt(t rho^2 + 1) * exp(-t rho^2 z^2 / (2 (t rho^2 + 1))))`` at one look."""
    scaled = np.asarray(t, dtype=np.float64) * rho**2
    z = np.asarray(z, dtype=np.float64)
    # In log space so that a huge z gives 0 instead of an overflow warning.
    with np.errstate(invalid="ignore"):
        log_p = 0.5 * np.log1p(scaled) - scaled * z**2 / (2.0 * (scaled + 1.0))
    return scalar_or_array(np.minimum(1.0, np.exp(log_p)))


def confidence_sequence(
    control: ArmEstimate,
    treatment: ArmEstimate,
    rho: float,
    alpha: float = 0.05,
    previous_p_value: Numeric | None = None,
) -> SequentialEffect:
    """The asymptotic confidence sequence and always-valid p-value at the current look.

    ``rho`` comes from :func:`optimal_rho` with the planned number of
    customers in the two arms together, fixed for the life of the experiment.
    """
    if not rho > 0:
        raise ValueError("rho must be > 0")
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie in (0, 1)")
    effect = np.asarray(treatment.mean, dtype=np.float64) - np.asarray(
        control.mean, dtype=np.float64
    )
    se = np.sqrt(
        np.asarray(treatment.variance_of_mean, dtype=np.float64)
        + np.asarray(control.variance_of_mean, dtype=np.float64)
    )
    t = np.asarray(treatment.n, dtype=np.float64) + np.asarray(control.n, dtype=np.float64)
    multiplier = np.asarray(boundary_multiplier(t, rho, alpha))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, effect / se, np.where(effect == 0, 0.0, np.inf))
        z = np.where(np.isnan(se), np.nan, z)
        # An empty arm leaves se NaN and M infinite: the interval is NaN (unknown).
        radius = np.where(np.isnan(se), np.nan, multiplier * se)
    p_value = np.asarray(always_valid_p_value(z, t, rho))
    if previous_p_value is not None:
        p_value = np.fmin(p_value, np.asarray(previous_p_value, dtype=np.float64))
    return SequentialEffect(
        absolute_effect=scalar_or_array(effect),
        ci_low=scalar_or_array(effect - radius),
        ci_high=scalar_or_array(effect + radius),
        boundary_multiplier=scalar_or_array(multiplier),
        p_value=scalar_or_array(p_value),
        t=scalar_or_array(t),
        rho=float(rho),
        alpha=alpha,
    )
