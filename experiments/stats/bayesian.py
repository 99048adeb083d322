"""Bayesian reading of a comparison: posterior, chance to beat control, expected loss.

Two posteriors for the effect ``Delta = mu_t - mu_c``:

* **Normal approximation** (means, ratios, CUPED-adjusted estimates). With a
  flat prior and the CLT likelihood, ``Delta | data ~ N(d, se_d^2)`` where
  ``d`` and ``se_d`` are the estimate and standard error of ``frequentist``.
  Everything is then closed form.
* **Beta-Binomial** (proportions). Independent ``Beta(a0 + k, b0 + n - k)``
  posteriors per arm (uniform ``Beta(1, 1)`` prior by default); the
  difference is integrated by Monte Carlo with a seeded
  ``numpy.random.Generator``, so a rerun of an analysis gives the same numbers.

Direction: with ``G = Delta`` when an increase is good and ``G = -Delta`` when
a decrease is good (``G > 0`` always means "treatment is better"),

    chance to beat control            P(G > 0)
    expected loss, choose treatment   E[max(0, -G)]    what we give up if treatment is worse
    expected loss, choose control     E[max(0,  G)]    what we give up if treatment is better

both losses in the metric's own units. For ``G ~ N(g, s^2)`` (with
``phi``/``Phi`` the standard normal pdf/cdf)::

    P(G > 0)       = Phi(g / s)
    E[max(0, G)]   = g Phi(g / s) + s phi(g / s)
    E[max(0, -G)]  = -g Phi(-g / s) + s phi(g / s)

(Stucchio, "Bayesian A/B Testing at VWO", 2015, for the loss criterion.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from experiments.stats.arm_estimates import ArmEstimate
from experiments.stats.sufficient import ArmStatistics, Numeric, scalar_or_array

DEFAULT_DRAWS = 100_000


@dataclass(frozen=True)
class BayesianEffect:
    """Posterior summary of ``Delta = mu_t - mu_c`` and the decision quantities."""

    method: Literal["normal", "beta_binomial"]
    posterior_mean: Numeric
    posterior_sd: Numeric
    credible_low: Numeric
    credible_high: Numeric
    credible_level: float
    chance_to_beat_control: Numeric
    expected_loss_choose_treatment: Numeric
    expected_loss_choose_control: Numeric


def normal_posterior(
    control: ArmEstimate,
    treatment: ArmEstimate,
    increase_is_good: bool = True,
    credible_level: float = 0.95,
) -> BayesianEffect:
    """Flat-prior normal posterior ``N(d, se_d^2)``; closed forms in the module docstring."""
    _check_level(credible_level)
    delta = np.asarray(treatment.mean, dtype=np.float64) - np.asarray(
        control.mean, dtype=np.float64
    )
    sd = np.sqrt(
        np.asarray(treatment.variance_of_mean, dtype=np.float64)
        + np.asarray(control.variance_of_mean, dtype=np.float64)
    )
    gain = delta if increase_is_good else -delta
    with np.errstate(divide="ignore", invalid="ignore"):
        standardised = gain / sd
    norm = scipy_stats.norm
    # sd == 0 (both arms constant) leaves the posterior a point mass at delta.
    point_mass = sd == 0
    chance = np.where(point_mass, (gain > 0).astype(float), norm.cdf(standardised))
    density = np.where(point_mass, 0.0, sd * norm.pdf(standardised))
    loss_control = np.where(
        point_mass, np.maximum(gain, 0.0), gain * norm.cdf(standardised) + density
    )
    loss_treatment = np.where(
        point_mass, np.maximum(-gain, 0.0), -gain * norm.cdf(-standardised) + density
    )
    z = norm.ppf(0.5 + credible_level / 2.0)
    return BayesianEffect(
        method="normal",
        posterior_mean=scalar_or_array(delta),
        posterior_sd=scalar_or_array(sd),
        credible_low=scalar_or_array(delta - z * sd),
        credible_high=scalar_or_array(delta + z * sd),
        credible_level=credible_level,
        chance_to_beat_control=scalar_or_array(chance),
        expected_loss_choose_treatment=scalar_or_array(loss_treatment),
        expected_loss_choose_control=scalar_or_array(loss_control),
    )


def beta_posterior_draws(
    stats: ArmStatistics,
    draws: int,
    rng: np.random.Generator,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> np.ndarray:
    """Draws of the conversion rate from ``Beta(a0 + sum_y, b0 + n - sum_y)``."""
    stats.check_binary()
    successes = float(stats.sum_y)
    failures = float(stats.n) - successes
    return rng.beta(prior_alpha + successes, prior_beta + failures, size=draws)


def beta_binomial_posterior(
    control: ArmStatistics,
    treatment: ArmStatistics,
    increase_is_good: bool = True,
    credible_level: float = 0.95,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
    draws: int = DEFAULT_DRAWS,
    seed: int | np.random.Generator = 0,
) -> BayesianEffect:
    """Beta-Binomial posterior of ``p_t - p_c`` by Monte Carlo (one experiment, scalar sums).

    Posterior mean and sd of ``Delta`` are exact (Beta moments); the chance to
    beat control, the expected losses and the credible interval come from
    ``draws`` joint draws, with Monte Carlo error about ``0.5 / sqrt(draws)``.
    """
    _check_level(credible_level)
    rng = np.random.default_rng(seed)
    p_c = beta_posterior_draws(control, draws, rng, prior_alpha, prior_beta)
    p_t = beta_posterior_draws(treatment, draws, rng, prior_alpha, prior_beta)
    delta = p_t - p_c
    gain = delta if increase_is_good else -delta

    def beta_moments(stats: ArmStatistics) -> tuple[float, float]:
        a = prior_alpha + float(stats.sum_y)
        b = prior_beta + float(stats.n) - float(stats.sum_y)
        return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1.0))

    mean_c, var_c = beta_moments(control)
    mean_t, var_t = beta_moments(treatment)
    tail = (1.0 - credible_level) / 2.0
    low, high = np.quantile(delta, [tail, 1.0 - tail])
    return BayesianEffect(
        method="beta_binomial",
        posterior_mean=mean_t - mean_c,
        posterior_sd=float(np.sqrt(var_t + var_c)),
        credible_low=float(low),
        credible_high=float(high),
        credible_level=credible_level,
        chance_to_beat_control=float(np.mean(gain > 0)),
        expected_loss_choose_treatment=float(np.mean(np.maximum(-gain, 0.0))),
        expected_loss_choose_control=float(np.mean(np.maximum(gain, 0.0))),
    )


def chance_to_be_best(posterior_draws: npt.ArrayLike, increase_is_good: bool = True) -> np.ndarray:
    """Share of joint draws in which each arm is the best; ``posterior_draws`` is (draws, arms)."""
    samples = np.asarray(posterior_draws, dtype=np.float64)
    if samples.ndim != 2:
        raise ValueError("posterior_draws must have shape (draws, arms)")
    best = np.argmax(samples if increase_is_good else -samples, axis=1)
    return np.bincount(best, minlength=samples.shape[1]) / samples.shape[0]


def normal_posterior_draws(
    estimates: Sequence[ArmEstimate], draws: int, rng: np.random.Generator
) -> np.ndarray:
    """(draws, arms) draws of each arm's mean from ``N(mean, variance / n)`` (flat prior)."""
    means = np.array([float(e.mean) for e in estimates])
    sds = np.array([float(e.standard_error) for e in estimates])
    return means + sds * rng.standard_normal((draws, len(estimates)))


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError("credible_level must lie in (0, 1)")
