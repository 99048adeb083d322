"""Turning predicted uplift into a contact decision: which arm, for whom, within limits.

Economics. For customer ``i`` and treatment arm ``k`` (columns 0..K-1 of the
effect table; control is not a column), contacting earns in expectation

    profit_ik = uplift_ik * value_per_conversion
                - cost_per_contact_k
                - conversion_cost_k * treated_outcome_ik
                - sum_g guardrail_price_g * guardrail_uplift_ikg

``uplift_ik`` is the predicted change in conversion probability (or in
revenue with ``value_per_conversion = 1``) of arm ``k`` against control.
``conversion_cost_k`` is paid on every conversion in arm ``k`` (a coupon's
margin), including those that would have happened anyway, hence it is
weighted by ``treated_outcome_ik``, the predicted conversion probability
under the arm, not by the uplift. The guardrail term prices predicted harm
(``guardrail_uplift_ikg``: extra unsubscribes, complaints, ... caused by the
contact, in events per customer) at ``guardrail_price_g`` money per event.

Decision. Each customer gets the arm with the highest positive profit, or
no contact when no arm is expected to pay (``profit_ik <= 0`` for every
``k``: such a customer is never contacted, whatever the limits).

Limits. Money spent, counted per chosen option as

    spend_ik = cost_per_contact_k + conversion_cost_k * treated_outcome_ik

(the contact cost plus the expected conversion cost; the guardrail price is
not money spent and does not count), must total at most ``budget``; at most
``max_contacts`` customers; at most ``arm_capacity[k]`` in arm ``k``; and
the expected extra guardrail events ``sum guardrail_uplift_ikg`` over the
list at most ``guardrail_cap[g]``. With unequal costs or several limits this
is a multiple-choice knapsack, solved near-optimally by
:mod:`.policy_knapsack` (Lagrangian prices, then repair and greedy fill).
With one arm, equal costs and only a budget or a count it reduces to
"contact the most profitable customers first", which it then returns exactly.

Wiring. Pass the champion model's per-arm effects (``predict``, ``(n, K)``)
as ``uplift`` and, for conversion costs, its per-arm outcome predictions
(``predict_outcomes(X)[:, 1:]``) as ``treated_outcome``. The returned
``arm`` is what :func:`models_dl.policy_evaluation.policy_value` takes to
evaluate the list on an experiment's held-out rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .policy_knapsack import KnapsackProblem, knapsack_select


@dataclass(frozen=True)
class TargetingDecision:
    """The contact list and what it is expected to cost and earn.

    ``order``: indices of the selected customers, most profitable first;
    ``expected_profit``: their ``profit_ik`` in the chosen arm, same order;
    ``total_cost``: the spend counted against the budget (see the module
    docstring); ``curve_contacts`` / ``curve_profit``: cumulative expected
    profit when customers are taken in order of their best-arm profit,
    ignoring the limits (at most ``curve_points`` points). ``arm``: per
    customer, the chosen treatment column 0..K-1 or -1 for no contact;
    ``profit_by_arm``: ``(n, K)`` table of ``profit_ik``; ``contacts_by_arm``:
    ``(K,)`` counts; ``guardrail_total``: ``(G,)`` expected extra guardrail
    events of the list.
    """

    order: np.ndarray
    expected_profit: np.ndarray
    total_cost: float
    total_expected_profit: float
    curve_contacts: np.ndarray
    curve_profit: np.ndarray
    arm: np.ndarray
    profit_by_arm: np.ndarray
    contacts_by_arm: np.ndarray
    guardrail_total: np.ndarray


def targeting_select(
    uplift: np.ndarray, *, value_per_conversion: float, cost_per_contact: float | np.ndarray,
    budget: float | None = None, max_contacts: int | None = None,
    conversion_cost: float | np.ndarray = 0.0, treated_outcome: np.ndarray | None = None,
    arm_capacity: np.ndarray | None = None, guardrail_uplift: np.ndarray | None = None,
    guardrail_price: np.ndarray | None = None, guardrail_cap: np.ndarray | None = None,
    curve_points: int = 101,
) -> TargetingDecision:
    """Choose whom to contact and with which arm; see the module docstring for the rule.

    Shapes: ``uplift`` ``(n,)`` (one arm) or ``(n, K)``; ``cost_per_contact``
    and ``conversion_cost`` a number or ``(K,)``; ``treated_outcome``
    ``(n, K)`` (needed when any ``conversion_cost`` is non-zero);
    ``arm_capacity`` ``(K,)`` (``inf`` = no limit for that arm);
    ``guardrail_uplift`` ``(n, K, G)`` (or ``(n, G)`` with one arm);
    ``guardrail_price`` and ``guardrail_cap`` ``(G,)`` (``inf`` = no cap).
    ``budget``/``max_contacts`` ``None`` mean no limit. Raises ValueError,
    naming the argument, for wrong shapes, negative or non-finite inputs.
    """
    table = _inputs(uplift, value_per_conversion, cost_per_contact, conversion_cost,
                    treated_outcome, guardrail_uplift, guardrail_price)
    n, n_arms = table.profit.shape
    caps = _caps(budget, max_contacts, arm_capacity, guardrail_cap, n_arms,
                 table.guard.shape[2])
    arm = knapsack_select(KnapsackProblem(
        profit=np.ascontiguousarray(table.profit.T), spend=np.ascontiguousarray(table.spend.T),
        guard=np.ascontiguousarray(table.guard.transpose(2, 1, 0)), budget=caps[0],
        max_contacts=caps[1], arm_capacity=caps[2], guardrail_cap=caps[3]))

    chosen = np.flatnonzero(arm >= 0)
    chosen_profit = table.profit[chosen, arm[chosen]]
    ranked = np.argsort(-chosen_profit, kind="stable")
    order, expected_profit = chosen[ranked], chosen_profit[ranked]

    best_profit = table.profit.max(axis=1) if n_arms else np.zeros(n)
    with np.errstate(over="ignore", invalid="ignore"):
        cumulative = np.concatenate([[0.0], np.cumsum(np.sort(best_profit)[::-1])])
    if not isinstance(curve_points, int | np.integer) or curve_points < 2:
        raise ValueError("curve_points must be an integer >= 2")
    points = np.unique(np.linspace(0, n, min(curve_points, n + 1)).astype(int))
    with np.errstate(over="ignore", invalid="ignore"):
        total_cost = float(table.spend[order, arm[order]].sum())
        total_profit = float(expected_profit.sum())
    if not (np.isfinite(total_cost) and np.isfinite(total_profit)
            and np.all(np.isfinite(cumulative[points]))):
        raise ValueError("the list's total cost or expected profit overflows: "
                         "value_per_conversion or a cost is too large to represent")
    return TargetingDecision(
        order=order, expected_profit=expected_profit,
        total_cost=total_cost, total_expected_profit=total_profit,
        curve_contacts=points, curve_profit=cumulative[points],
        arm=arm, profit_by_arm=table.profit,
        contacts_by_arm=np.bincount(arm[chosen], minlength=n_arms),
        guardrail_total=table.guard[order, arm[order]].sum(axis=0),
    )


def profit_table(
    uplift: np.ndarray, *, value_per_conversion: float, cost_per_contact: float | np.ndarray,
    conversion_cost: float | np.ndarray = 0.0, treated_outcome: np.ndarray | None = None,
    guardrail_uplift: np.ndarray | None = None, guardrail_price: np.ndarray | None = None,
) -> np.ndarray:
    """``(n, K)`` table of ``profit_ik`` (module docstring), what :func:`targeting_select` ranks.

    Exposed so that anything else turning predictions into an arm (the
    targeting rules, a customer's explanation) uses the same formula.
    """
    return _inputs(uplift, value_per_conversion, cost_per_contact, conversion_cost,
                   treated_outcome, guardrail_uplift, guardrail_price).profit


@dataclass(frozen=True)
class _Table:
    profit: np.ndarray  # (n, K)
    spend: np.ndarray  # (n, K)
    guard: np.ndarray  # (n, K, G)


def _inputs(uplift, value, cost, conversion_cost, treated_outcome, guardrail_uplift,
            guardrail_price) -> _Table:
    uplift = _finite_array("uplift", uplift)
    if uplift.ndim not in (1, 2):
        raise ValueError(f"uplift must have shape (n,) or (n, K), got {uplift.shape}")
    one_arm = uplift.ndim == 1
    uplift = uplift[:, None] if one_arm else uplift
    n, n_arms = uplift.shape
    value = _non_negative_number("value_per_conversion", value)
    cost = _per_arm("cost_per_contact", cost, n_arms)
    conversion_cost = _per_arm("conversion_cost", conversion_cost, n_arms)
    if treated_outcome is None:
        if np.any(conversion_cost != 0):
            raise ValueError("treated_outcome is required when conversion_cost is non-zero: "
                             "the expected conversion cost is conversion_cost * treated_outcome")
        treated_outcome = np.zeros((n, n_arms))
    treated_outcome = _finite_array("treated_outcome", treated_outcome)
    if one_arm and treated_outcome.shape == (n,):
        treated_outcome = treated_outcome[:, None]
    if treated_outcome.shape != (n, n_arms):
        raise ValueError(f"treated_outcome must have shape {(n, n_arms)}, "
                         f"got {treated_outcome.shape}")
    if np.any(treated_outcome < 0):
        raise ValueError("treated_outcome must be non-negative (a conversion probability)")

    if guardrail_uplift is None:
        if guardrail_price is not None:
            raise ValueError("guardrail_price needs guardrail_uplift")
        guard = np.zeros((n, n_arms, 0))
    else:
        guard = _finite_array("guardrail_uplift", guardrail_uplift)
        if one_arm and guard.ndim == 2:
            guard = guard[:, None, :]
        if guard.ndim != 3 or guard.shape[:2] != (n, n_arms):
            raise ValueError(f"guardrail_uplift must have shape {(n, n_arms)} + (G,), "
                             f"got {guard.shape}")
    n_guard = guard.shape[2]
    price = (np.zeros(n_guard) if guardrail_price is None
             else _finite_array("guardrail_price", guardrail_price).reshape(-1))
    if price.shape != (n_guard,) or np.any(price < 0):
        raise ValueError(f"guardrail_price must be {n_guard} non-negative numbers")

    with np.errstate(over="ignore", invalid="ignore"):
        spend = cost + conversion_cost * treated_outcome
        profit = uplift * value - spend - guard @ price
    if not np.all(np.isfinite(spend)):
        raise ValueError("cost_per_contact + conversion_cost * treated_outcome overflows")
    if not np.all(np.isfinite(profit)):
        raise ValueError("expected profit overflows: uplift * value_per_conversion or a cost "
                         "is too large to represent")
    return _Table(profit=profit, spend=spend, guard=guard)


def _caps(budget, max_contacts, arm_capacity, guardrail_cap, n_arms: int, n_guard: int
          ) -> tuple[float, float, np.ndarray, np.ndarray]:
    budget = np.inf if budget is None else _non_negative_number("budget", budget, allow_inf=True)
    if max_contacts is None:
        contacts = np.inf
    else:
        contacts = _non_negative_number("max_contacts", max_contacts, allow_inf=True)
        contacts = np.floor(contacts)
    capacity = (np.full(n_arms, np.inf) if arm_capacity is None
                else _per_arm("arm_capacity", arm_capacity, n_arms, allow_inf=True))
    if guardrail_cap is None:
        guard_cap = np.full(n_guard, np.inf)
    else:
        try:
            guard_cap = np.asarray(guardrail_cap, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            guard_cap = np.full(0, np.nan)  # refused just below
        if guard_cap.shape != (n_guard,) or np.any(np.isnan(guard_cap)) or np.any(guard_cap < 0):
            raise ValueError(f"guardrail_cap must be {n_guard} non-negative numbers "
                             "(one per guardrail_uplift column; inf = no cap)")
    return float(budget), float(contacts), np.floor(capacity), guard_cap


def _finite_array(name: str, values) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as error:  # a Python int beyond float64
        raise ValueError(f"{name} must be numeric and representable as a float") from error
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array


def _non_negative_number(name: str, value, allow_inf: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{name} must be a number") from error
    if np.isnan(number) or number < 0 or (np.isinf(number) and not allow_inf):
        raise ValueError(f"{name} must be a non-negative {'' if allow_inf else 'finite '}number")
    return number


def _per_arm(name: str, value, n_arms: int, allow_inf: bool = False) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as error:  # a Python int beyond float64
        raise ValueError(f"{name} must be a number or K numbers") from error
    if array.ndim == 0:
        array = np.full(n_arms, float(array))
    if array.shape != (n_arms,):
        raise ValueError(f"{name} must be a number or have length K={n_arms}")
    if np.any(np.isnan(array)) or np.any(array < 0) or (
            not allow_inf and not np.all(np.isfinite(array))):
        raise ValueError(f"{name} must be non-negative and {'not NaN' if allow_inf else 'finite'}")
    return array
