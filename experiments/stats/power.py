"""Power, sample size and minimum detectable effect of the two-sided z-test.

For an absolute effect ``delta``, per-customer variances ``var_c``, ``var_t``
and arm sizes ``n_c``, ``n_t = ratio * n_c``::

    se    = sqrt(var_c / n_c + var_t / n_t)
    power = Phi(|delta| / se - z_{1 - alpha/2}) + Phi(-|delta| / se - z_{1 - alpha/2})

The second term (rejecting in the wrong direction) is tiny but kept, so that
the numbers agree with statsmodels' ``NormalIndPower`` to rounding. The
familiar closed form::

    n_c ~= (z_{1 - alpha/2} + z_{power})^2 (var_c + var_t / ratio) / delta^2

drops that term; :func:`sample_size_per_arm` and
:func:`minimum_detectable_effect` start from it and solve the exact equation
with Brent's method. Pass the CUPED-adjusted variance to plan with the
variance reduction. These are fixed-horizon figures: an always-valid
(sequential) test needs more customers for the same power; how many more
depends on when it stops.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special
from scipy import stats as scipy_stats

from experiments.stats.sufficient import Numeric, scalar_or_array


def _validate(alpha: float, power: float | None = None) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie in (0, 1)")
    if power is not None and not alpha < power < 1.0:
        raise ValueError("power must lie in (alpha, 1)")


def power_two_sample(
    effect: Numeric,
    n_control: Numeric,
    n_treatment: Numeric,
    variance_control: Numeric,
    variance_treatment: Numeric | None = None,
    alpha: float = 0.05,
) -> Numeric:
    """Two-sided power at an absolute ``effect``; formula in the module docstring."""
    _validate(alpha)
    variance_treatment = variance_control if variance_treatment is None else variance_treatment
    se = np.sqrt(
        np.asarray(variance_control, dtype=np.float64) / np.asarray(n_control, dtype=np.float64)
        + np.asarray(variance_treatment, dtype=np.float64)
        / np.asarray(n_treatment, dtype=np.float64)
    )
    # special.ndtr / ndtri are the standard normal cdf / quantile without
    # scipy.stats' argument checking, which dominates inside a root search.
    z = special.ndtri(1.0 - alpha / 2.0)
    shift = np.abs(np.asarray(effect, dtype=np.float64)) / se
    return scalar_or_array(special.ndtr(shift - z) + special.ndtr(-shift - z))


def sample_size_per_arm(
    minimum_detectable_effect: float,
    variance_control: float,
    variance_treatment: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> float:
    """Control-arm size ``n_c`` (treatment ``ratio * n_c``) that detects the absolute effect with ``power``.

    Not rounded; round up (``math.ceil``) for a plan.
    """
    _validate(alpha, power)
    if minimum_detectable_effect == 0:
        raise ValueError("minimum_detectable_effect must be non-zero")
    if not variance_control > 0 or not ratio > 0:
        raise ValueError("variance_control and ratio must be > 0")
    variance_treatment = variance_control if variance_treatment is None else variance_treatment
    z_sum = scipy_stats.norm.ppf(1.0 - alpha / 2.0) + scipy_stats.norm.ppf(power)
    closed_form = (
        z_sum**2 * (variance_control + variance_treatment / ratio) / minimum_detectable_effect**2
    )

    def shortfall(n_control: float) -> float:
        achieved = power_two_sample(
            minimum_detectable_effect,
            n_control,
            ratio * n_control,
            variance_control,
            variance_treatment,
            alpha,
        )
        return float(achieved) - power

    # The closed form ignores the wrong-direction term, so it slightly
    # overshoots: the exact root lies below it, above a tenth of it.
    return float(
        optimize.brentq(shortfall, closed_form / 10.0, closed_form, xtol=1e-12, rtol=1e-15)
    )


def minimum_detectable_effect(
    n_control: float,
    n_treatment: float,
    variance_control: float,
    variance_treatment: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Smallest absolute effect detected with ``power`` at the given arm sizes (e.g. traffic so far)."""
    _validate(alpha, power)
    if not n_control > 0 or not n_treatment > 0:
        return float("inf")
    variance_treatment = variance_control if variance_treatment is None else variance_treatment
    se = float(np.sqrt(variance_control / n_control + variance_treatment / n_treatment))
    if se == 0:
        return 0.0
    closed_form = (scipy_stats.norm.ppf(1.0 - alpha / 2.0) + scipy_stats.norm.ppf(power)) * se

    def shortfall(effect: float) -> float:
        achieved = power_two_sample(
            effect, n_control, n_treatment, variance_control, variance_treatment, alpha
        )
        return float(achieved) - power

    return float(
        optimize.brentq(
            shortfall, closed_form / 10.0, closed_form, xtol=1e-14 * closed_form, rtol=1e-15
        )
    )
