import pytest

from experiments.stats.decision import DecisionAction, MetricEvidence, decide
from experiments.stats.srm import srm_check

SIZES = {"control": 5000, "B": 5000, "C": 5000}
PLAN = {"control": 8000, "B": 8000, "C": 8000}


def primary(arm, effect, p_value, increase_is_good=True, metric="revenue"):
    return MetricEvidence(metric, arm, "primary", increase_is_good, effect, effect / 10, p_value)


def guardrail(arm, effect, p_value, increase_is_good=False, metric="unsubscribe_rate"):
    return MetricEvidence(
        metric, arm, "guardrail", increase_is_good, effect, effect / 0.01, p_value
    )


def run(evidence, **overrides):
    arguments = dict(
        control="control",
        treatments=["B", "C"],
        evidence=evidence,
        sample_sizes=SIZES,
        required_sample_sizes=PLAN,
    )
    arguments.update(overrides)
    return decide(**arguments)


def test_a_significant_primary_improvement_ships_the_arm():
    decision = run([primary("B", 0.5, 0.01), primary("C", 0.1, 0.4)])
    assert decision.action is DecisionAction.SHIP
    assert decision.arm == "B"
    assert "improves primary metric 'revenue' by +5.00%" in decision.reasons[0]


def test_among_several_winners_the_largest_gain_ships():
    decision = run([primary("B", 0.5, 0.01), primary("C", 0.8, 0.001)])
    assert (decision.action, decision.arm) == (DecisionAction.SHIP, "C")


def test_a_decrease_is_a_win_when_lower_is_better():
    decision = run([primary("B", -2.0, 0.001, increase_is_good=False, metric="cost_per_order")])
    assert (decision.action, decision.arm) == (DecisionAction.SHIP, "B")


def test_a_sample_ratio_mismatch_stops_even_a_winning_experiment():
    srm = srm_check({"control": 5000, "B": 5400, "C": 5000}, {"control": 1, "B": 1, "C": 1})
    decision = run([primary("B", 0.5, 0.0001)], srm=srm)
    assert decision.action is DecisionAction.STOP
    assert decision.arm is None
    assert "Sample ratio mismatch" in decision.reasons[0]


def test_too_few_customers_keeps_running():
    decision = run([primary("B", 0.5, 0.01)], sample_sizes={"control": 90, "B": 95, "C": 120})
    assert decision.action is DecisionAction.KEEP_RUNNING
    assert "['control', 'B']" in decision.reasons[0]


def test_a_harmed_guardrail_disqualifies_the_arm_and_stops_when_none_is_left():
    decision = run(
        [
            primary("B", 0.5, 0.01),
            primary("C", 0.4, 0.02),
            guardrail("B", 0.002, 0.01),
            guardrail("C", 0.003, 0.001),
        ]
    )
    assert decision.action is DecisionAction.STOP
    assert sum("harms guardrail 'unsubscribe_rate'" in reason for reason in decision.reasons) == 2


def test_another_arm_can_ship_when_one_harms_a_guardrail():
    decision = run([primary("B", 0.9, 0.001), primary("C", 0.4, 0.02), guardrail("B", 0.002, 0.01)])
    assert (decision.action, decision.arm) == (DecisionAction.SHIP, "C")
    assert "Arm 'B' significantly harms guardrail" in decision.reasons[0]


def test_a_significant_guardrail_move_in_the_good_direction_is_not_harm():
    decision = run([primary("B", 0.5, 0.01), guardrail("B", -0.002, 0.001)])
    assert (decision.action, decision.arm) == (DecisionAction.SHIP, "B")


def test_a_fixed_horizon_design_waits_for_its_planned_sample():
    decision = run([primary("B", 0.5, 0.001)], sequential=False)
    assert decision.action is DecisionAction.KEEP_RUNNING
    assert "control 5,000 of 8,000" in decision.reasons[0]


def test_a_fixed_horizon_design_ships_at_its_planned_sample():
    decision = run([primary("B", 0.5, 0.001)], sequential=False, sample_sizes=PLAN)
    assert (decision.action, decision.arm) == (DecisionAction.SHIP, "B")


def test_an_arm_worse_on_one_primary_metric_cannot_ship():
    decision = run(
        [
            primary("B", 0.5, 0.001),
            primary("B", -0.3, 0.01, metric="orders"),
            primary("C", 0.0, 0.9),
        ]
    )
    assert decision.action is DecisionAction.KEEP_RUNNING


def test_stop_when_every_arm_is_worse_than_control():
    decision = run([primary("B", -0.5, 0.001), primary("C", -0.2, 0.03)])
    assert decision.action is DecisionAction.STOP
    assert decision.reasons[-1] == "No arm beats control: stop and keep control."


def test_stop_without_a_winner_at_the_planned_sample():
    decision = run([primary("B", 0.1, 0.3), primary("C", -0.1, 0.5)], sample_sizes=PLAN)
    assert decision.action is DecisionAction.STOP
    assert "planned sample" in decision.reasons[0]


def test_keep_running_without_a_winner_before_the_planned_sample():
    decision = run([primary("B", 0.1, 0.3), primary("C", -0.1, 0.5)])
    assert decision.action is DecisionAction.KEEP_RUNNING


def test_an_undefined_p_value_is_never_significant():
    decision = run([primary("B", 0.5, float("nan"))], sample_sizes=PLAN)
    assert decision.action is DecisionAction.STOP


def test_the_decision_needs_a_primary_metric():
    with pytest.raises(ValueError, match="primary metric"):
        run([guardrail("B", 0.1, 0.5)])
