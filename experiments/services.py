"""Writes for experiments: creation with arms and metrics, status changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments.models import Arm, Experiment, Metric
from marketing.models import Campaign, Segment


@dataclass(frozen=True)
class ArmSpec:
    name: str
    weight: float
    is_control: bool = False
    contacts_customer: bool = True


@dataclass(frozen=True)
class MetricSpec:
    name: str
    event_kind: str
    aggregation: str
    role: str = Metric.Role.SECONDARY
    higher_is_better: bool = True


@transaction.atomic
def experiment_create(
    *, campaign: Campaign, key: str, name: str, arms: Sequence[ArmSpec],
    metrics: Sequence[MetricSpec], eligibility_segment: Segment | None = None,
    attribution_window_days: int = 14, traffic_fraction: float = 1.0, layer: str = "",
    hypothesis: str = "", salt: str | None = None,
) -> Experiment:
    """Create a draft experiment. Needs one control arm and one primary metric."""
    if len(arms) < 2:
        raise ValidationError({"arms": "an experiment needs at least two arms"})
    if sum(1 for a in arms if a.is_control) != 1:
        raise ValidationError({"arms": "exactly one arm must be the control"})
    if sum(a.weight for a in arms) <= 0:
        raise ValidationError({"arms": "arm weights must have a positive sum"})
    if sum(1 for m in metrics if m.role == Metric.Role.PRIMARY) != 1:
        raise ValidationError({"metrics": "exactly one metric must be primary"})
    experiment = Experiment(
        campaign=campaign, key=key, name=name, eligibility_segment=eligibility_segment,
        attribution_window_days=attribution_window_days, traffic_fraction=traffic_fraction,
        layer=layer, hypothesis=hypothesis,
    )
    if salt:
        experiment.salt = salt
    experiment.full_clean()
    experiment.save()
    for i, spec in enumerate(arms):
        arm = Arm(experiment=experiment, name=spec.name, weight=spec.weight,
                  is_control=spec.is_control, contacts_customer=spec.contacts_customer)
        _clean(arm, f"arms[{i}]")
        arm.save()
    for i, spec in enumerate(metrics):
        metric = Metric(experiment=experiment, name=spec.name, event_kind=spec.event_kind,
                        aggregation=spec.aggregation, role=spec.role,
                        higher_is_better=spec.higher_is_better)
        _clean(metric, f"metrics[{i}]")
        metric.save()
    return experiment


def _clean(instance, prefix: str) -> None:
    try:
        instance.full_clean(exclude=["experiment"])
    except ValidationError as exc:
        raise ValidationError({f"{prefix}.{k}": v for k, v in exc.message_dict.items()}) from None


def experiment_transition(*, experiment: Experiment, to: str) -> Experiment:
    """Move an experiment along draft -> running -> stopped -> archived.

    The update is conditional on the status read, so two concurrent requests
    cannot both start (or both stop) the same experiment.
    """
    current = Experiment.Status(experiment.status)
    if to not in Experiment.TRANSITIONS[current]:
        raise ValidationError({"status": f"cannot move from {current} to {to}"})
    now = timezone.now()
    changes: dict = {"status": to}
    if to == Experiment.Status.RUNNING:
        changes["started_at"] = now
    if to == Experiment.Status.STOPPED:
        changes["ended_at"] = now
    updated = Experiment.objects.filter(pk=experiment.pk, status=current).update(**changes)
    if updated == 0:
        raise ValidationError({"status": "the experiment changed meanwhile; reload and retry"})
    experiment.refresh_from_db()
    return experiment
