"""Per-campaign schedules (beat) and what each scheduled action does.

Beat only ever sends ``campaign_scheduled_action_task(campaign_id, action)``;
that task calls ``campaign_action_run`` below, which queues the same
services the admin buttons and the API use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from experiments.models import CampaignSchedule, Experiment, ModelVersion
from experiments.registry import champion
from experiments.stats.drift import psi_by_feature
from marketing.features import FeatureSpec, features_build, fixed_cutoff
from marketing.models import Customer

SCHEDULED_TASK = "experiments.tasks.campaign_scheduled_action_task"
DRIFT_SAMPLE = 20_000


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


@dataclass(frozen=True)
class DriftReport:
    model_version_id: int
    psi: dict[str, float]
    max_psi: float
    customers: int


def feature_drift(version: ModelVersion, *, sample: int = DRIFT_SAMPLE) -> DriftReport:
    """PSI of each feature now (a spread sample of customers) against training."""
    total = Customer.objects.count()
    step = max(total // sample, 1)
    table = Customer._meta.db_table
    # Every step-th customer by id: spread over the whole base, cheap in SQL.
    customers_sql = f"SELECT id FROM {table} WHERE erased_at IS NULL AND id %% %s = 0"
    spec = FeatureSpec.from_json(version.feature_spec)
    frames = [chunk.frame for chunk in features_build(
        spec=spec, source=fixed_cutoff(timezone.now(), customers_sql, [step]))]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    values = psi_by_feature(version.feature_reference, frame) if len(frame) else {}
    return DriftReport(version.id, values, max(values.values(), default=0.0), len(frame))


def _latest_experiment(campaign_id: int) -> Experiment | None:
    return (Experiment.objects.filter(campaign_id=campaign_id, assignments__isnull=False)
            .exclude(status=Experiment.Status.ARCHIVED).order_by("-started_at", "-id").first())


def campaign_action_run(*, campaign_id: int, action: str) -> dict:
    """Queue what the action calls for; returns a summary for the task run."""
    from experiments.services import (  # services import the tasks that import us
        customers_score_request,
        experiment_analyse_request,
        uplift_model_train_request,
    )

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
