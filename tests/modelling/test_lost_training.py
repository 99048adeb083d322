"""A training whose worker is lost leaves no version "training" and the champion as it was."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import TaskRun
from core.task_runs import task_runs_reap
from modelling.models import ModelVersion
from tests.factories import campaign_make

pytestmark = pytest.mark.django_db


def test_a_lost_training_attempt_fails_its_versions_and_keeps_the_champion(settings):
    settings.TASK_RUN_MAX_ATTEMPTS = 1  # give up at once: nothing re-runs the (fake) training
    campaign = campaign_make()
    champion = ModelVersion.objects.create(
        campaign=campaign, kind=ModelVersion.Kind.UPLIFT, estimator="tarnet",
        target_metric="purchase", status=ModelVersion.Status.READY, is_champion=True,
        selection_score=0.1)
    run = TaskRun.objects.create(
        name="uplift_model_train", task="modelling.tasks.uplift_model_train_task",
        status=TaskRun.Status.RUNNING, attempts=1, lease_token="t", lease_holder="gone:1",
        started_at=timezone.now(), lease_expires_at=timezone.now() - timedelta(seconds=1))
    half = ModelVersion.objects.create(
        campaign=campaign, kind=ModelVersion.Kind.UPLIFT, estimator="tarnet",
        target_metric="purchase", task_run=run)

    assert task_runs_reap()["failed"] == [run.id]
    half.refresh_from_db()
    assert half.status == ModelVersion.Status.FAILED
    assert half.status_reason.startswith("training abandoned: worker lost on attempt 1")
    assert half.artifact_path == "" and half.artifact_sha256 == "" and not half.is_champion
    assert ModelVersion.objects.get(is_champion=True) == champion
