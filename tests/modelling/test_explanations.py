"""Explanations stored with a trained version, and why one customer gets their arm."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from django.core.exceptions import ValidationError

from experiments.demo import demo_seed
from experiments.models import Experiment
from marketing.features import FeatureSpec
from marketing.models import Customer
from marketing.privacy import customer_erase
from modelling.economics import arm_profit, economics_build
from modelling.explanations import (
    SAMPLE_ROWS,
    covering_rule,
    customer_explanation,
    explanation_sample,
    model_version_explain,
)
from modelling.models import CustomerScore
from modelling.registry import artifact_load
from modelling.scoring import score_chunk, score_plan
from modelling.training import feature_spec_for, training_data_build, uplift_model_train
from models_dl.rules import policy_rules

pytestmark = pytest.mark.django_db
FAST = {"max_epochs": 4, "patience": 2, "batch_size": 256}
ANCHOR = datetime(2026, 10, 1, tzinfo=UTC)
ARMS = ["email", "email_discount"]


@pytest.fixture
def trained(settings, tmp_path):
    """The 1,500-customer demo, a TARNet trained on it (champion), every customer scored."""
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    demo_seed(customers=1_500, seed=5, anchor=ANCHOR)
    experiment = Experiment.objects.get(key="demo_spring")
    (version,) = uplift_model_train(experiment=experiment, estimators=["tarnet"], baselines=[],
                                    estimator_params={"tarnet": FAST})
    assert version.is_champion, version.status_reason
    for chunk in score_plan(chunk_size=1_000):
        score_chunk(version=version, chunk=chunk, cutoff=ANCHOR)
    return version


def test_the_sample_is_at_most_the_limit_and_repeatable():
    assert explanation_sample(300).tolist() == list(range(300))
    drawn = explanation_sample(10_000, seed=3)
    assert drawn.size == SAMPLE_ROWS == len(set(drawn.tolist()))
    assert np.all(np.diff(drawn) > 0) and drawn.tolist() == explanation_sample(10_000, seed=3).tolist()


def test_a_trained_version_stores_drivers_per_arm_and_rules_at_the_campaigns_costs(trained):
    e = trained.explanations
    spec_names = FeatureSpec.from_json(trained.feature_spec)
    columns = list(spec_names.attributes) + spec_names.behaviour_columns
    assert e["method"] == "integrated_gradients"
    assert e["n_rows"] == trained.rows_test == 300  # the held-out rows, all of them
    assert e["arm_names"] == ARMS
    for arm in ARMS:
        ranking = e["drivers"]["ranking"][arm]
        # every feature of the spec once, by its name (region's one-hot columns count once)
        assert sorted(name for name, _ in ranking) == sorted(columns)
        sizes = [size for _, size in ranking]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0
    assert len(e["baseline"]) > len(columns)  # network inputs: one-hot and missing flags
    assert (e["labels"]["purchases_90d"], e["labels"]["days_since_email_open"]) == (
        "purchases in the last 90 days", "days since the last e-mail open")
    rules = e["rules"]
    assert (rules["cost_per_contact"], rules["value_per_conversion"]) == (0.15, 45.0)
    assert 1 <= len(rules["text"]) <= 8 == 2 ** 3  # depth 3: at most 8 leaves
    assert all(" -> " in line for line in rules["text"])
    assert sum(r["share"] for r in rules["rules"]) == pytest.approx(1.0)
    assert {r["action_name"] for r in rules["rules"]} <= {"no contact", *ARMS}
    # readable names, not column names
    assert not any("_" in c["feature"] for r in rules["rules"] for c in r["conditions"]
                   if c["feature"] not in ARMS)
    predicted = rules["value_share"]["predicted"]
    assert 0 < predicted["share"] <= 1 + 1e-9  # the rules never beat the policy they summarise
    assert predicted["rules_per_customer"] == pytest.approx(
        predicted["share"] * predicted["model_per_customer"])
    assert set(rules["value_share"]["true"]) == set(predicted)  # the demo stores true effects


def test_the_rules_follow_the_campaigns_cost(trained):
    data = training_data_build(trained.experiment, trained.experiment.metrics.get(
        name=trained.target_metric), feature_spec_for(trained.experiment))
    estimator, rows = artifact_load(trained), data.X.iloc[:600]
    campaign = trained.campaign
    campaign.cost_per_contact = 0
    campaign.save()
    free = model_version_explain(version=trained, estimator=estimator, X=rows, arm_names=ARMS)
    assert {r["action_name"] for r in free["rules"]["rules"]} - {"no contact"}
    # 1,000 a contact: no predicted uplift (at most 1 conversion, worth 45) pays for it
    campaign.cost_per_contact = 1_000
    campaign.save()
    dear = model_version_explain(version=trained, estimator=estimator, X=rows, arm_names=ARMS)
    assert dear["rules"]["text"] == ["everyone -> no contact (100% of customers)"]
    assert dear["rules"]["value_share"]["predicted"]["share"] is None
    trained.refresh_from_db()
    assert trained.explanations["rules"]["cost_per_contact"] == 1_000.0  # stored


def test_a_customers_explanation_agrees_with_their_score(trained):
    scored = CustomerScore.objects.filter(model_version=trained).select_related("customer")
    # the six most promising customers, and six in id order (mostly not worth contacting)
    scores = [*scored.order_by("-uplift")[:6], *scored.order_by("customer_id")[:6]]
    contacted = 0
    for score in scores:
        answer = customer_explanation(customer=score.customer, as_of=ANCHOR)
        assert answer["model_version"] == trained.id and answer["score"]["consistent"]
        assert answer["notes"] == []
        by_arm = {a["arm"]: a for a in answer["arms"]}
        assert list(by_arm) == ARMS
        for arm in ARMS:
            assert by_arm[arm]["uplift"] == pytest.approx(score.uplift_by_arm[arm], abs=1e-5)
            # targeting's profit: the demo prices an extra unsubscribe at 30
            harm = score.guardrail_by_arm["unsubscribes"][arm]
            assert by_arm[arm]["expected_profit"] == pytest.approx(
                by_arm[arm]["uplift"] * 45 - 0.15 - 30 * harm, abs=1e-4)
            reasons = by_arm[arm]
            assert len(reasons["features"]) == 5
            total = (reasons["baseline_uplift"] + reasons["other"]
                     + sum(f["contribution"] for f in reasons["features"]))
            assert total == pytest.approx(reasons["uplift"], abs=1e-3)
        # the arm named is the arm scored best, unless no arm pays for its contact
        best_profit = max(a["expected_profit"] for a in answer["arms"])
        if best_profit > 0:
            contacted += 1
            assert answer["chosen_arm"] == score.best_arm
        else:
            assert answer["chosen_arm"] == "no contact"
        assert answer["rule"]["text"] in trained.explanations["rules"]["text"]
    assert 1 <= contacted < 12


def test_the_covering_rule_is_the_leaf_the_customer_falls_in(trained):
    explanations = {"labels": {"age": "age", "region": "region"}, "rules": {"fill": {"age": 40.0},
                    "rules": [
        {"conditions": [{"feature": "age", "op": "<=", "value": 30.0}], "text": "young"},
        {"conditions": [{"feature": "age", "op": ">", "value": 30.0},
                        {"feature": "region", "op": "is", "value": "north"}], "text": "north"},
        {"conditions": [{"feature": "age", "op": ">", "value": 30.0},
                        {"feature": "region", "op": "is not", "value": "north"}],
         "text": "other"}]}}
    assert covering_rule(explanations, {"age": 25.0, "region": "north"})["text"] == "young"
    assert covering_rule(explanations, {"age": 31.0, "region": "north"})["text"] == "north"
    assert covering_rule(explanations, {"age": 31.0, "region": None})["text"] == "other"
    # a missing age takes the stored fill (40): not young
    assert covering_rule(explanations, {"age": None, "region": "north"})["text"] == "north"


def test_a_stale_score_is_reported_not_contradicted(trained):
    stale = 0
    for score in CustomerScore.objects.filter(model_version=trained).select_related(
            "customer").order_by("customer_id")[:5]:
        later = customer_explanation(customer=score.customer, as_of=ANCHOR + timedelta(days=60))
        # sixty days on, "days since" features have grown and events left the windows
        moved = max(abs(a["uplift"] - score.uplift_by_arm[a["arm"]]) for a in later["arms"])
        if moved > 1e-5:
            stale += 1
            assert later["score"]["consistent"] is False
            assert [n for n in later["notes"] if "is stale" in n], later["notes"]
    assert stale >= 1


def test_an_erased_customer_is_not_explained(trained):
    customer = Customer.objects.order_by("id").first()
    customer_erase(customer=customer)
    with pytest.raises(ValidationError, match="erased"):
        customer_explanation(customer=customer)


def test_changed_costs_are_said_and_a_version_without_rules_still_answers(trained):
    customer = Customer.objects.order_by("id").first()
    campaign = trained.campaign
    campaign.cost_per_contact = 1_000
    campaign.save()
    answer = customer_explanation(customer=customer, as_of=ANCHOR)
    assert answer["chosen_arm"] == "no contact"
    assert any("fitted at cost 0.15" in note for note in answer["notes"])
    trained.explanations = {}
    trained.save()
    bare = customer_explanation(customer=customer, as_of=ANCHOR)
    assert bare["rule"] is None and bare["arms"][0]["features"] == []
    assert bare["arms"][0]["uplift"] == answer["arms"][0]["uplift"]


def test_an_arms_own_conversion_cost_changes_the_rule_and_the_customers_arm(trained):
    discount = trained.experiment.arms.get(name="email_discount")
    discount.cost_per_conversion = 10
    discount.save()
    econ = economics_build(campaign=trained.campaign, version=trained)
    assert econ.cost.tolist() == [0.15, 0.15] and econ.conversion_cost.tolist() == [0.0, 10.0]
    # By hand, uplift 0.02 / 0.03 and conversion probability 0.05 / 0.10 under the arms, no
    # predicted unsubscribes: email 0.02*45 - 0.15 = 0.75; the discount 0.03*45 - 0.15
    # - 10*0.10 = 0.20 (1.20 without its conversion cost, when it would win).
    uplift, treated = np.array([[0.02, 0.03]] * 100), np.array([[0.05, 0.10]] * 100)
    profit = arm_profit(econ, uplift, treated, np.zeros((100, 2, 1)))
    assert profit[0].tolist() == pytest.approx([0.75, 0.20])
    X = pd.DataFrame({"age": np.arange(100.0)})
    assert policy_rules(X, uplift, cost_per_contact=econ.cost, value_per_conversion=45,
                        arm_names=ARMS).text == ["everyone -> email_discount (100% of customers, "
                                                 "+0.03 conversions each, profit +1.2 each)"]
    assert policy_rules(X, uplift, cost_per_contact=econ.cost, value_per_conversion=45,
                        profit=profit, arm_names=ARMS).text == [
        "everyone -> email (100% of customers, +0.02 conversions each, profit +0.75 each)"]

    # At 1,000 per discount conversion the customer most moved by a contact gets e-mail or
    # nothing, the discount's profit by targeting's formula (1,000 times its conversions).
    score = CustomerScore.objects.filter(model_version=trained).order_by("-uplift").first()
    before = customer_explanation(customer=score.customer, as_of=ANCHOR)
    discount.cost_per_conversion = 1_000
    discount.save()
    after = customer_explanation(customer=score.customer, as_of=ANCHOR)
    by_arm = {a["arm"]: a for a in after["arms"]}
    treated_discount = score.response + score.uplift_by_arm["email_discount"]
    harm = score.guardrail_by_arm["unsubscribes"]["email_discount"]
    assert by_arm["email_discount"]["expected_profit"] == pytest.approx(
        by_arm["email_discount"]["uplift"] * 45 - 0.15 - 1_000 * treated_discount - 30 * harm,
        abs=1e-3)
    assert after["chosen_arm"] != "email_discount"
    assert after["chosen_arm"] == ("email" if by_arm["email"]["expected_profit"] > 0
                                   else "no contact")
    assert any("arms' costs or harm prices changed" in note for note in after["notes"])
    assert before["arms"][1]["uplift"] == by_arm["email_discount"]["uplift"]
