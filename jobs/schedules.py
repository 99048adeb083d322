"""Per-campaign schedules (beat) and what each scheduled action does.

Beat only ever sends ``campaign_scheduled_action_task(campaign_id, action)``;
that task calls ``campaign_action_run`` below, which queues the same
requests (jobs.requests) the admin buttons and the API use.
"""

from __future__ import annotations

import json

import numpy as np
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from experiments.models import Experiment
from jobs.models import CampaignSchedule
from jobs.requests import (
    customers_score_request,
    experiment_analyse_request,
    uplift_model_train_request,
)
from modelling.drift import feature_drift
from modelling.models import ModelVersion
from modelling.registry import champion

SCHEDULED_TASK = "jobs.tasks.campaign_scheduled_action_task"


@transaction.atomic
def campaign_schedule_save(schedule: CampaignSchedule) -> CampaignSchedule:
    """Save the schedule and create or update its beat PeriodicTask."""
    schedule.full_clean()
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=schedule.every_hours, period=IntervalSchedule.HOURS)
    task = schedule.periodic_task or PeriodicTask()
    task.name = f"campaign {schedule.campaign_id}: {schedule.action}"
    task.task = SCHEDULED_TASK
    task.interval = interval
    task.kwargs = json.dumps({"campaign_id": schedule.campaign_id, "action": schedule.action})
    task.enabled = schedule.enabled
    task.save()
    schedule.periodic_task = task
    schedule.save()
    return schedule


@transaction.atomic
def campaign_schedule_delete(schedule: CampaignSchedule) -> None:
    if schedule.periodic_task_id:
        PeriodicTask.objects.filter(id=schedule.periodic_task_id).delete()
    schedule.delete()


def _latest_experiment(campaign_id: int) -> Experiment | None:
    return (Experiment.objects.filter(campaign_id=campaign_id, assignments__isnull=False)
            .exclude(status=Experiment.Status.ARCHIVED).order_by("-started_at", "-id").first())


def campaign_action_run(*, campaign_id: int, action: str) -> dict:
    """Queue what the action calls for; returns a summary for the task run."""
    schedule = CampaignSchedule.objects.filter(campaign_id=campaign_id, action=action).first()
    if action == CampaignSchedule.Action.ANALYSE:
        runs = [experiment_analyse_request(experiment=e).id for e in
                Experiment.objects.filter(campaign_id=campaign_id,
                                          status=Experiment.Status.RUNNING)]
        return {"analysis_runs": runs}
    if action == CampaignSchedule.Action.RETRAIN:
        experiment = _latest_experiment(campaign_id)
        if experiment is None:
            return {"skipped": "no experiment with assigned customers"}
        return {"train_run": uplift_model_train_request(experiment=experiment).id}
    current = champion(campaign_id, ModelVersion.Kind.UPLIFT) or champion(
        campaign_id, ModelVersion.Kind.RESPONSE)
    if current is None:
        return {"skipped": "no champion model"}
    if action == CampaignSchedule.Action.RESCORE:
        return {"score_run": customers_score_request(model_version=current).id}
    if action == CampaignSchedule.Action.DRIFT_CHECK:
        report = feature_drift(current)
        threshold = schedule.psi_threshold if schedule else 0.2
        out = {"model_version_id": current.id, "max_psi": report.max_psi,
               "psi": {k: round(v, 4) for k, v in report.psi.items()},
               "threshold": threshold}
        experiment = current.experiment or _latest_experiment(campaign_id)
        if report.max_psi > threshold and experiment is not None and np.isfinite(report.max_psi):
            out["train_run"] = uplift_model_train_request(experiment=experiment).id
        return out
    raise ValueError(f"unknown scheduled action {action!r}")
