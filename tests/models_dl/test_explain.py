"""Uplift drivers, per-customer reasons and readable targeting rules (models_dl.explain)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from models_dl import make_estimator
from models_dl.explain import (
    UpliftDrivers,
    explain_customers,
    feature_groups,
    ig_baseline,
    policy_rules,
    uplift_drivers,
)
from models_dl.rules import _round_threshold

REGIONS = ["north", "south", "east", "west"]
# E|z - mean z| for z ~ N(0, 1) is sqrt(2 / pi) = 0.798, so a linear effect
# 0.4 * z has a mean absolute integrated gradient of 0.4 * 0.798 = 0.319
# against the mean baseline (IG of a linear function is slope * (x - x')).
LINEAR_IG = 0.4 * math.sqrt(2 / math.pi)


def two_arm_problem(n: int, seed: int):
    """Five N(0, 1) features and a 4-level region; control, arm 1, arm 2.

    Arm 1's effect depends on x0 and x3 only: 0.4 x0 - 0.4 x3.
    Arm 2's on x2 and region only: 0.4 x2 + 0.5 [north] - 0.5 [south].
    The outcome itself is driven by x1, x4 and region (east), which must not
    show up as uplift drivers.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    region = rng.choice(REGIONS, n)
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(5)])
    frame["region"] = region
    tau1 = 0.4 * x[:, 0] - 0.4 * x[:, 3]
    tau2 = 0.4 * x[:, 2] + 0.5 * (region == "north") - 0.5 * (region == "south")
    t = rng.integers(0, 3, n)
    y = (
        x[:, 1] + (region == "east") + 0.5 * x[:, 4]
        + np.where(t == 1, tau1, 0.0) + np.where(t == 2, tau2, 0.0)
        + 0.3 * rng.normal(size=n)
    )
    return frame, t, y


@pytest.fixture(scope="module")
def fitted():
    """A small TARNet (about 4 s on one thread) and 1 000 held-out rows."""
    X, t, y = two_arm_problem(3000, seed=0)
    held_out, _, _ = two_arm_problem(1000, seed=1)
    estimator = make_estimator(
        "tarnet", representation_layers=(64, 64), head_layers=(32,), max_epochs=60,
        patience=10, n_threads=1, random_state=0, device="cpu",
    ).fit(X, t, y)
    return estimator, held_out


# ------------------------------------------------------------- global drivers
def test_drivers_rank_the_two_effect_features_first_per_arm(fitted):
    estimator, held_out = fitted
    drivers = uplift_drivers(estimator, held_out, arm_names=["email", "discount"])
    assert drivers.method == "integrated_gradients"
    assert set(drivers.top("email", 2)) == {"x0", "x3"}
    assert set(drivers.top("discount", 2)) == {"x2", "region"}
    email = dict(drivers.ranking["email"])
    # the learned network is close to the linear truth: 0.319 each, ~0 for the rest
    assert email["x0"] == pytest.approx(LINEAR_IG, abs=0.06)
    assert email["x3"] == pytest.approx(LINEAR_IG, abs=0.06)
    assert max(email[f] for f in ("x1", "x2", "x4", "region")) < 0.08
    # region's effect is +0.5, -0.5, 0, 0 (mean 0): mean |effect - mean| = 0.25
    assert dict(drivers.ranking["discount"])["region"] == pytest.approx(0.25, abs=0.07)
    # the model-agnostic method agrees on the order
    shuffled = uplift_drivers(estimator, held_out, method="permutation", arm_names=["e", "d"])
    assert set(shuffled.top("e", 2)) == {"x0", "x3"}
    assert set(shuffled.top("d", 2)) == {"x2", "region"}


def test_a_categorical_counts_once_in_the_drivers(fitted):
    estimator, held_out = fitted
    groups = feature_groups(estimator.preprocessor_)
    # region is 4 one-hot columns plus "other" in the network input...
    assert dict(groups)["region"] == slice(5, 10)
    drivers = uplift_drivers(estimator, held_out)
    for ranking in drivers.ranking.values():
        # ...and one feature in the drivers, named as in the frame
        assert sorted(name for name, _ in ranking) == ["region", "x0", "x1", "x2", "x3", "x4"]


def test_permutation_drivers_work_for_any_predict_function():
    """Model-agnostic path, hand-checkable: u = 0.3 x0. Shuffling x0 changes u by
    0.3 (x0 - x0'), whose RMS is 0.3 * sqrt(2) = 0.424; shuffling x1 changes nothing."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 2))
    drivers = uplift_drivers(lambda A: 0.3 * np.asarray(A)[:, 0], X, random_state=0)
    assert drivers.method == "permutation"
    (ranking,) = drivers.ranking.values()
    assert ranking[0][0] == "x0"
    assert ranking[0][1] == pytest.approx(0.3 * math.sqrt(2), rel=0.03)
    assert ranking[1] == ("x1", 0.0)


def test_drivers_round_trip_through_json(fitted):
    estimator, held_out = fitted
    drivers = uplift_drivers(estimator, held_out.iloc[:200])
    data = json.loads(drivers.to_json())
    assert data["n_rows"] == 200 and set(data["ranking"]) == {"arm 1", "arm 2"}
    assert UpliftDrivers.from_json(drivers.to_json()) == drivers


# ------------------------------------------------------------ local reasons
def test_local_contributions_add_up_to_the_predicted_uplift(fitted):
    estimator, held_out = fitted
    rows = held_out.iloc[:40]
    explained = explain_customers(estimator, rows, background=held_out, top=3)
    predicted = estimator.predict(rows)
    assert len(explained) == 40 and all(len(per_arm) == 2 for per_arm in explained)
    for i, per_arm in enumerate(explained):
        for k, e in enumerate(per_arm):
            # the uplift reported is the estimator's own prediction
            assert e.uplift == predicted[i, k]
            assert len(e.contributions) == 3
            sizes = [abs(c.contribution) for c in e.contributions]
            assert sizes == sorted(sizes, reverse=True)
            # completeness: baseline + all contributions = prediction
            total = e.baseline_uplift + sum(c.contribution for c in e.contributions) + e.other
            assert total == pytest.approx(e.uplift, abs=1e-3)


def test_completeness_holds_for_an_ensemble_on_a_binary_outcome():
    """The attributed function must be exactly what predict computes: members'
    probabilities averaged, then differenced (one arm: predict returns (n,))."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(800, 3))
    t = rng.integers(0, 2, 800)
    y = (rng.random(800) < 1 / (1 + np.exp(-(X[:, 0] + t * X[:, 1])))).astype(float)
    estimator = make_estimator(
        "tarnet", representation_layers=(16,), head_layers=(16,), max_epochs=5,
        n_ensemble=2, n_threads=1, random_state=0, device="cpu",
    ).fit(X, t, y)
    explained = explain_customers(estimator, X[:30], background=X, top=1)
    predicted = estimator.predict(X[:30])
    for i, (e,) in enumerate(explained):
        assert e.uplift == predicted[i]
        total = e.baseline_uplift + e.contributions[0].contribution + e.other
        assert total == pytest.approx(e.uplift, abs=1e-3)


def test_local_reasons_name_the_features_and_their_values(fitted):
    """x0 = 2, x3 = -2 and average elsewhere: arm 1's uplift is about 0.4*2 + 0.4*2
    = 1.6 above the baseline, half from each, both pushing it up."""
    estimator, held_out = fitted
    customer = pd.DataFrame(
        {"x0": [2.0], "x1": [0.0], "x2": [0.0], "x3": [-2.0], "x4": [0.0], "region": ["west"]}
    )
    (per_arm,) = explain_customers(estimator, customer, background=held_out, top=2)
    email = per_arm[0]
    assert {c.feature: c.value for c in email.contributions} == {"x0": 2.0, "x3": -2.0}
    for c in email.contributions:
        assert c.contribution == pytest.approx(0.8, abs=0.2)
    stored = json.loads(json.dumps(email.to_dict()))
    assert stored["contributions"][0]["feature"] in {"x0", "x3"}


def test_a_stored_baseline_explains_one_customer_as_the_background_did(fitted):
    """The baseline row (a few floats) replaces the held-out rows it was the mean of."""
    estimator, held_out = fitted
    baseline = ig_baseline(estimator, held_out)
    assert baseline.shape == (5 + 5,)  # five numbers, four regions and "other"
    with_rows = explain_customers(estimator, held_out.iloc[[7]], background=held_out, top=6)
    with_row = explain_customers(estimator, held_out.iloc[[7]], baseline=baseline, top=6)
    for a, b in zip(with_rows[0], with_row[0], strict=True):
        assert b.baseline_uplift == pytest.approx(a.baseline_uplift, abs=1e-9)
        assert [c.contribution for c in b.contributions] == pytest.approx(
            [c.contribution for c in a.contributions], abs=1e-9)
    with pytest.raises(ValueError, match="baseline has 3 values"):
        explain_customers(estimator, held_out.iloc[[7]], baseline=baseline[:3])


# ------------------------------------------------------------ policy rules
def depth_two_policy(X: np.ndarray) -> np.ndarray:
    """Column 1 if x0 > 0.5 and x1 <= 0.3, column 0 if x0 > 0.5 and x1 > 0.3, else none."""
    return np.where(X[:, 0] > 0.5, np.where(X[:, 1] <= 0.3, 1, 0), -1)


def uplift_for(policy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-arm uplift whose best action is ``policy`` (gaps of 0.04, noise sd 0.002)."""
    table = {-1: (-0.02, -0.02), 0: (0.05, 0.01), 1: (0.01, 0.06)}
    uplift = np.array([table[a] for a in policy])
    return uplift + rng.normal(0, 0.002, uplift.shape)


def test_rules_recover_a_depth_two_policy_exactly():
    rng = np.random.default_rng(0)
    X = rng.random((4000, 4))
    truth = depth_two_policy(X)
    rules = policy_rules(X, uplift_for(truth, rng))
    assert np.array_equal(rules.predict(X), truth)
    fresh = rng.random((4000, 4))
    assert np.array_equal(rules.predict(fresh), depth_two_policy(fresh))
    assert sorted(rules.text) == [
        "x0 <= 0.5 -> no contact (" + f"{np.mean(truth == -1):.0%}" + " of customers)",
        "x0 > 0.5 and x1 <= 0.3 -> arm 2 (" + f"{np.mean(truth == 1):.0%}"
        + " of customers, +0.06 conversions each)",
        "x0 > 0.5 and x1 > 0.3 -> arm 1 (" + f"{np.mean(truth == 0):.0%}"
        + " of customers, +0.05 conversions each)",
    ]
    by_action = {rule.action: rule for rule in rules.rules}
    assert by_action[1].conditions == [
        {"feature": "x0", "op": ">", "value": 0.5}, {"feature": "x1", "op": "<=", "value": 0.3}
    ]
    assert by_action[1].share == pytest.approx(np.mean(truth == 1))
    assert by_action[1].mean_uplift == pytest.approx(0.06, abs=0.001)
    assert json.loads(rules.to_json())[0]["conditions"] == [
        {"feature": "x0", "op": "<=", "value": 0.5}
    ]


def test_value_share_is_one_for_a_tree_policy_and_below_one_otherwise():
    rng = np.random.default_rng(1)
    X = rng.random((4000, 3))
    uplift = uplift_for(depth_two_policy(X), rng)
    rules = policy_rules(X, uplift)
    assert rules.value_share(X, uplift) == pytest.approx(1.0)

    # a diagonal boundary (contact when x0 > x1) no depth-3 axis-aligned tree draws
    diagonal = X[:, 0] - X[:, 1]
    rules = policy_rules(X, diagonal)
    share = rules.value_share(X, diagonal)
    assert 0.8 < share < 1.0
    # against "contact everyone" the rules do better: that policy pays for x0 < x1
    assert rules.value_share(X, diagonal, reference_arm=0) > 1.0
    assert rules.value_share(X, diagonal[:, None], kind="profit") == pytest.approx(share)


def test_raising_one_arms_cost_switches_the_leaf_action():
    """Right of x0 = 0.5 the arms lift conversion by 0.05 and 0.04, left by 0.01 and 0.

    Free contacts: arm 1 is best on both sides (one rule). Arm 1 at 0.02 per
    contact: right, profits 0.05 - 0.02 = 0.03 < 0.04, so arm 2 wins; left,
    0.01 - 0.02 = -0.01 and 0, so nobody is contacted.
    """
    x0 = np.linspace(0.0, 1.0, 1001)
    X = np.column_stack([x0, np.zeros_like(x0)])
    right = x0 > 0.5
    uplift = np.where(right[:, None], [0.05, 0.04], [0.01, 0.0])

    free = policy_rules(X, uplift)
    assert np.all(free.predict(X) == 0)
    assert free.text == ["everyone -> arm 1 (100% of customers, +0.03 conversions each)"]

    costly = policy_rules(X, uplift, cost_per_contact=[0.02, 0.0], arm_names=["sms", "mail"])
    assert np.array_equal(costly.predict(X), np.where(right, 1, -1))
    mail = next(rule for rule in costly.rules if rule.action == 1)
    assert mail.mean_profit == pytest.approx(0.04)
    assert mail.text == "x0 > 0.5 -> mail (50% of customers, +0.04 conversions each, profit +0.04 each)"


def test_rules_read_categoricals_and_intervals_naturally():
    """Contact north customers with 20 < age <= 60: a category and a two-sided interval."""
    rng = np.random.default_rng(2)
    n = 3000
    frame = pd.DataFrame({"region": rng.choice(REGIONS, n), "age": rng.integers(18, 90, n)})
    target = (frame["region"] == "north") & (frame["age"] > 20) & (frame["age"] <= 60)
    uplift = np.where(target, 0.03, -0.01)
    rules = policy_rules(frame, uplift, min_leaf_share=0.001)
    assert np.array_equal(rules.predict(frame), np.where(target, 0, -1))
    contact = next(rule for rule in rules.rules if rule.action == 0)
    assert contact.text.startswith("region is north and age in (20, 60] -> arm 1")
    assert "region_" not in "\n".join(rules.text)


def test_neighbouring_intervals_with_the_same_action_read_as_one_rule():
    """The tree cuts at 0.6 first (the -0.5 step dominates the squared error),
    then at 0.3: (0.3, 0.6] and > 0.6 are both "no contact" and merge."""
    x0 = np.linspace(0.0, 1.0, 1001)
    X = x0[:, None]
    uplift = np.select([x0 <= 0.3, x0 <= 0.6], [0.05, -0.01], -0.5)
    rules = policy_rules(X, uplift)
    assert rules.text == [
        "x0 <= 0.3 -> arm 1 (30% of customers, +0.05 conversions each)",
        "x0 > 0.3 -> no contact (70% of customers)",
    ]
    assert np.array_equal(rules.predict(X), np.where(x0 <= 0.3, 0, -1))


def test_thresholds_are_the_roundest_number_that_moves_few_rows():
    gap = np.array([0.1, 0.4998, 0.5003, 0.9])
    assert _round_threshold(gap, 0.50005, 0.0) == (0.5, 1)
    assert _round_threshold(np.array([120.0, 137.2, 149.9, 160.0]), 143.55, 0.0) == (140.0, 0)
    assert _round_threshold(np.array([-0.31, 0.02]), -0.145, 0.0) == (0.0, 0)
    assert _round_threshold(np.array([0.30001, 0.30002]), 0.300015, 0.0) == (0.30001, 5)
    # values i / 999: 0.73917 sends i <= 738 (0.73874) left and 739 (0.73974) right;
    # 0.74 moves one row (i = 739), 0.7 moves 39 (i = 700..738): with a 0.5 % tolerance
    # 0.74 is taken, with none only a threshold in [0.73874, 0.73974) is, i.e. 0.739
    dense = np.arange(1000) / 999
    assert _round_threshold(dense, 0.73917, 0.005) == (0.74, 2)
    assert _round_threshold(dense, 0.73917, 0.0) == (0.739, 3)
