"""Honest held-out evaluation of a targeting policy on randomised experiment data.

Data: for each held-out row ``i``, the arm it was randomised to,
``treatment_i`` in 0..K (0 = control), its outcome ``y_i`` (conversion 0/1
or revenue), and the known assignment probabilities ``e_i(a)``
(``propensity``, ``(n, K + 1)``, or one length ``K + 1`` vector of arm
weights shared by all rows). A policy gives each row an arm: ``-1`` (no
contact, i.e. control, arm 0) or treatment column ``k`` (arm ``k + 1``),
exactly the ``arm`` of :func:`models_dl.policy.targeting_select`.

Estimand. The policy's expected incremental outcome and profit on these
rows versus contacting no one, each row counted at its own expected effect
given who it is:

    conversions = sum_i [m_i(a_i) - m_i(0)]
    profit      = sum_{i: a_i > 0} [(value - conversion_cost_a) m_i(a_i)
                                    - cost_per_contact_a - value m_i(0)]

with ``m_i(a)`` the expected outcome of row ``i`` under arm ``a`` and
``a_i`` the policy's arm. Costs are as in :mod:`.policy`: a contact cost per
contact and a conversion cost on every conversion in the arm.

Estimator. Per row, the pseudo-outcome of arm ``a`` is

    Gamma_i(a) = mu_i(a) + 1[treatment_i = a] / e_i(a) * (y_i - mu_i(a))

which is the doubly robust (AIPW) form with outcome predictions ``mu``
(``(n, K + 1)``) and inverse propensity weighting (IPW) with ``mu = 0``.
Each is unbiased for ``m_i(a)`` given the row because ``e`` is known and
``mu`` was fitted on other rows (use the model trained on the training
split; do not fit ``mu`` on these rows). Row ``i`` then contributes

    d_i = Gamma_i(a_i) - Gamma_i(0)                                (conversions)
    p_i = (value - conversion_cost_a) Gamma_i(a_i) - cost_a - value Gamma_i(0)
                                                                (profit, a_i > 0)

(both 0 when ``a_i = 0``), the estimate is ``sum_i p_i`` and its standard
error ``sqrt(n) * sd(p)`` with the sample standard deviation of the ``p_i``.
Rows are independent, so this is the usual standard error of a sum; for the
rows' own expected total it is conservative by the spread of the true
per-row effects, which is small next to the outcome noise the weights carry.
Intervals are normal: ``estimate +/- z * se``.

Comparisons of policies on the same rows are paired: the difference's
standard error comes from the per-row differences ``p_i(A) - p_i(B)``,
which is far tighter than combining two separate errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


@dataclass(frozen=True)
class Estimate:
    """A total over the evaluated rows with its standard error and interval."""

    value: float
    se: float
    low: float
    high: float


@dataclass(frozen=True)
class PolicyEstimate:
    """``method`` is "dr" or "ipw"; ``contacts`` counts the rows the policy contacts."""

    method: str
    rows: int
    contacts: int
    incremental_conversions: Estimate
    incremental_profit: Estimate


@dataclass(frozen=True)
class PolicyComparison:
    """Each policy's estimate, and its paired difference from ``reference``."""

    reference: str
    estimates: dict[str, PolicyEstimate]
    profit_vs_reference: dict[str, Estimate]
    conversions_vs_reference: dict[str, Estimate]


@dataclass(frozen=True)
class ProfitCurve:
    """Estimated incremental profit when the top ``contacts`` rows are contacted."""

    contacts: np.ndarray
    profit: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class HeldOut:
    """Validated experiment rows: see the module docstring for the meaning."""

    treatment: np.ndarray
    y: np.ndarray
    propensity: np.ndarray
    mu: np.ndarray | None

    @property
    def n_arms(self) -> int:
        """Number of treatment arms ``K`` (control excluded)."""
        return self.propensity.shape[1] - 1


def held_out(treatment: np.ndarray, y: np.ndarray, propensity: np.ndarray,
             mu: np.ndarray | None = None) -> HeldOut:
    """Check and normalise held-out experiment data (raises ValueError naming the argument)."""
    treatment = np.asarray(treatment)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = y.size
    if treatment.shape != (n,) or not np.issubdtype(treatment.dtype, np.integer):
        raise ValueError(f"treatment must be {n} integers (0 = control, 1..K)")
    if not np.all(np.isfinite(y)):
        raise ValueError("y must be finite")
    propensity = np.asarray(propensity, dtype=np.float64)
    if propensity.ndim == 1:
        if np.any(propensity < 0) or not propensity.sum() > 0:
            raise ValueError("propensity weights must be non-negative with a positive sum")
        propensity = np.broadcast_to(propensity / propensity.sum(), (n, propensity.size))
    if propensity.ndim != 2 or propensity.shape[0] != n or propensity.shape[1] < 2:
        raise ValueError(f"propensity must have shape (n, K + 1) with n = {n}, "
                         f"or be a vector of K + 1 arm weights; got {propensity.shape}")
    if (not np.all(np.isfinite(propensity)) or np.any(propensity < 0)
            or not np.allclose(propensity.sum(axis=1), 1.0, atol=1e-6)):
        raise ValueError("propensity rows must be probabilities summing to 1")
    if np.any(treatment < 0) or np.any(treatment >= propensity.shape[1]):
        raise ValueError(f"treatment must lie in 0..{propensity.shape[1] - 1}")
    if np.any(propensity[np.arange(n), treatment] <= 0):
        raise ValueError("a row was observed in an arm it had propensity 0 for")
    if mu is not None:
        mu = np.asarray(mu, dtype=np.float64)
        if mu.shape != propensity.shape or not np.all(np.isfinite(mu)):
            raise ValueError(f"mu must be finite with shape {propensity.shape}")
    return HeldOut(treatment=treatment, y=y, propensity=propensity, mu=mu)


def policy_value(
    arm: np.ndarray, data: HeldOut, *, value_per_conversion: float = 1.0,
    cost_per_contact: float | np.ndarray = 0.0, conversion_cost: float | np.ndarray = 0.0,
    level: float = 0.95,
) -> PolicyEstimate:
    """Estimated incremental conversions and profit of ``arm`` versus no contact.

    ``arm``: per row -1 (no contact) or treatment column 0..K-1. Doubly
    robust when ``data.mu`` is set, else IPW (formulas in the module
    docstring). Costs are numbers or length-K arrays as in targeting_select.
    """
    conversions, profit = _contributions(arm, data, value_per_conversion, cost_per_contact,
                                         conversion_cost)
    return PolicyEstimate(
        method="ipw" if data.mu is None else "dr", rows=int(data.y.size),
        contacts=int(np.sum(np.asarray(arm) >= 0)),
        incremental_conversions=_total(conversions, level),
        incremental_profit=_total(profit, level))


def policy_comparison(
    policies: Mapping[str, np.ndarray], data: HeldOut, *, reference: str,
    value_per_conversion: float = 1.0, cost_per_contact: float | np.ndarray = 0.0,
    conversion_cost: float | np.ndarray = 0.0, level: float = 0.95,
) -> PolicyComparison:
    """Evaluate several policies (name -> arm array) on the same rows, paired against one.

    ``profit_vs_reference[name]`` estimates profit(name) - profit(reference)
    with a standard error from the per-row differences (same rows, so the
    shared outcome noise cancels).
    """
    if reference not in policies:
        raise ValueError(f"reference {reference!r} is not one of the policies")
    economics = (value_per_conversion, cost_per_contact, conversion_cost)
    rows = {name: _contributions(arm, data, *economics) for name, arm in policies.items()}
    base_conversions, base_profit = rows[reference]
    return PolicyComparison(
        reference=reference,
        estimates={name: policy_value(arm, data, value_per_conversion=value_per_conversion,
                                      cost_per_contact=cost_per_contact,
                                      conversion_cost=conversion_cost, level=level)
                   for name, arm in policies.items()},
        profit_vs_reference={name: _total(profit - base_profit, level)
                             for name, (_, profit) in rows.items()},
        conversions_vs_reference={name: _total(conversions - base_conversions, level)
                                  for name, (conversions, _) in rows.items()},
    )


def policy_profit_curve(
    arm: np.ndarray, score: np.ndarray, data: HeldOut, *, value_per_conversion: float = 1.0,
    cost_per_contact: float | np.ndarray = 0.0, conversion_cost: float | np.ndarray = 0.0,
    points: int = 21, level: float = 0.95,
) -> ProfitCurve:
    """Estimated profit of contacting the top ``m`` rows by ``score`` with their ``arm``.

    For each ``m`` on a grid of ``points`` values from 0 to n, rows ranked
    by decreasing ``score`` (e.g. ``profit_by_arm.max(axis=1)``) are
    contacted when among the first ``m`` and their ``arm`` is not -1. The
    point is ``sum_{rank <= m} p_i``; its standard error treats it as the sum
    of ``z_i = 1[rank_i <= m] p_i`` over all rows, from running sums.
    """
    arm = np.asarray(arm)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    if score.shape != arm.shape or not np.all(np.isfinite(score)):
        raise ValueError("score must be finite with one value per row")
    _, profit = _contributions(arm, data, value_per_conversion, cost_per_contact,
                               conversion_cost)
    n = profit.size
    ranked = profit[np.argsort(-score, kind="stable")]
    sums = np.concatenate([[0.0], np.cumsum(ranked)])
    squares = np.concatenate([[0.0], np.cumsum(ranked**2)])
    grid = np.unique(np.linspace(0, n, max(min(points, n + 1), 2)).astype(int))
    totals = sums[grid]
    variance = np.maximum(squares[grid] - totals**2 / n, 0.0) / max(n - 1, 1)
    se = np.sqrt(n * variance)
    z = float(norm.ppf(0.5 + level / 2))
    return ProfitCurve(contacts=grid, profit=totals, low=totals - z * se, high=totals + z * se)


def baseline_policies(arm: np.ndarray, *, n_arms: int, response_score: np.ndarray | None = None,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """The usual comparisons for a policy ``arm`` (per row -1 or 0..K-1).

    ``no_one``; ``everyone_arm_k`` for each k; ``random`` (same number of
    contacts per arm as the policy, on rows drawn at random, seeded); and,
    with a ``response_score`` (e.g. purchase probability), ``top_response``:
    the same number of contacts as the policy, highest score first, all in
    the policy's most used arm.
    """
    arm = np.asarray(arm)
    n = arm.size
    policies = {"no_one": np.full(n, -1, dtype=np.int64)}
    for k in range(n_arms):
        policies[f"everyone_arm_{k}"] = np.full(n, k, dtype=np.int64)
    policies["random"] = random_like(arm, seed=seed)
    if response_score is not None:
        counts = np.bincount(arm[arm >= 0], minlength=n_arms)
        policies["top_response"] = top_by_score(response_score, int(counts.sum()),
                                                arm=int(np.argmax(counts)) if counts.sum() else 0)
    return policies


def random_like(arm: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """The policy's arms shuffled across rows: same size and arm mix, random customers."""
    return np.random.default_rng(seed).permutation(np.asarray(arm))


def top_by_score(score: np.ndarray, contacts: int, *, arm: int = 0) -> np.ndarray:
    """Contact the ``contacts`` rows with the highest ``score`` in treatment column ``arm``."""
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    chosen = np.full(score.size, -1, dtype=np.int64)
    chosen[np.argsort(-score, kind="stable")[:max(int(contacts), 0)]] = arm
    return chosen


def _contributions(arm, data: HeldOut, value: float, cost, conversion_cost
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``d_i`` and ``p_i`` (module docstring)."""
    arm = np.asarray(arm)
    n = data.y.size
    if arm.shape != (n,) or not np.issubdtype(arm.dtype, np.integer):
        raise ValueError(f"arm must be {n} integers (-1 = no contact, 0..K-1)")
    if np.any(arm < -1) or np.any(arm >= data.n_arms):
        raise ValueError(f"arm must lie in -1..{data.n_arms - 1}")
    cost = _per_arm("cost_per_contact", cost, data.n_arms)
    conversion_cost = _per_arm("conversion_cost", conversion_cost, data.n_arms)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError("value_per_conversion must be a non-negative number")
    target = arm + 1
    contacted = target > 0
    if np.any(data.propensity[contacted, 0] <= 0) or np.any(
            data.propensity[contacted, target[contacted]] <= 0):
        raise ValueError("the policy uses an arm some rows could not be assigned to "
                         "(propensity 0): its value is not identified from this experiment")
    treated = _pseudo_outcome(data, target)
    control = _pseudo_outcome(data, np.zeros(n, dtype=np.int64))
    column = np.maximum(arm, 0)
    conversions = np.where(contacted, treated - control, 0.0)
    profit = np.where(contacted, (value - conversion_cost[column]) * treated - cost[column]
                      - value * control, 0.0)
    return conversions, profit


def _pseudo_outcome(data: HeldOut, target: np.ndarray) -> np.ndarray:
    rows = np.arange(data.y.size)
    propensity = data.propensity[rows, target]
    # rows the policy leaves alone may have propensity 0 here; their value is never used
    observed = (data.treatment == target) / np.where(propensity > 0, propensity, 1.0)
    baseline = np.zeros(data.y.size) if data.mu is None else data.mu[rows, target]
    return baseline + observed * (data.y - baseline)


def _total(contribution: np.ndarray, level: float) -> Estimate:
    n = contribution.size
    total = float(contribution.sum())
    se = float(np.sqrt(n) * contribution.std(ddof=1)) if n > 1 else float("nan")
    z = float(norm.ppf(0.5 + level / 2))
    return Estimate(value=total, se=se, low=total - z * se, high=total + z * se)


def _per_arm(name: str, value, n_arms: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(n_arms, float(array))
    if array.shape != (n_arms,) or not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must be a non-negative number or {n_arms} of them")
    return array
