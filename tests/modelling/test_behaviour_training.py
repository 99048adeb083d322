"""Churn risk and expected revenue: trained on an earlier period, graded on a later one."""

from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from core.models import TaskRun
from experiments.demo_behaviour import behaviour_demo_seed
from jobs.requests import behaviour_model_train_request
from marketing.models import Campaign, CustomerPrediction
from marketing.segment_rules import segment_members, segment_rule_validate
from modelling.behaviour_training import churn_comparison
from modelling.models import CustomerScore, ModelVersion

pytestmark = pytest.mark.django_db
ANCHOR = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
FAST = {"aggregate_mlp": {"max_epochs": 8, "batch_size": 256},
        "sequence_gru": {"max_epochs": 4, "batch_size": 256, "hidden_size": 16},
        "lightgbm": {"n_estimators": 40}, "hurdle_lightgbm": {"n_estimators": 40}}


@pytest.fixture
def campaign(settings, tmp_path):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    result = behaviour_demo_seed(customers=900, seed=3, anchor=ANCHOR)
    return Campaign.objects.get(id=result.campaign_id)


def test_churn_candidates_are_compared_and_the_champion_scores_everyone(
        campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = behaviour_model_train_request(campaign=campaign, target="churn", as_of=ANCHOR,
                                            model_params=FAST)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    versions = ModelVersion.objects.filter(id__in=run.result["model_version_ids"])
    assert sorted(v.estimator for v in versions) == ["aggregate_mlp", "lightgbm", "sequence_gru"]
    assert all(v.status == "ready" and v.kind == "churn" for v in versions)
    champion = versions.get(is_champion=True)
    # the champion is the best held-out AUC, and the note says by how much
    assert champion.selection_score == max(v.selection_score for v in versions)
    comparison = champion.metrics["comparison"]
    assert comparison["winner"] == champion.estimator
    assert set(comparison["candidates"]) == {"aggregate_mlp", "lightgbm", "sequence_gru"}
    assert champion.metrics["auc"] > 0.7  # history predicts who stops buying
    assert champion.metrics["test_cutoff"] > champion.metrics["train_cutoff"]
    assert 0 <= champion.metrics["ece"] < 0.15
    # every customer scored, and the scores published for rules and the API
    assert run.result["customers_scored"] == 900
    assert CustomerScore.objects.filter(model_version=champion).count() == 900
    published = CustomerPrediction.objects.filter(name="churn_risk")
    assert published.count() == 900
    values = np.array(published.values_list("value", flat=True))
    assert ((values >= 0) & (values <= 1)).all()
    rule = {"score": "churn_risk", "op": "gt", "value": 0.7}
    segment_rule_validate(rule)
    risky = set(segment_members(rule).values_list("id", flat=True))
    assert risky == set(published.filter(value__gt=0.7).values_list("customer_id", flat=True))
    assert 0 < len(risky) < 900


def test_the_value_model_is_a_hurdle_on_revenue(campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = behaviour_model_train_request(campaign=campaign, target="value", as_of=ANCHOR,
                                            model_params=FAST)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(id=run.result["champion_id"])
    assert version.kind == "value" and version.estimator == "hurdle_lightgbm"
    m = version.metrics
    assert m["r2"] > 0.1 and m["buyer_auc"] > 0.7
    assert 0.6 < m["predicted_to_actual_total"] < 1.5
    values = np.array(CustomerPrediction.objects.filter(name="expected_revenue_90d")
                      .values_list("value", flat=True))
    assert values.size == 900 and (values >= 0).all()
    rule = {"score": "expected_revenue_90d", "op": "gt", "value": 50}
    high = segment_members(rule).count()
    assert high == int((values > 50).sum())


def test_requests_and_rules_name_the_bad_field(campaign):
    with pytest.raises(ValidationError, match="target"):
        behaviour_model_train_request(campaign=campaign, target="teleport")
    with pytest.raises(ValidationError, match="candidates"):
        behaviour_model_train_request(campaign=campaign, target="churn", candidates=["magic"])
    with pytest.raises(ValidationError, match="rule.score"):
        segment_rule_validate({"score": "happiness", "op": "gt", "value": 1})
    with pytest.raises(ValidationError, match="rule.value"):
        segment_rule_validate({"score": "churn_risk", "op": "gt", "value": "high"})


def test_the_comparison_note_names_the_winner_and_margin():
    note = churn_comparison({"a": {"auc": 0.8, "log_loss": 0.5, "ece": 0.02},
                             "b": {"auc": 0.75, "log_loss": 0.6, "ece": 0.03}})
    assert note["winner"] == "a" and note["auc_margin"] == pytest.approx(0.05)
    assert "0.050 above b" in note["note"]
