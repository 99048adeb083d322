"""Seeded generators of sufficient statistics for the simulation tests.

Everything is vectorised over a leading "experiment" axis, so one call
produces thousands of independent experiments as arrays of sums.
"""

from __future__ import annotations

import numpy as np

from experiments.stats.sufficient import ArmStatistics


def normal_arm(
    rng: np.random.Generator, n: int, mean: float, sd: float, size: int | tuple[int, ...]
) -> ArmStatistics:
    """Exact sums of ``n`` i.i.d. N(mean, sd^2) rows per experiment, without drawing the rows.

    For normal rows the total is N(n mean, n sd^2) and, independently, the
    centred sum of squares is sd^2 * chi2(n - 1); ``sum_y2`` follows.
    """
    total = rng.normal(n * mean, sd * np.sqrt(n), size)
    centred = sd**2 * rng.chisquare(n - 1, size)
    return ArmStatistics(
        n=np.full(np.shape(total), float(n)), sum_y=total, sum_y2=centred + total**2 / n
    )


def cumulative_normal_arm(
    rng: np.random.Generator, batch: int, looks: int, mean: float, sd: float, experiments: int
) -> ArmStatistics:
    """Sums at each of ``looks`` looks, ``batch`` new customers per look: arrays (experiments, looks)."""
    batches = normal_arm(rng, batch, mean, sd, (experiments, looks))
    return ArmStatistics(
        n=np.cumsum(batches.n, axis=1),
        sum_y=np.cumsum(batches.sum_y, axis=1),
        sum_y2=np.cumsum(batches.sum_y2, axis=1),
    )


def cumulative_binary_arm(
    rng: np.random.Generator, batch: int, looks: int, rate: float, experiments: int
) -> ArmStatistics:
    """Conversions at each look for 0/1 outcomes: arrays (experiments, looks)."""
    conversions = np.cumsum(rng.binomial(batch, rate, (experiments, looks)), axis=1).astype(float)
    n = np.cumsum(np.full((experiments, looks), float(batch)), axis=1)
    return ArmStatistics(n=n, sum_y=conversions, sum_y2=conversions)


def zero_inflated_revenue(
    rng: np.random.Generator,
    experiments: int,
    n: int,
    buy_rate: float,
    log_mean: float,
    log_sd: float,
) -> ArmStatistics:
    """Revenue per customer: 0 unless they buy, then lognormal. Raw rows, summed per experiment."""
    rows = (rng.random((experiments, n)) < buy_rate) * rng.lognormal(
        log_mean, log_sd, (experiments, n)
    )
    return ArmStatistics(
        n=np.full(experiments, float(n)), sum_y=rows.sum(axis=1), sum_y2=(rows**2).sum(axis=1)
    )


def zero_inflated_mean(buy_rate: float, log_mean: float, log_sd: float) -> float:
    """True mean of :func:`zero_inflated_revenue` rows: ``buy_rate * exp(mu + sigma^2 / 2)``."""
    return buy_rate * float(np.exp(log_mean + log_sd**2 / 2))
