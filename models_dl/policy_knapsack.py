"""Multiple-choice knapsack for targeting: one arm or none per customer.

Problem. Customer ``i`` can get one option ``k`` (a treatment arm) or none.
Option ``(i, k)`` earns ``a_ik`` and uses ``w_jik`` of each resource ``j``
(money, one contact, one slot of arm ``k``'s capacity, expected extra
guardrail events); each resource has a cap ``C_j``. Maximise ``sum a`` over
the chosen options subject to ``sum w_j <= C_j`` for every ``j``. Options with
``a_ik <= 0`` are never chosen: a contact expected to lose money is refused
even where it would free room under a limit for someone else.

Method (Lagrangian relaxation, then repair and fill):

1. Price each resource at a multiplier ``lambda_j >= 0``; customer ``i``
   then takes the option maximising ``a_ik - sum_j lambda_j w_jik`` if that
   is positive, else none. This is separable, so one vectorised pass over
   the ``(n, K)`` table evaluates a set of prices.
2. Each ``lambda_j`` is set by bisection to the smallest price at which
   resource ``j`` fits, the others held fixed, cycling over the resources
   until the prices settle (coordinate descent on the dual, whose
   derivative in ``lambda_j`` is ``C_j - usage_j``). As ``lambda_j`` rises
   a customer's usage of ``j`` can only fall (the chosen option is on the
   upper envelope of lines of slope ``-w_jik``), so customers whose usage is
   the same at both ends of the bracket are settled and later bisection
   steps only revisit the rest: this keeps a million customers fast.
   When the prices stop moving but do not fit all limits together (two or
   more limits binding at a kink of the dual), the dual is minimised
   jointly by Kelley's cutting planes (a small LP in the prices).
   Above 20,000 customers all this runs on a random subsample with the
   limits scaled in proportion, and the prices are refitted on everyone
   from a narrow bracket around the subsample's.
3. Repair: take the relaxed choices in order of priced score, skipping any
   that would break a cap (checked exactly, in the callers' units).
4. Fill: offer what is left to the unchosen customers, each taking its best
   option that still fits, ranked by priced score and, separately, by raw
   profit; the better of the two results is kept.

At the optimal prices the relaxed choice differs from the integer optimum
only in the few customers at the margin of each binding constraint, so the
result is within a few customers' profit of the optimum: on 250 random
40 x 3 problems with every kind of limit it was within half the largest
single profit of ``scipy.optimize.milp``'s optimum (the tests check 50).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

# Resources are rescaled to caps of 1 and profits to at most 1, so prices
# above this never matter; a finite bound keeps every product finite.
_PRICE_MAX = 1e100
_WEIGHT_MAX = 1e100
_ROUNDS = 6
_FILL_ROUNDS = 200
_CUTS = 60
_SAMPLE = 20_000
_FULL_ROUNDS = 3


@dataclass(frozen=True)
class KnapsackProblem:
    """All arrays are arm-major, ``(K, n)``, so that each arm's column is contiguous.

    ``spend`` is money per option; ``guard`` ``(G, K, n)`` is extra guardrail
    events per option. ``budget``, ``max_contacts``, ``arm_capacity`` (K,) and
    ``guardrail_cap`` (G,) are caps, ``inf`` where there is none.
    """

    profit: np.ndarray
    spend: np.ndarray
    guard: np.ndarray
    budget: float
    max_contacts: float
    arm_capacity: np.ndarray
    guardrail_cap: np.ndarray


def knapsack_select(problem: KnapsackProblem) -> np.ndarray:
    """Chosen option per customer: arm index 0..K-1, or -1 for none."""
    n_arms, n = problem.profit.shape
    allowed = problem.profit > 0
    allowed &= problem.spend <= problem.budget
    allowed &= (problem.arm_capacity >= 1)[:, None]
    if problem.max_contacts < 1:
        allowed[:] = False
    candidates = np.flatnonzero(allowed.any(axis=0))
    arm = np.full(n, -1, dtype=np.int64)
    if candidates.size == 0:
        return arm
    sub = _restrict(problem, candidates)
    sub_allowed = allowed[:, candidates]
    score = np.where(sub_allowed, sub.profit / np.max(sub.profit[sub_allowed]), -np.inf)
    resources = _scaled_resources(sub, sub_allowed)
    best_chosen, best_profit = None, -np.inf
    for prices in _settle_prices(score, resources):
        priced = _priced_score(score, resources, prices)
        relaxed = _best_option(priced)
        # repair: the relaxed choice, best priced score first, skipping what does not fit
        only_relaxed = np.zeros_like(sub_allowed)
        only_relaxed[relaxed[relaxed >= 0], np.flatnonzero(relaxed >= 0)] = True
        repaired = _fill(sub, only_relaxed, np.full(relaxed.size, -1), priced)
        # fill by priced score (value per unit of the scarce limits) and by raw profit:
        # either can win, and trying both is cheap next to the price search
        for rank in (priced, sub.profit):
            chosen = _fill(sub, sub_allowed, repaired, rank)
            total = _total_profit(sub, chosen)
            if total > best_profit:
                best_chosen, best_profit = chosen, total
    arm[candidates] = best_chosen
    return arm


def _total_profit(problem: KnapsackProblem, chosen: np.ndarray) -> float:
    columns = np.flatnonzero(chosen >= 0)
    return float(problem.profit[chosen[columns], columns].sum())


def _restrict(problem: KnapsackProblem, columns: np.ndarray) -> KnapsackProblem:
    return KnapsackProblem(
        profit=problem.profit[:, columns], spend=problem.spend[:, columns],
        guard=problem.guard[:, :, columns], budget=problem.budget,
        max_contacts=problem.max_contacts, arm_capacity=problem.arm_capacity,
        guardrail_cap=problem.guardrail_cap)


@dataclass
class _Resource:
    """Usage per option rescaled so that the cap is 1: ``(K, n)`` or per arm ``(K, 1)``."""

    weight: np.ndarray


def _scaled_resources(problem: KnapsackProblem, allowed: np.ndarray) -> list[_Resource]:
    n_arms = problem.profit.shape[0]
    resources = []
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        if np.isfinite(problem.budget) and problem.budget > 0:
            # options costing more than the budget were refused already, so weights are <= 1
            resources.append(_Resource(problem.spend / problem.budget))
        if np.isfinite(problem.max_contacts):
            resources.append(_Resource(np.full((n_arms, 1), 1.0 / problem.max_contacts)))
        for k, capacity in enumerate(problem.arm_capacity):
            if np.isfinite(capacity):
                per_arm = np.zeros((n_arms, 1))
                per_arm[k] = 1.0 / capacity
                resources.append(_Resource(per_arm))
        for g, cap in enumerate(problem.guardrail_cap):
            if not np.isfinite(cap):
                continue
            weight = problem.guard[g]
            # a cap of 0 can still be met by customers whom contact helps, so scale by the
            # largest harm instead; the exact caps are enforced in the repair step anyway
            scale = cap if cap > 0 else np.max(np.abs(weight[allowed]), initial=0.0)
            if scale > 0:
                resources.append(_Resource(np.clip(weight / scale, -_WEIGHT_MAX, _WEIGHT_MAX)))
    return resources


def _priced_score(score: np.ndarray, resources: list[_Resource], prices: list[float],
                  skip: int | None = None) -> np.ndarray:
    priced = score.copy()
    for j, (resource, price) in enumerate(zip(resources, prices, strict=True)):
        if j != skip and price > 0:
            priced -= price * resource.weight
    return priced


def _best_option(priced: np.ndarray) -> np.ndarray:
    """Argmax over arms with 'none' (value 0) as the default: -1 unless some arm is positive."""
    best = np.zeros(priced.shape[1])
    chosen = np.full(priced.shape[1], -1, dtype=np.int64)
    for k in range(priced.shape[0]):
        better = priced[k] > best
        best = np.where(better, priced[k], best)
        chosen[better] = k
    return chosen


def _usage(weight: np.ndarray, chosen: np.ndarray, columns: np.ndarray | None = None
           ) -> np.ndarray:
    """Per customer usage of one resource by the chosen option (0 for none)."""
    rows = np.maximum(chosen, 0)
    if weight.shape[1] == 1:
        used = weight[rows, 0]
    else:
        used = weight[rows, np.arange(chosen.size) if columns is None else columns]
    return np.where(chosen >= 0, used, 0.0)


def _settle_prices(score: np.ndarray, resources: list[_Resource]) -> list[list[float]]:
    """Price vectors to try for repair and fill.

    Coordinate descent: each price in turn is set by bisection to the
    smallest value at which its limit fits. When the resulting prices fit
    each limit alone but not all together (they cycle around a kink of the
    dual, typical when two limits bind) the dual is also minimised jointly
    by cutting planes, and the visited vectors are all candidates.

    Above ``_SAMPLE`` customers this runs on a random subsample (limits
    scaled in proportion); its prices are then refitted on everyone by a few
    rounds of bisections that start from a narrow bracket around them.
    """
    n = score.shape[1]
    if n <= _SAMPLE:
        return _coordinate_prices(score, resources, [0.0] * len(resources), _ROUNDS)
    rows = np.sort(np.random.default_rng(0).choice(n, _SAMPLE, replace=False))
    factor = n / _SAMPLE
    sample = [_Resource(r.weight * factor if r.weight.shape[1] == 1
                        else r.weight[:, rows] * factor) for r in resources]
    estimate = _settle_prices(score[:, rows], sample)[-1]
    refitted = _coordinate_prices(score, resources, estimate, _FULL_ROUNDS,
                                  ceiling=2.0 * max(estimate))
    # a single vector means the refit settled on prices that fit every limit: use it alone
    return refitted if len(refitted) == 1 else [estimate] + refitted


def _coordinate_prices(score: np.ndarray, resources: list[_Resource], start: list[float],
                       rounds: int, ceiling: float | None = None) -> list[list[float]]:
    prices = list(start)
    visited: list[list[float]] = []
    for _ in range(rounds):
        moved = False
        visited = []
        for j, resource in enumerate(resources):
            base = _priced_score(score, resources, prices, skip=j)
            price = _smallest_fitting_price(base, resource.weight, prices[j])
            if abs(price - prices[j]) > 1e-9 * max(price, prices[j]):
                moved = True
                prices = prices.copy()
                prices[j] = price
                visited.append(prices)
        if not moved or len(resources) == 1:  # one price has nothing else to adjust to
            break
    if np.all(_dual(score, resources, prices)[1] >= 0):
        return [prices]
    return visited + [prices, _cutting_plane_prices(score, resources, visited + [prices],
                                                    ceiling)]


def _dual(score: np.ndarray, resources: list[_Resource], prices: list[float]
          ) -> tuple[float, np.ndarray]:
    """Dual value ``sum_i max(0, max_k priced_ik) + sum_j lambda_j`` and its subgradient."""
    priced = _priced_score(score, resources, prices)
    chosen = _best_option(priced)
    value = float(np.maximum(priced.max(axis=0), 0.0).sum() + sum(prices))
    usage = np.array([_usage(resource.weight, chosen).sum() for resource in resources])
    return value, 1.0 - usage


def _cutting_plane_prices(score: np.ndarray, resources: list[_Resource],
                          starts: list[list[float]], ceiling: float | None = None
                          ) -> list[float]:
    """Minimise the dual by Kelley's cutting planes (an LP in the few prices).

    Used only when coordinate descent cycles, which happens when two or more
    limits bind together. The dual is at most its value at zero prices, the
    total positive profit ``S``, and at least ``sum_j lambda_j``, so the
    optimal prices lie in the box ``[0, S]``; a caller that knows the prices
    roughly (from a subsample) passes a tighter ``ceiling``.
    """
    if ceiling is None or ceiling <= 0:
        ceiling = float(np.maximum(score.max(axis=0), 0.0).sum())
    points = [list(p) for p in starts]
    cuts = [_dual(score, resources, p) for p in points]
    best = int(np.argmin([value for value, _ in cuts]))
    for _ in range(_CUTS):
        slopes = np.array([slope for _, slope in cuts])
        offsets = np.array([slope @ np.array(p) - value for (value, slope), p
                            in zip(cuts, points, strict=True)])
        n_prices = len(resources)
        lp = linprog(np.r_[np.zeros(n_prices), 1.0],
                     A_ub=np.c_[slopes, -np.ones(len(cuts))], b_ub=offsets,
                     bounds=[(0.0, ceiling)] * n_prices + [(None, None)], method="highs")
        if lp.status != 0:
            break
        point = [float(v) for v in lp.x[:n_prices]]
        cuts.append(_dual(score, resources, point))
        points.append(point)
        if cuts[-1][0] < cuts[best][0]:
            best = len(cuts) - 1
        if cuts[best][0] - lp.fun <= 1e-9 * max(ceiling, 1.0):
            break
    return points[best]


def _smallest_fitting_price(base: np.ndarray, weight: np.ndarray, guess: float) -> float:
    """Smallest ``lam`` with ``sum usage(argmax(base - lam * weight)) <= 1``, by bisection.

    The bracket is grown geometrically around ``guess`` (a previous or
    subsample price), then bisected on the bit pattern of the float
    (monotone for non-negative floats), so it narrows in at most ~60 steps
    whatever the scale of the answer; only customers whose usage differs
    at the two ends of the bracket are re-evaluated.
    """
    def choose(lam: float, columns: np.ndarray | None) -> np.ndarray:
        if columns is None:
            return _usage(weight, _best_option(base - lam * weight))
        sub_weight = weight if weight.shape[1] == 1 else weight[:, columns]
        return _usage(weight, _best_option(base[:, columns] - lam * sub_weight), columns)

    used_low = choose(0.0, None)
    if used_low.sum() <= 1.0:
        return 0.0
    low, high, used_high = 0.0, _PRICE_MAX, None
    if guess > 0:
        used = choose(guess, None)
        fits = used.sum() <= 1.0
        if fits:
            high, used_high = guess, used
        else:
            low, used_low = guess, used
        step = 1e-3
        while True:
            probe = guess / (1 + step) if fits else guess * (1 + step)
            if probe >= _PRICE_MAX or probe <= 1e-300:
                break  # the bracket keeps its end at 0 or at the price ceiling
            used = choose(probe, None)
            if fits == (used.sum() <= 1.0):
                if fits:
                    high, used_high = probe, used
                else:
                    low, used_low = probe, used
                step *= 16
            else:
                if fits:
                    low, used_low = probe, used
                else:
                    high, used_high = probe, used
                break
    if used_high is None:
        used_high = choose(high, None)
        if used_high.sum() > 1.0:
            return high
    low_bits = int(np.float64(low).view(np.int64))
    high_bits = int(np.float64(high).view(np.int64))
    differs = used_low != used_high
    open_ = np.flatnonzero(differs)
    settled = float(used_high[~differs].sum())
    used_low, used_high = used_low[open_], used_high[open_]
    while high_bits - low_bits > 1 and open_.size:
        middle_bits = (low_bits + high_bits) // 2
        middle = float(np.int64(middle_bits).view(np.float64))
        if middle - float(np.int64(low_bits).view(np.float64)) <= 1e-10 * middle:
            break
        used = choose(middle, open_)
        if settled + used.sum() <= 1.0:
            high_bits, used_high = middle_bits, used
        else:
            low_bits, used_low = middle_bits, used
        still_open = used_low != used_high
        settled += float(used_high[~still_open].sum())
        open_, used_low, used_high = open_[still_open], used_low[still_open], used_high[still_open]
    return float(np.int64(high_bits).view(np.float64))


@dataclass
class _Left:
    """What is left of each cap, in the callers' units."""

    budget: float
    contacts: float
    per_arm: np.ndarray
    guard: np.ndarray


def _usage_table(problem: KnapsackProblem, chosen: np.ndarray, columns: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spend, arm one-hot (m, K) and guardrail events (m, G) of the chosen options."""
    spend = problem.spend[chosen, columns]
    one_hot = np.zeros((columns.size, problem.profit.shape[0]))
    one_hot[np.arange(columns.size), chosen] = 1.0
    guard = problem.guard[:, chosen, columns].T
    return spend, one_hot, guard


def _longest_fitting_prefix(spend: np.ndarray, one_hot: np.ndarray, guard: np.ndarray,
                            left: _Left) -> int:
    """Largest ``m`` such that the first ``m`` options together fit in ``left``."""
    with np.errstate(over="ignore", invalid="ignore"):
        ok = np.cumsum(spend) <= left.budget
        ok &= np.arange(1, spend.size + 1) <= left.contacts
        ok &= np.all(np.cumsum(one_hot, axis=0) <= left.per_arm, axis=1)
        ok &= np.all(np.cumsum(guard, axis=0) <= left.guard, axis=1)
    fitting = np.flatnonzero(ok)
    return int(fitting[-1]) + 1 if fitting.size else 0


def _left_after(problem: KnapsackProblem, chosen: np.ndarray) -> _Left:
    columns = np.flatnonzero(chosen >= 0)
    spend, one_hot, guard = _usage_table(problem, chosen[columns], columns)
    with np.errstate(over="ignore", invalid="ignore"):
        return _Left(budget=problem.budget - spend.sum(),
                     contacts=problem.max_contacts - columns.size,
                     per_arm=problem.arm_capacity - one_hot.sum(axis=0),
                     guard=problem.guardrail_cap - guard.sum(axis=0))


def _fill(problem: KnapsackProblem, allowed: np.ndarray, chosen: np.ndarray, rank: np.ndarray
          ) -> np.ndarray:
    """Greedy fill of what the current choice leaves, highest ``rank`` (K, n) option first.

    Each round offers every open customer its best option that fits on its
    own, takes the longest fitting prefix, and repeats: the first option that
    did not fit no longer fits on its own, so every round makes progress.
    Customers with nothing that fits are dropped for good (what is left only
    shrinks, except a guardrail that a helpful contact relaxes; this greedy
    does not go back for those).
    """
    chosen = chosen.copy()
    left = _left_after(problem, chosen)
    open_ = np.flatnonzero((chosen < 0) & allowed.any(axis=0))
    for _ in range(_FILL_ROUNDS):
        if left.contacts < 1 or open_.size == 0:
            break
        with np.errstate(invalid="ignore"):
            fits = allowed[:, open_] & (problem.spend[:, open_] <= left.budget)
            fits &= (left.per_arm >= 1)[:, None]
            fits &= np.all(problem.guard[:, :, open_] <= left.guard[:, None, None], axis=0)
        has = fits.any(axis=0)
        open_, fits = open_[has], fits[:, has]
        if open_.size == 0:
            break
        best = np.argmax(np.where(fits, rank[:, open_], -np.inf), axis=0)
        ranked = np.argsort(-rank[best, open_], kind="stable")
        open_, best = open_[ranked], best[ranked]
        spend, one_hot, guard = _usage_table(problem, best, open_)
        take = _longest_fitting_prefix(spend, one_hot, guard, left)
        chosen[open_[:take]] = best[:take]
        with np.errstate(over="ignore", invalid="ignore"):
            left = _Left(budget=left.budget - spend[:take].sum(), contacts=left.contacts - take,
                         per_arm=left.per_arm - one_hot[:take].sum(axis=0),
                         guard=left.guard - guard[:take].sum(axis=0))
        open_ = open_[take:]
    return chosen
