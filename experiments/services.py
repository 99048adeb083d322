"""Writes for experiments: creation with arms and metrics, status changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments.models import Arm, Assignment, Experiment, Exposure, Metric
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


@transaction.atomic
def experiment_create(
    *, campaign: Campaign, key: str, name: str, arms: Sequence[ArmSpec],
    metrics: Sequence[MetricSpec], eligibility_segment: Segment | None = None,
    attribution_window_days: int = 14, traffic_fraction: float = 1.0, layer: str = "",
    hypothesis: str = "", salt: str | None = None, planned_sample_size: int | None = None,
    sequential_testing: bool = True, alpha: float = 0.05,
    breakdown_attributes: Sequence[str] = (), breakdown_segments: Sequence[Segment] = (),
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
    kinds = dict(CustomerAttribute.objects.filter(key__in=list(breakdown_attributes))
                 .values_list("key", "kind"))
    for i, attribute in enumerate(breakdown_attributes):
        if kinds.get(attribute) not in {CustomerAttribute.Kind.CATEGORICAL,
                                        CustomerAttribute.Kind.BOOLEAN}:
            raise ValidationError({f"breakdown_attributes[{i}]": f"{attribute!r} is not a "
                                   "declared categorical or boolean attribute"})
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
    external_ids = {r.get("customer") for r in rows
                    if isinstance(r, dict) and isinstance(r.get("customer"), str)}
    external_ids = [e for e in external_ids if "\x00" not in e]
    assignments = dict(
        Assignment.objects.filter(experiment=experiment, customer__external_id__in=external_ids)
        .values_list("customer__external_id", "id")
    )
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
            exposures.append(Exposure(assignment_id=assignment_id, exposed_at=exposed_at,
                                      idempotency_key=key))
    if rejected:
        return ExposureRecordResult(0, 0, rejected)
    before = Exposure.objects.filter(assignment__experiment=experiment).count()
    with transaction.atomic():
        Exposure.objects.bulk_create(exposures, batch_size=2_000, ignore_conflicts=True)
    created = Exposure.objects.filter(assignment__experiment=experiment).count() - before
    return ExposureRecordResult(created, len(exposures) - created, [])


@dataclass(frozen=True)
class BulkAssignmentResult:
    # One per requested customer, in request order: (external id, Arm or None, reason, created).
    decisions: list[tuple[str, Arm | None, str, bool]]
    rejected: list[dict]


def assign_customers(
    *, experiment: Experiment, external_ids: Sequence[object], now: datetime | None = None,
) -> BulkAssignmentResult:
    """experiments.assignment.assign_customer for many customers, in a few queries.

    The same rules in the same order with the same reasons (a test holds the
    two to agreement). Unknown customers are rejected with their index and
    then nothing is written. A customer listed twice gets the same answer twice.
    """
    # Imported here to leave this module's import block to the code above.
    from core.db.lookups import values_matching
    from experiments.hashing import choose_arm, in_traffic
    from marketing.models import Customer
    from marketing.segment_rules import segment_members

    wanted = {e for e in external_ids if isinstance(e, str) and "\x00" not in e}
    customers: dict[str, tuple[int, bool]] = {
        e: (pk, consent) for e, pk, consent in values_matching(
            Customer.objects.values_list("external_id", "id", "marketing_consent"),
            "external_id", sorted(wanted))}
    rejected = [
        {"index": i, "errors": {"customer": f"no customer with external_id {e!r}"}}
        for i, e in enumerate(external_ids) if not isinstance(e, str) or e not in customers
    ]
    if rejected:
        return BulkAssignmentResult([], rejected)

    ids = [pk for pk, _ in customers.values()]
    arms = list(experiment.arms.order_by("id"))
    arms_by_id = {a.id: a for a in arms}
    stored: dict[int, Arm] = {}
    for chunk in _chunks(ids):
        stored.update((c, arms_by_id[a]) for c, a in Assignment.objects.filter(
            experiment=experiment, customer_id__in=chunk).values_list("customer_id", "arm_id"))
    decided: dict[int, tuple[Arm | None, str]] = {pk: (arm, "already assigned")
                                                  for pk, arm in stored.items()}
    pending = [(e, pk, consent) for e, (pk, consent) in customers.items() if pk not in stored]
    now = now or timezone.now()
    if experiment.status != Experiment.Status.RUNNING:
        reason = f"experiment is {experiment.status}, not running"
        decided.update((pk, (None, reason)) for _, pk, _ in pending)
        pending = []
    if pending and experiment.eligibility_segment_id:
        eligible: set[int] = set()
        members = segment_members(experiment.eligibility_segment.rule, as_of=now)
        for chunk in _chunks([pk for _, pk, _ in pending]):
            eligible.update(members.filter(pk__in=chunk).values_list("pk", flat=True))
        reason = f"not in eligibility segment {experiment.eligibility_segment.key}"
        decided.update((pk, (None, reason)) for _, pk, _ in pending if pk not in eligible)
        pending = [p for p in pending if p[1] in eligible]
    outside = "outside the experiment's traffic sample"
    for e, pk, _ in pending:
        if not in_traffic(experiment.salt, e, experiment.traffic_fraction):
            decided[pk] = (None, outside)
    pending = [p for p in pending if p[1] not in decided]
    if pending and experiment.layer:
        other: dict[int, str] = {}
        for chunk in _chunks([pk for _, pk, _ in pending]):
            other.update(Assignment.objects.filter(
                customer_id__in=chunk, experiment__layer=experiment.layer,
            ).exclude(experiment=experiment).values_list("customer_id", "experiment__key"))
        for pk, key in other.items():
            decided[pk] = (None, f"already in experiment {key} of layer {experiment.layer}")
        pending = [p for p in pending if p[1] not in other]
    if any(a.contacts_customer for a in arms):
        for _, pk, consent in pending:
            if not consent:
                decided[pk] = (None, "no marketing consent")
        pending = [p for p in pending if p[1] not in decided]
    weights = [a.weight for a in arms]
    chosen = {pk: arms[choose_arm(experiment.salt, e, weights)] for e, pk, _ in pending}
    created: set[int] = set()
    if chosen:
        with transaction.atomic():
            # As in assign_customer: a concurrent assignment keeps its row.
            Assignment.objects.bulk_create(
                [Assignment(experiment=experiment, customer_id=pk, arm=arm, assigned_at=now)
                 for pk, arm in chosen.items()], batch_size=2_000, ignore_conflicts=True)
        for chunk in _chunks(list(chosen)):
            for pk, arm_id, assigned_at in Assignment.objects.filter(
                experiment=experiment, customer_id__in=chunk,
            ).values_list("customer_id", "arm_id", "assigned_at"):
                mine = arm_id == chosen[pk].id and assigned_at == now
                decided[pk] = (arms_by_id[arm_id], "assigned" if mine else "already assigned")
                if mine:
                    created.add(pk)
    decisions = []
    for e in external_ids:
        pk = customers[e][0]
        arm, reason = decided[pk]
        decisions.append((e, arm, reason, pk in created))
    return BulkAssignmentResult(decisions, [])


def _chunks(values: Sequence, size: int = 5_000):
    """Slices of at most ``size``: SQLite caps the parameters of one query."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def conversions_record(*, experiment: Experiment, rows: Sequence[object], source: str = "api"):
    """Record conversion events for customers assigned in the experiment, all or nothing.

    Rows as for marketing.services.events_validate; ``kind`` defaults to the
    primary metric's event kind and must be one the experiment measures.
    Returns marketing.services.EventRecordResult.
    """
    from collections.abc import Mapping

    from core.db.lookups import values_matching
    from marketing.services import EventRecordResult, events_validate, events_write

    metrics = list(experiment.metrics.all())
    kinds = {m.event_kind for m in metrics}
    default_kind = next(m.event_kind for m in metrics if m.role == Metric.Role.PRIMARY)
    rows = [{"kind": default_kind, **row} if isinstance(row, Mapping) else row for row in rows]
    external_ids = sorted({r.get("customer") for r in rows
                           if isinstance(r, Mapping) and isinstance(r.get("customer"), str)
                           and "\x00" not in r.get("customer")})
    assigned = set(values_matching(
        Assignment.objects.filter(experiment=experiment).values_list(
            "customer__external_id", flat=True), "customer__external_id", external_ids))
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


