"""Response (propensity) models for campaigns without an experiment."""

from datetime import UTC, datetime

import pytest

from core.models import TaskRun
from experiments.demo import demo_seed
from jobs.requests import response_model_train_request
from marketing.models import Campaign
from modelling.models import CustomerScore, ModelVersion
from modelling.response_training import response_model_train
from modelling.scoring import score_chunk, score_plan

pytestmark = pytest.mark.django_db
# The request trains as of now, so the demo's timeline must end today.
ANCHOR = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
FAST = {"max_epochs": 15, "batch_size": 256}


@pytest.fixture
def campaign(settings, tmp_path):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    demo_seed(customers=2_000, seed=6, anchor=ANCHOR)
    return Campaign.objects.create(key="winter", name="Winter", channel="email",
                                   cost_per_contact="0.1", value_per_conversion="30")


def test_it_learns_who_buys_and_is_calibrated(campaign):
    version = response_model_train(campaign=campaign, window_days=30, as_of=ANCHOR, params=FAST)
    assert version.status == "ready", version.status_reason
    assert version.kind == "response" and version.is_champion
    m = version.metrics
    assert m["auc"] > 0.6  # purchase history predicts the next purchase
    assert m["ece"] < 0.05 and 0 < m["base_rate"] < 0.5
    assert version.selection_score == m["auc"]
    assert version.rows_train + version.rows_test == 2_000
    for chunk in score_plan(chunk_size=1_000):
        score_chunk(version=version, chunk=chunk, cutoff=ANCHOR)
    responses = list(CustomerScore.objects.filter(model_version=version)
                     .values_list("response", flat=True))
    assert len(responses) == 2_000 and all(0 <= r <= 1 for r in responses)
    assert sum(responses) / 2_000 == pytest.approx(m["base_rate"], abs=0.05)


def test_the_request_validates_and_runs(campaign, django_capture_on_commit_callbacks):
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError, match="event_kind"):
        response_model_train_request(campaign=campaign, event_kind="teleport")
    with django_capture_on_commit_callbacks(execute=True):
        run = response_model_train_request(campaign=campaign, model_params=FAST)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert ModelVersion.objects.get(id=run.result["model_version_id"]).kind == "response"
