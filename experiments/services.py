"""Writes for experiments: creation with arms and metrics, status changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.bounds import AMOUNT_MAX, WEIGHT_MAX, number_in_range, range_text
from core.pseudonyms import idempotency_key_pseudonym
from experiments.models import Arm, Assignment, Experiment, Exposure, Metric
from marketing.crm_ids import crm_ids_lookup
from marketing.models import Campaign, CustomerAttribute, Segment


@dataclass(frozen=True)
class ArmSpec:
    name: str
    weight: float
    is_control: bool = False
    contacts_customer: bool = True
    cost_per_contact: float | None = None  # None: the campaign's
    cost_per_conversion: float | None = None  # None: 0


@dataclass(frozen=True)
class MetricSpec:
    name: str
    event_kind: str
    aggregation: str
    role: str = Metric.Role.SECONDARY
    higher_is_better: bool = True
    minimum_detectable_effect: float | None = None


def experiment_design_validate(
    *, arms: Sequence[ArmSpec], metrics: Sequence[MetricSpec],
    breakdown_attributes: Sequence[str],
) -> None:
    """The rules an experiment's design obeys, for every way one is created or edited.

    At least two arms with exactly one control (effects are measured against
    it) and a positive weight sum (assignment divides by it); exactly one
    primary metric (the decision reads it); breakdown attributes declared as
    categorical or boolean (the analysis groups by their values). Raises
    ValidationError keyed ``arms``, ``metrics`` or ``breakdown_attributes[i]``.
    """
    if len(arms) < 2:
        raise ValidationError({"arms": "an experiment needs at least two arms"})
    if sum(1 for a in arms if a.is_control) != 1:
        raise ValidationError({"arms": "exactly one arm must be the control"})
    for i, arm in enumerate(arms):
        _bounded(arm.weight, 0.0, WEIGHT_MAX, f"arms[{i}].weight")
        for name in ("cost_per_contact", "cost_per_conversion"):
            if getattr(arm, name) is not None:
                _bounded(getattr(arm, name), 0.0, AMOUNT_MAX, f"arms[{i}].{name}")
    if sum(a.weight for a in arms) <= 0:
        raise ValidationError({"arms": "arm weights must have a positive sum"})
    for i, metric in enumerate(metrics):
        if metric.minimum_detectable_effect is not None:
            _bounded(metric.minimum_detectable_effect, 0.0, WEIGHT_MAX,
                     f"metrics[{i}].minimum_detectable_effect")
    if sum(1 for m in metrics if m.role == Metric.Role.PRIMARY) != 1:
        raise ValidationError({"metrics": "exactly one metric must be primary"})
    kinds = dict(CustomerAttribute.objects.filter(key__in=list(breakdown_attributes))
                 .values_list("key", "kind"))
    for i, attribute in enumerate(breakdown_attributes):
        if kinds.get(attribute) not in {CustomerAttribute.Kind.CATEGORICAL,
                                        CustomerAttribute.Kind.BOOLEAN}:
            raise ValidationError({f"breakdown_attributes[{i}]": f"{attribute!r} is not a "
                                   "declared categorical or boolean attribute"})


def _bounded(value: object, low: float, high: float, field: str) -> None:
    """Refuse a number outside [low, high] (core.bounds), naming the field."""
    if number_in_range(value, low, high) is None:
        raise ValidationError({field: f"must be {range_text(low, high)}"})


@transaction.atomic
def experiment_create(
    *, campaign: Campaign, key: str, name: str, arms: Sequence[ArmSpec],
    metrics: Sequence[MetricSpec], eligibility_segment: Segment | None = None,
    attribution_window_days: int = 14, traffic_fraction: float = 1.0, layer: str = "",
    hypothesis: str = "", salt: str | None = None, planned_sample_size: int | None = None,
    sequential_testing: bool = True, alpha: float = 0.05,
    breakdown_attributes: Sequence[str] = (), breakdown_segments: Sequence[Segment] = (),
) -> Experiment:
    """Create a draft experiment; its design must pass experiment_design_validate."""
    experiment_design_validate(arms=arms, metrics=metrics,
                               breakdown_attributes=breakdown_attributes)
    experiment = Experiment(
        campaign=campaign, key=key, name=name, eligibility_segment=eligibility_segment,
        attribution_window_days=attribution_window_days, traffic_fraction=traffic_fraction,
        layer=layer, hypothesis=hypothesis, planned_sample_size=planned_sample_size,
        sequential_testing=sequential_testing, alpha=alpha,
        breakdown_attributes=list(breakdown_attributes),
    )
    if salt:
        experiment.salt = salt
    experiment.full_clean()
    experiment.save()
    experiment.breakdown_segments.set(breakdown_segments)
    for i, spec in enumerate(arms):
        arm = Arm(experiment=experiment, name=spec.name, weight=spec.weight,
                  is_control=spec.is_control, contacts_customer=spec.contacts_customer,
                  cost_per_contact=spec.cost_per_contact,
                  cost_per_conversion=spec.cost_per_conversion)
        _clean(arm, f"arms[{i}]")
        arm.save()
    for i, spec in enumerate(metrics):
        metric = Metric(experiment=experiment, name=spec.name, event_kind=spec.event_kind,
                        aggregation=spec.aggregation, role=spec.role,
                        higher_is_better=spec.higher_is_better,
                        minimum_detectable_effect=spec.minimum_detectable_effect)
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


@dataclass(frozen=True)
class ExposureRecordResult:
    created: int
    duplicates: int
    rejected: list[dict]


def exposures_record(*, experiment: Experiment, rows: Sequence[dict]) -> ExposureRecordResult:
    """Record exposures idempotently, all or nothing.

    Each row: ``customer`` (external id), ``exposed_at`` (aware datetime),
    ``idempotency_key``. A customer must already be assigned; rows are
    rejected with their index otherwise, and then nothing is written.
    """
    assignments = {external_id: pk for external_id, (pk,) in crm_ids_lookup(
        Assignment.objects.filter(experiment=experiment).values_list("customer__external_id", "id"),
        (r.get("customer") for r in rows if isinstance(r, dict)),
        field="customer__external_id").items()}
    rejected, exposures, keys = [], [], set()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            rejected.append({"index": index, "errors": {"non_field_errors": "must be an object"}})
            continue
        errors = {}
        customer = row.get("customer")
        assignment_id = assignments.get(customer) if isinstance(customer, str) else None
        if assignment_id is None:
            errors["customer"] = f"{row.get('customer')!r} is not assigned in {experiment.key}"
        exposed_at = row.get("exposed_at")
        if not isinstance(exposed_at, datetime) or timezone.is_naive(exposed_at):
            errors["exposed_at"] = "must be a timezone-aware datetime"
        key = row.get("idempotency_key")
        if not key or not isinstance(key, str) or len(key) > 128 or "\x00" in key:
            errors["idempotency_key"] = "is required: a string of at most 128 characters"
        elif (assignment_id, key) in keys:
            errors["idempotency_key"] = "repeated within this request"
        else:
            keys.add((assignment_id, key))
        if errors:
            rejected.append({"index": index, "errors": errors})
        else:
            # Stored as its keyed pseudonym: senders build keys from customer ids.
            exposures.append(Exposure(assignment_id=assignment_id, exposed_at=exposed_at,
                                      idempotency_key=idempotency_key_pseudonym(key)))
    if rejected:
        return ExposureRecordResult(0, 0, rejected)
    before = Exposure.objects.filter(assignment__experiment=experiment).count()
    with transaction.atomic():
        Exposure.objects.bulk_create(exposures, batch_size=2_000, ignore_conflicts=True)
    created = Exposure.objects.filter(assignment__experiment=experiment).count() - before
    return ExposureRecordResult(created, len(exposures) - created, [])


def conversions_record(*, experiment: Experiment, rows: Sequence[object], source: str = "api"):
    """Record conversion events for customers assigned in the experiment, all or nothing.

    Rows as for marketing.services.events_validate; ``kind`` defaults to the
    primary metric's event kind and must be one the experiment measures.
    Returns marketing.services.EventRecordResult.
    """
    from collections.abc import Mapping

    from marketing.services import EventRecordResult, events_validate, events_write

    metrics = list(experiment.metrics.all())
    kinds = {m.event_kind for m in metrics}
    default_kind = next(m.event_kind for m in metrics if m.role == Metric.Role.PRIMARY)
    rows = [{"kind": default_kind, **row} if isinstance(row, Mapping) else row for row in rows]
    assigned = set(crm_ids_lookup(
        Assignment.objects.filter(experiment=experiment).values_list("customer__external_id"),
        (r.get("customer") for r in rows if isinstance(r, Mapping)),
        field="customer__external_id"))
    extra: dict[int, dict[str, str]] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            continue
        customer, kind = row.get("customer"), row["kind"]
        if not isinstance(customer, str) or customer not in assigned:
            extra.setdefault(index, {})["customer"] = (
                f"{customer!r} is not assigned in {experiment.key}")
        if not isinstance(kind, str) or kind not in kinds:
            extra.setdefault(index, {})["kind"] = (
                f"must be one of the experiment's metric kinds {sorted(kinds)}")
    events, rejected = events_validate(rows, source=source)
    if extra:
        merged = {r["index"]: r["errors"] for r in rejected}
        for index, errors in extra.items():
            # The event check's message about the customer is the more basic one.
            merged[index] = {**errors, **merged.get(index, {})}
        rejected = [{"index": i, "errors": merged[i]} for i in sorted(merged)]
    if rejected:
        return EventRecordResult(rejected=rejected)
    return events_write(events, source=source)


