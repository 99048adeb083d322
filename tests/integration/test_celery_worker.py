"""A task queued by a service runs in a separate worker process end to end."""

import pytest

from core.models import TaskRun
from jobs.requests import segment_size_request
from marketing.models import Segment
from marketing.services import segment_create
from marketing.tasks import segment_size
from tests.factories import attributes_declare, customer_make
from tests.integration.conftest import ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def finished(run_id):
    run = TaskRun.objects.get(id=run_id)
    return run if run.status in {TaskRun.Status.SUCCEEDED, TaskRun.Status.FAILED} else None


def test_the_worker_counts_a_segment_and_a_redelivery_changes_nothing(celery_worker_process):
    attributes_declare()
    for age in (20, 30, 40, 50, 60):
        customer_make(age=age)
    segment = segment_create(key="over_35", name="Over 35",
                             rule={"attr": "age", "op": "gt", "value": 35})
    run = segment_size_request(segment=segment)

    done = wait_for(lambda: finished(run.id))
    assert done.status == TaskRun.Status.SUCCEEDED, done.error
    assert done.result["segment_id"] == segment.id  # the count itself: a small cell, not shown
    assert Segment.objects.get(id=segment.id).member_count == 3

    # The same message delivered again must not run the job a second time.
    finished_at = done.finished_at
    segment_size.delay(run.id)
    # The solo worker takes messages in order: once a later run has finished,
    # the redelivered message has been handled.
    barrier = segment_size_request(segment=segment)
    assert wait_for(lambda: finished(barrier.id)).status == TaskRun.Status.SUCCEEDED
    assert TaskRun.objects.get(id=run.id).finished_at == finished_at
    assert "already claimed or finished" in (ROOT / "var" / "test-worker.log").read_text()


def test_the_worker_analyses_an_experiment(celery_worker_process):
    from datetime import timedelta

    from experiments.models import AnalysisResult, Assignment
    from jobs.requests import experiment_analyse_request
    from tests.factories import T0, event_make, experiment_make

    experiment = experiment_make()
    control, email = experiment.arms.order_by("id")
    for i in range(40):
        customer = customer_make()
        Assignment.objects.create(experiment=experiment, customer=customer,
                                  arm=control if i % 2 else email, assigned_at=T0)
        if i % 3 == 0:
            event_make(customer, "purchase", T0 + timedelta(days=1), 25.0)
    run = experiment_analyse_request(experiment=experiment)
    done = wait_for(lambda: finished(run.id))
    assert done.status == TaskRun.Status.SUCCEEDED, done.error
    result = AnalysisResult.objects.get(id=done.result["analysis_result_id"])
    assert result.customers == 40
    arms = {a["arm"]: a for a in result.payload["metrics"][0]["arms"]}
    # purchases at i = 0, 3, ..., 39: 7 in the email arm (even i), 7 in control (odd i)
    assert arms["email"]["mean"] == pytest.approx(7 / 20)
    assert arms["control"]["mean"] == pytest.approx(7 / 20)


def test_the_worker_trains_scores_with_a_chord_and_fills_the_registry(celery_worker_process):
    # The worker writes artifacts under its own MODEL_ARTIFACT_DIR (var/models).
    from datetime import UTC, datetime

    from experiments.demo import demo_seed
    from experiments.models import Experiment
    from jobs.requests import customers_score_request, uplift_model_train_request
    from modelling.models import CustomerScore, ModelVersion

    demo_seed(customers=800, seed=4, anchor=datetime(2026, 10, 1, tzinfo=UTC))
    experiment = Experiment.objects.get(key="demo_spring")
    fast = {"max_epochs": 3, "patience": 2, "batch_size": 256}
    run = uplift_model_train_request(experiment=experiment, estimators=["tarnet"],
                                     baselines=["T"], estimator_params={"tarnet": fast})
    done = wait_for(lambda: finished(run.id), timeout=300)
    assert done.status == TaskRun.Status.SUCCEEDED, done.error
    version = ModelVersion.objects.get(id=done.result["model_version_ids"][0])
    assert version.status == "ready" and version.is_champion
    assert "causalml_T" in version.metrics["baselines"]

    score = customers_score_request(model_version=version, chunk_size=300)
    done = wait_for(lambda: finished(score.id), timeout=300)
    assert done.status == TaskRun.Status.SUCCEEDED, done.error
    assert done.result == {"customers_scored": 800, "chunks": 3}
    assert CustomerScore.objects.filter(model_version=version).count() == 800
