"""The held-out evaluation of a list on the demo, whose true effects are known."""

from datetime import UTC, datetime

import numpy as np
import pytest

from experiments.demo import demo_seed
from experiments.models import Experiment
from marketing.features import FeatureSpec
from modelling.explanations import covering_rule, rules_apply
from modelling.registry import held_out_ids_load
from modelling.scoring import score_chunk, score_plan
from modelling.targeting import targeting_list_create
from modelling.targeting_evaluation import _features_as_of_assignment
from modelling.training import uplift_model_train

pytestmark = pytest.mark.django_db
ANCHOR = datetime(2026, 10, 1, tzinfo=UTC)
ARMS = ["email", "email_discount"]


@pytest.fixture
def scored_demo(settings, tmp_path):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    demo_seed(customers=2_000, seed=5, anchor=ANCHOR)
    experiment = Experiment.objects.get(key="demo_spring")
    (version,) = uplift_model_train(experiment=experiment, estimators=["tarnet"], baselines=[],
                                    estimator_params={"tarnet": {"max_epochs": 5}})
    for chunk in score_plan(chunk_size=1_000):
        score_chunk(version=version, chunk=chunk, cutoff=ANCHOR)
    return experiment, version


def test_the_held_out_interval_covers_the_true_profit_of_the_policy(scored_demo):
    experiment, version = scored_demo
    assert "unsubscribes" in version.metrics["guardrails"]
    assert version.metrics["guardrails"]["unsubscribes"]["model"] is True
    target = targeting_list_create(campaign=experiment.campaign, cost_per_contact=0.15,
                                   value_per_conversion=45, budget=60.0,
                                   harm_prices={"unsubscribe": 8.0})
    evaluation = target.evaluation
    assert evaluation["available"], evaluation
    # The rows are the test split training kept aside: 20% of 2,000.
    assert evaluation["rows"] == version.rows_test == held_out_ids_load(version).size == 400
    assert evaluation["share"] == pytest.approx(400 / 2_000)
    assert evaluation["limits"]["budget"] == pytest.approx(60.0 * 0.2)
    policies = evaluation["policies"]
    assert set(policies) == {"uplift_policy", "everyone_email", "everyone_email_discount",
                             "random", "response_top", "rules", "no_one"}
    for name, entry in policies.items():
        assert entry["spend"] <= 12.0 + 1e-9, name  # the scaled budget binds everyone
        assert "true" in entry and "priced_profit" in entry and "revenue" in entry
    policy = policies["uplift_policy"]
    assert policy["contacts"] > 0
    assert policy["profit"]["low"] <= policy["true"]["profit"] <= policy["profit"]["high"]
    assert policies["random"]["contacts_by_arm"] == policy["contacts_by_arm"]
    assert policies["no_one"]["profit"]["value"] == 0.0 == policies["no_one"]["true"]["profit"]
    assert evaluation["response_baseline"] == "the uplift model's predicted control outcome"
    curves = evaluation["curves"]
    assert set(curves["arms"]) == {"email", "email_discount"}
    overall = curves["overall"]
    assert overall["contacts"][0] == 0 and overall["contacts"][-1] == 400
    assert np.all(np.asarray(overall["low"]) <= np.asarray(overall["high"]))


def test_the_rules_are_evaluated_at_the_same_budget_in_their_own_order(scored_demo):
    experiment, version = scored_demo
    target = targeting_list_create(campaign=experiment.campaign, cost_per_contact=0.15,
                                   value_per_conversion=45, budget=6.0)
    rules = target.evaluation["policies"]["rules"]
    # Every demo arm costs 0.15 a contact and nothing per conversion: the scaled budget,
    # 6 * 400 / 2,000 = 1.2, buys 8 contacts, taken by the leaves' mean profit.
    X, ids = _features_as_of_assignment(experiment, FeatureSpec.from_json(version.feature_spec),
                                        held_out_ids_load(version))
    action, leaf_profit = rules_apply(version.explanations, X)
    # the vectorised matching is the per-customer covering rule
    names = {r["text"]: r["action_name"] for r in version.explanations["rules"]["rules"]}
    for i in range(0, ids.size, 37):
        row = {str(k): (None if isinstance(v, float) and np.isnan(v) else v)
               for k, v in X.iloc[i].items()}
        expected = names[covering_rule(version.explanations, row)["text"]]
        assert expected == ("no contact" if action[i] < 0 else ARMS[action[i]])
    ranked = np.argsort(-leaf_profit, kind="stable")
    chosen = ranked[action[ranked] >= 0][:8]
    assert rules["contacts"] == chosen.size > 0
    assert rules["spend"] == pytest.approx(0.15 * chosen.size)
    assert rules["contacts_by_arm"] == {arm: int(np.sum(action[chosen] == k))
                                        for k, arm in enumerate(ARMS)}
    assert rules["profit"]["low"] <= rules["profit"]["value"] <= rules["profit"]["high"]
    truth = rules["true"]
    assert truth["profit"] == pytest.approx(truth["conversions"] * 45 - 0.15 * chosen.size)
