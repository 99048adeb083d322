"""Training, registry and scoring on a small seeded demo (few epochs, fast)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.models import TaskRun
from experiments.demo import demo_seed
from experiments.models import Assignment, Experiment
from jobs.requests import customers_score_request, uplift_model_train_request
from marketing.models import Customer, Event
from modelling.models import CustomerScore, ModelVersion
from modelling.registry import artifact_load, champion_consider
from modelling.scoring import ChunkPlan, score_chunk
from modelling.training import (
    feature_spec_for,
    split_indices,
    training_data_build,
    uplift_model_train,
)
from tests.factories import folder_sha256

pytestmark = pytest.mark.django_db
FAST = {"max_epochs": 4, "patience": 2, "batch_size": 256}


@pytest.fixture
def demo(settings, tmp_path):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    demo_seed(customers=1_500, seed=5, anchor=datetime(2026, 10, 1, tzinfo=UTC))
    return Experiment.objects.get(key="demo_spring")


def test_training_data_is_point_in_time_and_stratified(demo):
    metric = demo.metrics.get(name="conversion")
    # One customer gets a purchase 10 days before their assignment (counts), one
    # exactly at it and one an hour after it (both after the cutoff: must not count).
    assignment = Assignment.objects.filter(experiment=demo).order_by("id").first()
    cutoff = assignment.assigned_at
    for moment in (cutoff - timedelta(days=10), cutoff, cutoff + timedelta(hours=1)):
        Event.objects.create(customer_id=assignment.customer_id, kind="purchase",
                             occurred_at=moment, value=5.0)
    expected = Event.objects.filter(
        customer_id=assignment.customer_id, kind="purchase",
        occurred_at__gte=cutoff - timedelta(days=30), occurred_at__lt=cutoff).count()
    data = training_data_build(demo, metric, feature_spec_for(demo))
    row = int(np.flatnonzero(data.customer_ids == assignment.customer_id)[0])
    assert expected >= 1
    assert data.X["purchases_30d"].iloc[row] == expected
    assert data.X.shape[0] == data.treatment.size == 1_500
    assert data.arm_names == ["control", "email", "email_discount"]
    assert "age" in data.X.columns and "purchases_90d" in data.X.columns
    assert data.true_effect.shape == (1_500, 2)
    split = split_indices(data, validation=0.2, test=0.2, seed=0)
    assert len(set(split.train) | set(split.validation) | set(split.test)) == 1_500
    for part in (split.train, split.test):
        shares = np.bincount(data.treatment[part], minlength=3) / part.size
        assert np.allclose(shares, np.bincount(data.treatment) / 1_500, atol=0.02)


def test_it_registers_evaluated_versions_and_picks_the_champion(demo):
    versions = uplift_model_train(experiment=demo, estimators=["tarnet", "s_learner"],
                                  baselines=["T"], estimator_params={"tarnet": FAST,
                                                                     "s_learner": FAST})
    assert [v.status for v in versions] == ["ready", "ready"]
    for v in versions:
        assert set(v.metrics["arms"]) == {"email", "email_discount"}
        assert v.metrics["arms"]["email"]["sqrt_pehe"] > 0
        assert "causalml_T" in v.metrics["baselines"]
        assert len(v.curves["email"]["x"]) <= 101
        groups = [row["group"] for row in v.metrics["calibration"]["email"]]
        assert groups[:2] == ["decile 1", "decile 2"] and len(groups) == 13
        assert "segment recent_buyers" in groups
        assert v.artifact_sha256 == folder_sha256(artifact_load_folder(v))
        assert v.rows_train + v.rows_validation + v.rows_test == 1_500
    champions = ModelVersion.objects.filter(is_champion=True)
    assert champions.count() == 1
    assert champions.get().selection_score == max(v.selection_score for v in versions)


def artifact_load_folder(version):
    from pathlib import Path
    return Path(version.artifact_path)


def test_a_worse_or_failed_retrain_never_replaces_the_champion(demo):
    (first,) = uplift_model_train(experiment=demo, estimators=["tarnet"], baselines=[],
                                  estimator_params={"tarnet": FAST})
    assert first.is_champion
    worse = ModelVersion.objects.create(
        campaign=demo.campaign, experiment=demo, kind="uplift", estimator="tarnet",
        target_metric="conversion", status="ready", selection_score=first.selection_score - 0.01)
    failed = ModelVersion.objects.create(
        campaign=demo.campaign, experiment=demo, kind="uplift", estimator="tarnet",
        target_metric="conversion", status="failed", selection_score=first.selection_score + 1)
    assert not champion_consider(worse) and not champion_consider(failed)
    assert ModelVersion.objects.get(is_champion=True) == first
    better = ModelVersion.objects.create(
        campaign=demo.campaign, experiment=demo, kind="uplift", estimator="tarnet",
        target_metric="conversion", status="ready", selection_score=first.selection_score + 0.01)
    assert champion_consider(better)
    assert ModelVersion.objects.get(is_champion=True) == better


def test_a_training_error_is_recorded_as_failed(demo):
    (version,) = uplift_model_train(experiment=demo, estimators=["tarnet"], baselines=[],
                                    estimator_params={"tarnet": {"learning_rate": -1.0}})
    assert version.status == "failed" and version.status_reason
    assert not version.is_champion


def test_a_tampered_artifact_is_refused(demo):
    (version,) = uplift_model_train(experiment=demo, estimators=["tarnet"], baselines=[],
                                    estimator_params={"tarnet": FAST})
    (artifact_load_folder(version) / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="checksum"):
        artifact_load(version)


def test_scoring_twice_gives_the_same_rows_and_matches_the_model(demo,
                                                                 django_capture_on_commit_callbacks):
    (version,) = uplift_model_train(experiment=demo, estimators=["tarnet"], baselines=[],
                                    estimator_params={"tarnet": FAST})
    with django_capture_on_commit_callbacks(execute=True):
        run = customers_score_request(model_version=version, chunk_size=400)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert run.result == {"customers_scored": 1_500, "chunks": 4}
    first = list(CustomerScore.objects.order_by("customer_id").values_list(
        "customer_id", "uplift", "best_arm", "response"))
    cutoff = CustomerScore.objects.first().scored_at
    low = Customer.objects.order_by("id").first().id - 1
    score_chunk(version=version, chunk=ChunkPlan(low, low + 400), cutoff=cutoff)
    again = list(CustomerScore.objects.order_by("customer_id").values_list(
        "customer_id", "uplift", "best_arm", "response"))
    assert again == first and len(first) == 1_500
    # The stored uplift is the model's prediction for the best arm.
    row = CustomerScore.objects.order_by("customer_id").first()
    assert row.uplift == pytest.approx(max(row.uplift_by_arm.values()), abs=1e-6)
    assert row.best_arm == max(row.uplift_by_arm, key=row.uplift_by_arm.get)
    from marketing.features import FeatureSpec, features_build, fixed_cutoff
    from modelling.registry import artifact_load
    (chunk,) = features_build(spec=FeatureSpec.from_json(version.feature_spec),
                              source=fixed_cutoff(cutoff, "SELECT %s AS id", [row.customer_id]))
    predicted = artifact_load(version).predict(chunk.frame).reshape(-1)
    assert sorted(row.uplift_by_arm.values()) == pytest.approx(sorted(predicted), abs=1e-5)


def test_the_train_request_validates_its_input_and_runs_the_task(demo,
                                                                 django_capture_on_commit_callbacks):
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError, match="estimators"):
        uplift_model_train_request(experiment=demo, estimators=["magic"])
    with pytest.raises(ValidationError, match="metric"):
        uplift_model_train_request(experiment=demo, metric="nope")
    with django_capture_on_commit_callbacks(execute=True):
        run = uplift_model_train_request(experiment=demo, estimators=["s_learner"], baselines=[],
                                         estimator_params={"s_learner": FAST})
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert run.result["model_version_ids"] == [ModelVersion.objects.get().id]


def test_the_daily_behaviour_snapshot_leaves_the_scores_unchanged(demo):
    from datetime import timedelta

    from marketing.models import BehaviourSnapshot
    from modelling.scoring import behaviour_snapshots_refresh

    (version,) = uplift_model_train(experiment=demo, estimators=["tarnet"], baselines=[],
                                    estimator_params={"tarnet": FAST})
    assert ModelVersion.objects.get(id=version.id).is_champion
    (built,) = behaviour_snapshots_refresh()
    assert built["customers"] == 1_500
    snapshot = BehaviourSnapshot.objects.get(id=built["snapshot_id"])
    low, high = Customer.objects.order_by("id").first().id - 1, Customer.objects.order_by(
        "-id").first().id

    def scores(cutoff):
        score_chunk(version=version, chunk=ChunkPlan(low, high), cutoff=cutoff)
        return list(CustomerScore.objects.order_by("customer_id").values_list(
            "customer_id", "uplift", "response"))

    cutoff = snapshot.as_of + timedelta(days=3)
    with_snapshot = scores(cutoff)
    BehaviourSnapshot.objects.all().delete()
    assert scores(cutoff) == with_snapshot and len(with_snapshot) == 1_500
