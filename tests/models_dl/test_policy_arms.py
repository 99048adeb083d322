"""Several arms, per-arm costs, guardrails and limits: hand cases and an exact solver."""

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from models_dl.policy import targeting_select


def test_per_arm_costs_change_the_chosen_arm():
    uplift = np.array([[0.10, 0.12]])  # arm 1 has the larger effect: 1.2 vs 1.0 at value 10
    same_cost = targeting_select(uplift, value_per_conversion=10, cost_per_contact=0.1)
    assert same_cost.arm.tolist() == [1]
    assert same_cost.expected_profit == pytest.approx([1.1])
    dearer = targeting_select(uplift, value_per_conversion=10, cost_per_contact=[0.1, 0.5])
    assert dearer.arm.tolist() == [0]  # 1.0 - 0.1 = 0.9 > 1.2 - 0.5 = 0.7
    assert dearer.profit_by_arm[0] == pytest.approx([0.9, 0.7])
    # a coupon costing 2 per conversion at 30% conversion: 1.2 - 0.1 - 0.6 = 0.5 < 0.9
    coupon = targeting_select(uplift, value_per_conversion=10, cost_per_contact=0.1,
                              conversion_cost=[0.0, 2.0], treated_outcome=[[0.3, 0.3]])
    assert coupon.arm.tolist() == [0]
    assert coupon.profit_by_arm[0] == pytest.approx([0.9, 0.5])


def test_spend_counts_contact_and_expected_conversion_costs():
    uplift = np.array([[0.2, 0.2], [0.2, 0.3]])
    decision = targeting_select(uplift, value_per_conversion=10, cost_per_contact=[1.0, 0.5],
                                conversion_cost=[0.0, 1.0], treated_outcome=[[0.4, 0.5]] * 2)
    # profits [[1, 1], [1, 2]]: customer 0 ties -> first arm (spend 1), customer 1 -> arm 1
    # (spend 0.5 + 1 * 0.5 = 1.0)
    assert decision.arm.tolist() == [0, 1]
    assert decision.total_cost == pytest.approx(2.0)
    assert decision.order.tolist() == [1, 0]
    assert decision.contacts_by_arm.tolist() == [1, 1]


def test_a_guardrail_price_removes_a_customer():
    uplift = np.array([0.05, 0.05])  # profit 0.5 - 0.1 = 0.4 each
    unsubscribes = np.array([[0.0], [0.02]])
    unpriced = targeting_select(uplift, value_per_conversion=10, cost_per_contact=0.1,
                                guardrail_uplift=unsubscribes)
    assert unpriced.order.tolist() == [0, 1]
    priced = targeting_select(uplift, value_per_conversion=10, cost_per_contact=0.1,
                              guardrail_uplift=unsubscribes, guardrail_price=[25.0])
    assert priced.order.tolist() == [0]  # 0.4 - 25 * 0.02 = -0.1
    assert priced.guardrail_total == pytest.approx([0.0])


def test_a_customer_with_negative_priced_profit_is_never_chosen():
    # B would free room under the guardrail cap for A, but B loses money in every arm
    uplift = np.array([[0.2, 0.2], [0.001, 0.0]])
    harm = np.array([[[0.1], [0.1]], [[-0.1], [-0.2]]])
    decision = targeting_select(uplift, value_per_conversion=10, cost_per_contact=1.0,
                                guardrail_uplift=harm, guardrail_cap=[0.05])
    assert decision.arm.tolist() == [-1, -1]
    free = targeting_select(uplift, value_per_conversion=10, cost_per_contact=1.0,
                            guardrail_uplift=harm, guardrail_cap=[0.15])
    assert free.arm.tolist() == [0, -1]


def test_arm_capacity_moves_customers_to_their_next_best_arm():
    uplift = np.array([[0.3, 0.2], [0.3, 0.1], [0.3, 0.25]])
    decision = targeting_select(uplift, value_per_conversion=10, cost_per_contact=1.0,
                                arm_capacity=[1, 5])
    # profits [[2, 1], [2, 0], [2, 1.5]]: arm 0 for customer 1 (loses least elsewhere)
    assert decision.arm.tolist() == [1, 0, 1]
    assert decision.total_expected_profit == pytest.approx(1 + 2 + 1.5)


def test_extreme_magnitudes_do_not_overflow():
    tiny_costs = targeting_select(np.ones(3), value_per_conversion=1, cost_per_contact=1e-308,
                                  budget=1e308)
    assert tiny_costs.order.size == 3
    huge_costs = targeting_select(np.full(3, 1.5), value_per_conversion=1e308,
                                  cost_per_contact=1e308, budget=1e308)
    assert huge_costs.order.size == 1 and huge_costs.total_cost == 1e308


def test_empty_lists_and_zero_limits():
    empty = targeting_select(np.zeros(0), value_per_conversion=1, cost_per_contact=1)
    assert empty.order.size == 0 and empty.curve_profit.tolist() == [0.0]
    profitable = np.ones((3, 2))  # profit 0.5 in each arm at cost 0.5
    assert targeting_select(profitable, value_per_conversion=1, cost_per_contact=0.5,
                            budget=0).arm.tolist() == [-1, -1, -1]
    assert targeting_select(profitable, value_per_conversion=1, cost_per_contact=0.0,
                            budget=0).arm.tolist() == [0, 0, 0]  # free contacts spend nothing
    capped = targeting_select(profitable, value_per_conversion=1, cost_per_contact=0.5,
                              guardrail_uplift=np.ones((3, 2, 1)), guardrail_cap=[2.5])
    assert capped.order.size == 2 and capped.guardrail_total == pytest.approx([2.0])


@pytest.mark.parametrize(("arguments", "name"), [
    (dict(cost_per_contact=[1.0, -1.0]), "cost_per_contact"),
    (dict(cost_per_contact=[1.0, 1.0, 1.0]), "cost_per_contact"),
    (dict(conversion_cost=1.0), "treated_outcome"),
    (dict(treated_outcome=np.zeros((3, 3))), "treated_outcome"),
    (dict(budget=float("nan")), "budget"),
    (dict(max_contacts=-1), "max_contacts"),
    (dict(arm_capacity=[1, -1]), "arm_capacity"),
    (dict(guardrail_uplift=np.zeros((4, 2, 1))), "guardrail_uplift"),
    (dict(guardrail_uplift=np.zeros((3, 2, 1)), guardrail_price=[-1.0]), "guardrail_price"),
    (dict(guardrail_uplift=np.zeros((3, 2, 1)), guardrail_cap=[1.0, 2.0]), "guardrail_cap"),
    (dict(value_per_conversion=float("inf")), "value_per_conversion"),
    (dict(value_per_conversion=1e308, uplift=np.full((3, 2), 1e308)), "overflows"),
])
def test_bad_inputs_name_the_argument(arguments, name):
    inputs = dict(uplift=np.zeros((3, 2)), value_per_conversion=1.0, cost_per_contact=1.0)
    inputs.update(arguments)
    with pytest.raises(ValueError, match=name):
        targeting_select(**inputs)


def _random_case(seed: int, n: int = 40, n_arms: int = 3):
    rng = np.random.default_rng(seed)
    treated_outcome = rng.uniform(0.05, 0.4, (n, n_arms))
    cost = rng.uniform(0.2, 1.5, n_arms)
    coupon = rng.uniform(0, 2, n_arms)
    spend = cost + coupon * treated_outcome
    return dict(
        uplift=rng.normal(0.03, 0.05, (n, n_arms)), value_per_conversion=40.0,
        cost_per_contact=cost, conversion_cost=coupon, treated_outcome=treated_outcome,
        guardrail_uplift=rng.normal(0.01, 0.02, (n, n_arms, 1)),
        guardrail_price=rng.uniform(0, 5, 1), guardrail_cap=rng.uniform(0.02, 0.15, 1),
        budget=rng.uniform(0.1, 0.5) * spend.mean() * n, max_contacts=int(rng.integers(5, 30)),
        arm_capacity=rng.integers(2, 15, n_arms).astype(float))


def _exact_optimum(case, profit, spend):
    """The same problem as a 0/1 program for scipy's MILP solver (HiGHS)."""
    n, n_arms = profit.shape
    guard = case["guardrail_uplift"]
    rows = [np.kron(np.eye(n), np.ones(n_arms)), spend.reshape(1, -1), np.ones((1, n * n_arms)),
            np.tile(np.eye(n_arms), n)] + [guard[:, :, g].reshape(1, -1)
                                           for g in range(guard.shape[2])]
    caps = np.r_[np.ones(n), case["budget"], case["max_contacts"], case["arm_capacity"],
                 case["guardrail_cap"]]
    result = milp(-profit.reshape(-1), constraints=LinearConstraint(np.vstack(rows), ub=caps),
                  integrality=np.ones(n * n_arms),
                  bounds=Bounds(0, (profit.reshape(-1) > 0).astype(float)))
    assert result.success
    return -result.fun


@pytest.mark.parametrize("seed", range(50))
def test_close_to_the_exact_optimum_and_within_every_limit(seed):
    case = _random_case(seed)
    decision = targeting_select(**case)
    spend = case["cost_per_contact"] + case["conversion_cost"] * case["treated_outcome"]
    profit = decision.profit_by_arm
    optimum = _exact_optimum(case, profit, spend)
    chosen = decision.order
    arm = decision.arm[chosen]
    assert decision.total_expected_profit >= optimum - profit.max() - 1e-9
    assert decision.total_expected_profit <= optimum + 1e-9
    assert np.all(profit[chosen, arm] > 0)
    assert spend[chosen, arm].sum() <= case["budget"] * (1 + 1e-12)
    assert chosen.size <= case["max_contacts"]
    assert np.all(np.bincount(arm, minlength=3) <= case["arm_capacity"])
    assert case["guardrail_uplift"][chosen, arm].sum(axis=0) <= case["guardrail_cap"] + 1e-12
