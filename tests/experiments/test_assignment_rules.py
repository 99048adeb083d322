"""The one assignment decision, without a database: every rule, their order, the hash."""

import hashlib

import numpy as np
import pytest

from experiments.assignment_rules import (
    ExperimentState,
    Reason,
    assignment_decide,
    reason_text,
)
from experiments.hashing import (
    _units,
    choose_arm,
    choose_arms,
    in_traffic,
    in_traffic_many,
    unit_hash,
    unit_hashes,
)

R = Reason
# Salt "rules": u_traffic and u_arm of the ids used below (sha256, first 8 bytes / 2**64).
U_TRAFFIC = {"c0": 0.166, "c1": 0.396, "c2": 0.759, "c3": 0.857}
U_ARM = {"c0": 0.153, "c1": 0.345, "c2": 0.351, "c3": 0.039}


def state(**overrides) -> ExperimentState:
    fields = dict(status="running", running=True, salt="rules", traffic_fraction=0.5,
                  weights=(1.0, 1.0, 2.0), any_arm_contacts=True, segment_key="web",
                  layer="email")
    fields.update(overrides)
    return ExperimentState(**fields)


def decide(experiment: ExperimentState, customers: list[dict]):
    """Customers as dicts of their facts; the defaults pass every rule."""
    passes = dict(id="c0", consent=True, stored=-1, eligible=True, other=False)
    facts = [{**passes, **c} for c in customers]
    decided = assignment_decide(
        state=experiment, external_ids=[f["id"] for f in facts],
        consent=np.array([f["consent"] for f in facts]),
        stored_arm=np.array([f["stored"] for f in facts]),
        eligible=np.array([f["eligible"] for f in facts]),
        other_layer=np.array([f["other"] for f in facts]))
    return decided.arm.tolist(), [Reason(r) for r in decided.reason]


def test_the_documented_draws_of_the_ids_used_here():
    for customer_id, u in U_TRAFFIC.items():
        assert unit_hash("rules", "traffic", customer_id) == pytest.approx(u, abs=5e-4)
    for customer_id, u in U_ARM.items():
        assert unit_hash("rules", "arm", customer_id) == pytest.approx(u, abs=5e-4)


def test_each_rule_says_no_on_its_own():
    arms, reasons = decide(state(), [
        {},                                # passes all: u_arm 0.153 * 4 = 0.61 < 1 -> arm 0
        {"stored": 2},                     # stored arm 2 wins
        {"eligible": False},
        {"id": "c2"},                      # u_traffic 0.759 >= 0.5
        {"other": True},
        {"consent": False},
    ])
    assert reasons == [R.ASSIGNED, R.ALREADY_ASSIGNED, R.NOT_ELIGIBLE, R.OUTSIDE_TRAFFIC,
                       R.OTHER_LAYER, R.NO_CONSENT]
    assert arms == [0, 2, -1, -1, -1, -1]


def test_a_stopped_experiment_assigns_nobody_new_but_stored_arms_still_answer():
    arms, reasons = decide(state(status="stopped", running=False), [{}, {"stored": 1}])
    assert reasons == [R.NOT_RUNNING, R.ALREADY_ASSIGNED]
    assert arms == [-1, 1]


def test_the_first_rule_that_fails_gives_the_reason():
    # Each customer fails the named rule and every later one.
    arms, reasons = decide(state(), [
        {"stored": 0, "eligible": False, "id": "c2", "other": True, "consent": False},
        {"eligible": False, "id": "c2", "other": True, "consent": False},
        {"id": "c2", "other": True, "consent": False},
        {"other": True, "consent": False},
    ])
    assert reasons == [R.ALREADY_ASSIGNED, R.NOT_ELIGIBLE, R.OUTSIDE_TRAFFIC, R.OTHER_LAYER]
    assert arms == [0, -1, -1, -1]
    not_running = state(status="draft", running=False)
    assert decide(not_running, [{"eligible": False, "id": "c2"}])[1] == [R.NOT_RUNNING]


def test_consent_matters_only_when_an_arm_contacts_the_customer():
    # c1: u_arm 0.345 * 4 = 1.38 -> second arm (cumulative 1, 2, 4).
    arms, reasons = decide(state(any_arm_contacts=False), [{"id": "c1", "consent": False}])
    assert (arms, reasons) == ([1], [R.ASSIGNED])


def test_the_traffic_fraction_is_a_threshold_on_u_traffic():
    # u_traffic: c0 0.166, c1 0.396, c2 0.759, c3 0.857.
    customers = [{"id": i} for i in ("c0", "c1", "c2", "c3")]
    for fraction, inside in [(0.0, 0), (0.2, 1), (0.4, 2), (0.8, 3), (1.0, 4)]:
        _, reasons = decide(state(traffic_fraction=fraction), customers)
        assert reasons.count(R.ASSIGNED) == inside


def test_the_arm_is_choose_arm_and_weights_decide_it():
    # u_arm: c0 0.153, c1 0.345, c2 0.351, c3 0.039; cumulative boundaries at 1/4 and 2/4.
    customers = [{"id": i} for i in ("c0", "c1", "c2", "c3")]
    arms, _ = decide(state(traffic_fraction=1.0), customers)
    assert arms == [0, 1, 1, 0]
    arms, _ = decide(state(traffic_fraction=1.0, weights=(0.0, 1.0)), customers)
    assert arms == [1, 1, 1, 1]
    assert arms == [choose_arm("rules", c["id"], [0.0, 1.0]) for c in customers]


def test_arm_weights_are_only_checked_when_someone_reaches_the_arm_choice():
    nobody = decide(state(weights=(0.0, 0.0)), [{"consent": False}, {"stored": 1}])
    assert nobody == ([-1, 1], [R.NO_CONSENT, R.ALREADY_ASSIGNED])
    with pytest.raises(ValueError, match="positive sum"):
        decide(state(weights=(0.0, 0.0)), [{}])


def test_an_empty_list_decides_nothing():
    assert decide(state(), []) == ([], [])


def test_every_reason_has_its_words_in_one_place():
    s = state(status="stopped", segment_key="web", layer="email")
    words = {r: reason_text(r, s, other_experiment="spring") for r in Reason}
    assert words == {
        R.ASSIGNED: "assigned",
        R.ALREADY_ASSIGNED: "already assigned",
        R.NOT_RUNNING: "experiment is stopped, not running",
        R.NOT_ELIGIBLE: "not in eligibility segment web",
        R.OUTSIDE_TRAFFIC: "outside the experiment's traffic sample",
        R.OTHER_LAYER: "already in experiment spring of layer email",
        R.NO_CONSENT: "no marketing consent",
    }


def test_the_vectorised_hash_gives_exactly_unit_hash():
    ids = [f"crm-{i}" for i in range(20_000)] + ["", "ÿ-ünïcode", "a:b:c", "x" * 300]
    for purpose in ("traffic", "arm"):
        assert unit_hashes("s1", purpose, ids).tolist() == [unit_hash("s1", purpose, e)
                                                            for e in ids]
    assert in_traffic_many("s1", ids, 0.3).tolist() == [in_traffic("s1", e, 0.3) for e in ids]
    for weights in ([1, 1], [2.0, 1.0, 1.0], [1, 0, 1], [0.1, 0.2, 0.3, 0.4]):
        assert choose_arms("s1", ids, weights).tolist() == [choose_arm("s1", e, weights)
                                                            for e in ids]
    assert unit_hashes("s1", "arm", []).shape == (0,)


def test_the_uint64_to_float_step_rounds_as_python_does():
    # Around 2**53 and 2**64 a float cannot hold every integer: both sides must round alike
    # (2**64 - 1 rounds up to 2**64, so u is 1.0 there).
    values = [0, 1, 2**53 + 1, 2**53 + 3, 2**63 - 1, 2**63 + 1025, 2**63 + 3 * 1024,
              2**64 - 2048, 2**64 - 1025, 2**64 - 1024, 2**64 - 1]
    prefixes = b"".join(v.to_bytes(8, "big") for v in values)
    assert _units(prefixes).tolist() == [v / 2**64 for v in values]
    assert _units(prefixes)[-1] == 1.0
    digest = hashlib.sha256(b"s1:arm:crm-7").digest()
    assert _units(digest[:8])[0] == unit_hash("s1", "arm", "crm-7")
