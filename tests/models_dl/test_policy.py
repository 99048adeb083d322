"""The targeting rule: profitable customers first, within budget and count."""

import numpy as np
import pytest

from models_dl.policy import targeting_select


def test_it_contacts_only_profitable_customers_best_first():
    uplift = np.array([0.01, 0.10, -0.05, 0.03, 0.002])
    decision = targeting_select(uplift, cost_per_contact=0.5, value_per_conversion=40)
    # profits: -0.1, 3.5, -2.5, 0.7, -0.42
    assert decision.order.tolist() == [1, 3]
    assert decision.expected_profit == pytest.approx([3.5, 0.7])
    assert decision.total_cost == 1.0 and decision.total_expected_profit == pytest.approx(4.2)


def test_budget_and_max_contacts_cap_the_list():
    uplift = np.linspace(0.2, 0.1, 11)
    assert targeting_select(uplift, cost_per_contact=1, value_per_conversion=20,
                            budget=4.5).order.size == 4
    assert targeting_select(uplift, cost_per_contact=1, value_per_conversion=20,
                            max_contacts=2).order.tolist() == [0, 1]


def test_the_profit_curve_peaks_where_the_list_ends():
    rng = np.random.default_rng(0)
    uplift = rng.normal(0.01, 0.03, 5_000)
    decision = targeting_select(uplift, cost_per_contact=0.3, value_per_conversion=30,
                                curve_points=5_001)
    best = decision.curve_contacts[np.argmax(decision.curve_profit)]
    assert best == decision.order.size
    assert decision.curve_profit.max() == pytest.approx(decision.total_expected_profit)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        targeting_select(np.zeros(3), cost_per_contact=-1, value_per_conversion=1)
    with pytest.raises(ValueError):
        targeting_select(np.zeros(3), cost_per_contact=1, value_per_conversion=1, budget=-5)


@pytest.mark.parametrize("arguments", [
    {"budget": 1e308, "cost_per_contact": 1e-308},
    {"budget": 1e-308, "cost_per_contact": 1e9, "value_per_conversion": 1e9},
    {"arm_capacity": [10**400, 1]},
    {"max_contacts": 10**400},
    {"guardrail_cap": [10**400]},
    {"cost_per_contact": [10**400, 1]},
    {"value_per_conversion": 10**400},
    {"value_per_conversion": 1.7e308, "cost_per_contact": 0.0},
])
def test_extreme_inputs_give_a_choice_or_a_value_error_never_an_overflow(arguments):
    rng = np.random.default_rng(0)
    uplift = rng.normal(0.02, 0.05, (500, 2))
    guard = rng.normal(0.0, 0.01, (500, 2, 1))
    kwargs = {"value_per_conversion": 45.0, "cost_per_contact": 0.05,
              "guardrail_uplift": guard, "guardrail_price": np.array([1.0]), **arguments}
    try:
        decision = targeting_select(uplift, **kwargs)
    except ValueError as error:
        assert str(error)  # a message naming what is wrong
        return
    assert np.isfinite(decision.total_cost) and np.isfinite(decision.total_expected_profit)
