"""The held-out evaluation of a list on the demo, whose true effects are known."""

from datetime import UTC, datetime

import numpy as np
import pytest

from experiments.demo import demo_seed
from experiments.models import Experiment
from modelling.registry import held_out_ids_load
from modelling.scoring import score_chunk, score_plan
from modelling.targeting import targeting_list_create
from modelling.training import uplift_model_train

pytestmark = pytest.mark.django_db
ANCHOR = datetime(2026, 10, 1, tzinfo=UTC)


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
                             "random", "response_top", "no_one"}
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
