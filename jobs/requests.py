"""Every request for background work: what the admin, the API, commands and beat call.

Each ``*_request`` validates its inputs, records a TaskRun and queues the
Celery task once its own transaction commits (so the worker sees the row).
Callers never wrap these in ``transaction.atomic``: each request is one.
This package sits above the apps (core < marketing < experiments <
modelling < jobs); the apps' admin and API modules are the only code below
it that calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.models import TaskRun
from core.task_runs import task_run_queue
from experiments.models import Experiment
from experiments.tasks import experiment_analyse_task
from marketing.models import Campaign, Event, Segment
from marketing.tasks import segment_size
from modelling.behaviour_training import CHURN_CANDIDATES
from modelling.economics import economics_build
from modelling.models import ModelVersion, SegmentationRun
from modelling.scoring import score_plan
from modelling.segmentation import segmentation_run_create
from modelling.tasks import (
    behaviour_model_train_task,
    cluster_memberships_extend_task,
    customers_score_task,
    response_model_train_task,
    segmentation_run_task,
    targeting_list_build_task,
    uplift_model_train_task,
)
from models_dl import available_estimators
from models_dl.baselines import CAUSALML_LEARNERS


@transaction.atomic
def experiment_analyse_request(*, experiment: Experiment) -> TaskRun:
    """Queue an analysis snapshot of the experiment; returns the TaskRun to follow."""
    return task_run_queue(name="experiment_analyse", params={"experiment_id": experiment.id},
                          task=experiment_analyse_task)


@transaction.atomic
def uplift_model_train_request(
    *, experiment: Experiment, estimators: Sequence[str] = ("default",),
    baselines: Sequence[str] = ("X",), metric: str | None = None,
    estimator_params: dict | None = None, random_state: int = 0,
) -> TaskRun:
    """Queue training of uplift models on the experiment; returns the TaskRun."""
    unknown = [name for name in estimators if name not in available_estimators()]
    if unknown or not estimators:
        raise ValidationError({"estimators": f"choose from {available_estimators()}"})
    if any(name not in CAUSALML_LEARNERS for name in baselines):
        raise ValidationError({"baselines": f"choose from {list(CAUSALML_LEARNERS)}"})
    if metric is not None and not experiment.metrics.filter(name=metric).exists():
        raise ValidationError({"metric": f"{experiment.key} has no metric {metric!r}"})
    if not experiment.assignments.exists():
        raise ValidationError({"experiment": f"{experiment.key} has no assigned customers"})
    return task_run_queue(
        name="uplift_model_train", task=uplift_model_train_task,
        params={"experiment_id": experiment.id, "estimators": list(estimators),
                "baselines": list(baselines), "metric": metric,
                "estimator_params": estimator_params or {}, "random_state": random_state})


@transaction.atomic
def customers_score_request(
    *, model_version: ModelVersion, segment: Segment | None = None, chunk_size: int = 50_000,
) -> TaskRun:
    """Queue scoring of every (or every segment) customer with a ready model version."""
    if model_version.status != ModelVersion.Status.READY:
        raise ValidationError({"model_version": f"version {model_version.id} is "
                                                f"{model_version.status}, not ready"})
    if chunk_size < 1:
        raise ValidationError({"chunk_size": "must be positive"})
    chunks = len(score_plan(chunk_size=chunk_size))
    return task_run_queue(
        name="customers_score", task=customers_score_task,
        params={"model_version_id": model_version.id,
                "segment_id": segment.id if segment else None, "chunk_size": chunk_size,
                "chunks": chunks, "cutoff": timezone.now().isoformat()})


@transaction.atomic
def response_model_train_request(
    *, campaign: Campaign, event_kind: str = "purchase", window_days: int = 30,
    model_params: dict | None = None,
) -> TaskRun:
    """Queue training of a propensity-to-convert model (no experiment needed)."""
    if event_kind not in Event.Kind.values:
        raise ValidationError({"event_kind": f"choose from {Event.Kind.values}"})
    if not 1 <= window_days <= 365:
        raise ValidationError({"window_days": "must be between 1 and 365"})
    return task_run_queue(
        name="response_model_train", task=response_model_train_task,
        params={"campaign_id": campaign.id, "event_kind": event_kind,
                "window_days": window_days, "model_params": model_params or {}})


@transaction.atomic
def behaviour_model_train_request(
    *, campaign: Campaign, target: str, as_of=None, horizon_days: int = 90,
    candidates: Sequence[str] = CHURN_CANDIDATES, model_params: dict | None = None,
) -> TaskRun:
    """Queue training of churn-risk candidates or the expected-revenue model, then scoring.

    ``target``: "churn" (no purchase in the next ``horizon_days``) or
    "value" (revenue in them); ``as_of`` (default now) is the end of the
    held-out later period (modelling.behaviour_training).
    """
    if target not in ("churn", "value"):
        raise ValidationError({"target": "choose 'churn' or 'value'"})
    if not 7 <= horizon_days <= 365:
        raise ValidationError({"horizon_days": "must be between 7 and 365"})
    unknown = [c for c in candidates if c not in CHURN_CANDIDATES]
    if unknown or not candidates:
        raise ValidationError({"candidates": f"choose from {list(CHURN_CANDIDATES)}"})
    if model_params is not None and not isinstance(model_params, dict):
        raise ValidationError({"model_params": "must be an object of candidate -> parameters"})
    as_of = as_of or timezone.now()
    return task_run_queue(
        name="behaviour_model_train", task=behaviour_model_train_task,
        params={"campaign_id": campaign.id, "target": target, "as_of": as_of.isoformat(),
                "horizon_days": horizon_days, "candidates": list(candidates),
                "model_params": model_params or {}})


@transaction.atomic
def segmentation_run_request(
    *, campaign: Campaign, experiment: Experiment | None = None, cutoff=None,
    k_min: int = 2, k_max: int = 8, model_params: dict | None = None,
) -> TaskRun:
    """Queue a segmentation run (modelling.segmentation); the run row exists at once."""
    if not 2 <= k_min <= k_max <= 20:
        raise ValidationError({"k_max": "the cluster range must satisfy 2 <= k_min <= k_max "
                                        "<= 20"})
    if experiment is not None and experiment.campaign_id != campaign.id:
        raise ValidationError({"experiment": f"{experiment.key} is not an experiment of "
                                             f"{campaign.key}"})
    segmentation = segmentation_run_create(campaign=campaign, experiment=experiment,
                                           cutoff=cutoff, k_min=k_min, k_max=k_max)
    run = task_run_queue(
        name="segmentation_run", task=segmentation_run_task,
        params={"segmentation_run_id": segmentation.id, "model_params": model_params or {}})
    SegmentationRun.objects.filter(pk=segmentation.pk).update(task_run=run)
    return run


@transaction.atomic
def cluster_memberships_extend_request(*, segmentation: SegmentationRun) -> TaskRun:
    """Queue placing new customers in a ready segmentation run's clusters."""
    if segmentation.status != SegmentationRun.Status.READY:
        raise ValidationError({"segmentation_run": f"run {segmentation.id} is "
                                                   f"{segmentation.status}, not ready"})
    return task_run_queue(name="cluster_memberships_extend",
                          task=cluster_memberships_extend_task,
                          params={"segmentation_run_id": segmentation.id})


@transaction.atomic
def segment_size_request(*, segment: Segment) -> TaskRun:
    """Queue a background count of the segment's members; returns the TaskRun."""
    return task_run_queue(name="segment_size", params={"segment_id": segment.id}, task=segment_size)


def _numbers(mapping: Mapping | None, kind: type = float) -> dict | None:
    """A name -> number mapping as JSON (None kept: "the arm's own")."""
    if mapping is None:
        return None
    return {str(k): None if v is None else kind(v) for k, v in mapping.items()}


@transaction.atomic
def targeting_list_request(
    *, campaign: Campaign, model_version: ModelVersion, segment: Segment | None = None,
    budget: float | None = None, max_contacts: int | None = None,
    cost_per_contact: float | None = None, value_per_conversion: float | None = None,
    arm_capacity: Mapping[str, int] | None = None,
    harm_prices: Mapping[str, float] | None = None,
    harm_caps: Mapping[str, float | None] | None = None,
    cost_per_contact_by_arm: Mapping[str, float | None] | None = None,
    cost_per_conversion_by_arm: Mapping[str, float | None] | None = None,
) -> TaskRun:
    """Queue a targeting list build (modelling.targeting.targeting_list_create); returns the run.

    The checks that need no scores run here, so a bad cost or an unknown
    arm is refused with its field named before anything is queued: the
    version must be a ready uplift model of the campaign, and
    economics_build must accept the overrides (the same call the build makes).
    """
    if model_version.campaign_id != campaign.id or \
            model_version.kind != ModelVersion.Kind.UPLIFT:
        raise ValidationError({"model_version": "must be an uplift model of this campaign"})
    if model_version.status != ModelVersion.Status.READY:
        raise ValidationError({"model_version": f"version {model_version.id} is "
                                                f"{model_version.status}, not ready"})
    economics_build(
        campaign=campaign, version=model_version, budget=budget, max_contacts=max_contacts,
        cost_per_contact=cost_per_contact, value_per_conversion=value_per_conversion,
        arm_capacity=arm_capacity, harm_prices=harm_prices, harm_caps=harm_caps,
        cost_by_arm=cost_per_contact_by_arm, conversion_cost_by_arm=cost_per_conversion_by_arm)
    return task_run_queue(
        name="targeting_list_build", task=targeting_list_build_task,
        params={"campaign_id": campaign.id, "model_version_id": model_version.id,
                "segment_id": segment.id if segment else None,
                "budget": None if budget is None else float(budget),
                "max_contacts": None if max_contacts is None else int(max_contacts),
                "cost_per_contact": None if cost_per_contact is None else float(cost_per_contact),
                "value_per_conversion": None if value_per_conversion is None
                else float(value_per_conversion),
                "arm_capacity": _numbers(arm_capacity, int),
                "harm_prices": _numbers(harm_prices), "harm_caps": _numbers(harm_caps),
                "cost_per_contact_by_arm": _numbers(cost_per_contact_by_arm),
                "cost_per_conversion_by_arm": _numbers(cost_per_conversion_by_arm)})
