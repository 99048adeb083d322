"""Beat schedules per campaign, the scheduled actions, and the drift check."""

import json
from datetime import UTC, datetime

import pytest
from django_celery_beat.models import PeriodicTask

from core.models import TaskRun
from experiments.demo import demo_seed
from experiments.models import Experiment
from jobs.models import CampaignSchedule
from jobs.schedules import (
    campaign_action_run,
    campaign_schedule_delete,
    campaign_schedule_save,
    feature_drift,
)
from jobs.tasks import campaign_scheduled_action_task
from marketing.models import Customer
from modelling.training import uplift_model_train

pytestmark = pytest.mark.django_db
FAST = {"tarnet": {"max_epochs": 3, "patience": 2, "batch_size": 256}}


@pytest.fixture
def demo(settings, tmp_path):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    demo_seed(customers=1_200, seed=9, anchor=datetime(2026, 10, 1, tzinfo=UTC))
    return Experiment.objects.get(key="demo_spring")


def test_a_schedule_keeps_its_periodic_task_in_step(demo):
    schedule = campaign_schedule_save(CampaignSchedule(campaign=demo.campaign, action="retrain",
                                                       every_hours=12))
    task = PeriodicTask.objects.get(id=schedule.periodic_task_id)
    assert task.task == "jobs.tasks.campaign_scheduled_action_task"
    assert json.loads(task.kwargs) == {"campaign_id": demo.campaign_id, "action": "retrain"}
    assert (task.interval.every, task.interval.period, task.enabled) == (12, "hours", True)
    schedule.every_hours, schedule.enabled = 6, False
    campaign_schedule_save(schedule)
    task.refresh_from_db()
    assert (task.interval.every, task.enabled) == (6, False)
    campaign_schedule_delete(schedule)
    assert not PeriodicTask.objects.filter(id=task.id).exists()


def test_scheduled_actions_queue_the_services(demo, django_capture_on_commit_callbacks):
    assert campaign_action_run(campaign_id=demo.campaign_id, action="rescore") == {
        "skipped": "no champion model"}
    uplift_model_train(experiment=demo, estimators=["tarnet"], baselines=[],
                       estimator_params=FAST)
    with django_capture_on_commit_callbacks(execute=True):
        out = campaign_action_run(campaign_id=demo.campaign_id, action="rescore")
    assert TaskRun.objects.get(id=out["score_run"]).result["customers_scored"] == 1_200
    Experiment.objects.filter(pk=demo.pk).update(status="running")
    with django_capture_on_commit_callbacks(execute=True):
        out = campaign_action_run(campaign_id=demo.campaign_id, action="analyse")
    assert TaskRun.objects.get(id=out["analysis_runs"][0]).status == "succeeded"


def test_drift_is_small_for_the_same_population_and_triggers_a_retrain_when_large(demo):
    (version,) = uplift_model_train(experiment=demo, estimators=["tarnet"], baselines=[],
                                    estimator_params=FAST)
    attributes = ("age", "region", "channel", "loyalty_member", "email_engagement")
    before = feature_drift(version, sample=1_200)
    assert before.customers == 1_200
    assert max(before.psi[a] for a in attributes) < 0.05  # attributes did not move
    for customer in Customer.objects.all():
        customer.attributes["email_engagement"] = 0.99
        customer.attributes["channel"] = "phone"
        customer.save(update_fields=["attributes"])
    after = feature_drift(version, sample=1_200)
    assert after.psi["email_engagement"] > 1 and after.psi["channel"] > 0.25
    CampaignSchedule.objects.create(campaign=demo.campaign, action="drift_check",
                                    psi_threshold=0.5)
    campaign_scheduled_action_task(demo.campaign_id, "drift_check")
    run = TaskRun.objects.get(name="scheduled_drift_check")
    assert run.status == "succeeded" and run.result["max_psi"] > 0.5
    assert TaskRun.objects.filter(id=run.result["train_run"], name="uplift_model_train").exists()


def test_beat_rebuilds_the_behaviour_snapshots_daily(demo):
    from celery.schedules import crontab
    from django.conf import settings

    from config.celery import app
    from marketing.models import BehaviourSnapshot
    from modelling.tasks import behaviour_snapshots_refresh_task

    entry = settings.CELERY_BEAT_SCHEDULE["behaviour-snapshots-refresh"]
    assert entry["task"] in app.tasks and isinstance(entry["schedule"], crontab)
    uplift_model_train(experiment=demo, estimators=["tarnet"], baselines=[],
                       estimator_params={"tarnet": {"max_epochs": 2, "batch_size": 256}})
    behaviour_snapshots_refresh_task()
    run = TaskRun.objects.get(name="behaviour_snapshots_refresh")
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    (snapshot,) = BehaviourSnapshot.objects.all()
    assert run.result["snapshots"][0]["snapshot_id"] == snapshot.id
    assert snapshot.customers == Customer.objects.count()
