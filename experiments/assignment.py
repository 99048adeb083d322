"""Assigning customers to arms: one customer at a time or a whole segment.

The arm itself comes from experiments.hashing (a pure function); this module
adds the rules around it, in this order, each giving a reason when it says no:

1. the experiment must be running;
2. a stored assignment wins (so weight changes never reshuffle anyone);
3. the customer must be in the eligibility segment (as of now);
4. the customer must fall in the traffic sample;
5. mutual exclusion: no assignment in another experiment of the same layer;
6. consent: a customer without marketing consent is not enrolled in an
   experiment that has any contact arm. Sending them all to control instead
   would make control differ from treatment by consent, biasing the effect.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.db.bulk import rows_insert
from experiments.hashing import choose_arm, in_traffic
from experiments.models import Arm, Assignment, Experiment
from marketing.models import Customer
from marketing.segment_rules import segment_members


@dataclass(frozen=True)
class AssignmentDecision:
    arm: Arm | None
    reason: str
    created: bool = False
    assignment: Assignment | None = None


@dataclass(frozen=True)
class BatchAssignmentResult:
    considered: int
    assigned: int
    already_assigned: int
    outside_traffic: int
    no_consent: int
    other_layer_experiment: int


def _arms(experiment: Experiment) -> list[Arm]:
    return list(experiment.arms.order_by("id"))


def _layer_conflict(experiment: Experiment):
    """Subquery: the customer holds an assignment in another experiment of this layer."""
    return Exists(Assignment.objects.filter(
        customer=OuterRef("pk"), experiment__layer=experiment.layer,
    ).exclude(experiment=experiment))


def assign_customer(
    *, experiment: Experiment, customer: Customer, now: datetime | None = None
) -> AssignmentDecision:
    """Return the customer's arm (creating the assignment) or the reason for none."""
    stored = Assignment.objects.filter(experiment=experiment, customer=customer).select_related(
        "arm").first()
    if stored:
        return AssignmentDecision(stored.arm, "already assigned", assignment=stored)
    if experiment.status != Experiment.Status.RUNNING:
        return AssignmentDecision(None, f"experiment is {experiment.status}, not running")
    now = now or timezone.now()
    if experiment.eligibility_segment_id:
        rule = experiment.eligibility_segment.rule
        if not segment_members(rule, as_of=now).filter(pk=customer.pk).exists():
            return AssignmentDecision(
                None, f"not in eligibility segment {experiment.eligibility_segment.key}")
    if not in_traffic(experiment.salt, customer.external_id, experiment.traffic_fraction):
        return AssignmentDecision(None, "outside the experiment's traffic sample")
    if experiment.layer:
        other = (Assignment.objects.filter(customer=customer, experiment__layer=experiment.layer)
                 .exclude(experiment=experiment).select_related("experiment").first())
        if other:
            return AssignmentDecision(
                None, f"already in experiment {other.experiment.key} of layer {experiment.layer}")
    arms = _arms(experiment)
    if not customer.marketing_consent and any(a.contacts_customer for a in arms):
        return AssignmentDecision(None, "no marketing consent")
    arm = arms[choose_arm(experiment.salt, customer.external_id, [a.weight for a in arms])]
    with transaction.atomic():
        # A concurrent request may have assigned the customer meanwhile: the
        # unique constraint keeps one row and both callers return that row.
        Assignment.objects.bulk_create(
            [Assignment(experiment=experiment, customer=customer, arm=arm, assigned_at=now)],
            ignore_conflicts=True,
        )
    saved = Assignment.objects.select_related("arm").get(experiment=experiment, customer=customer)
    created = saved.arm_id == arm.id and saved.assigned_at == now
    return AssignmentDecision(saved.arm, "assigned" if created else "already assigned",
                              created=created, assignment=saved)


def _candidate_chunks(experiment: Experiment, now: datetime, chunk_size: int) -> Iterator[list]:
    """Eligible customers in primary-key order, a chunk at a time (keyset paging)."""
    if experiment.eligibility_segment_id:
        customers = segment_members(experiment.eligibility_segment.rule, as_of=now)
    else:
        customers = Customer.objects.all()
    customers = customers.annotate(
        _assigned=Exists(Assignment.objects.filter(experiment=experiment, customer=OuterRef("pk"))),
    )
    if experiment.layer:
        customers = customers.annotate(_other_layer=_layer_conflict(experiment))
    fields = ["id", "external_id", "marketing_consent", "_assigned"]
    if experiment.layer:
        fields.append("_other_layer")
    last_id = 0
    while True:
        chunk = list(customers.filter(id__gt=last_id).order_by("id").values_list(*fields)[:chunk_size])
        if not chunk:
            return
        yield chunk
        last_id = chunk[-1][0]


def assign_segment(
    *, experiment: Experiment, now: datetime | None = None, chunk_size: int = 20_000,
) -> BatchAssignmentResult:
    """Assign every eligible customer not yet assigned, in chunks.

    Memory is bounded by ``chunk_size``; each chunk is one transaction, so an
    interrupted run resumes where it stopped when called again.
    """
    if experiment.status != Experiment.Status.RUNNING:
        raise ValueError(f"experiment {experiment.key} is {experiment.status}, not running")
    now = now or timezone.now()
    arms = _arms(experiment)
    weights = [a.weight for a in arms]
    needs_consent = any(a.contacts_customer for a in arms)
    counts = dict(considered=0, assigned=0, already_assigned=0, outside_traffic=0,
                  no_consent=0, other_layer_experiment=0)
    for chunk in _candidate_chunks(experiment, now, chunk_size):
        rows = []
        for customer_id, external_id, consent, assigned, *other_layer in chunk:
            counts["considered"] += 1
            if assigned:
                counts["already_assigned"] += 1
            elif not in_traffic(experiment.salt, external_id, experiment.traffic_fraction):
                counts["outside_traffic"] += 1
            elif other_layer and other_layer[0]:
                counts["other_layer_experiment"] += 1
            elif needs_consent and not consent:
                counts["no_consent"] += 1
            else:
                arm = arms[choose_arm(experiment.salt, external_id, weights)]
                rows.append((experiment.id, customer_id, arm.id, now))
        with transaction.atomic():
            counts["assigned"] += _insert_assignments(rows)
    return BatchAssignmentResult(**counts)


def _insert_assignments(rows: list[tuple]) -> int:
    # COPY on PostgreSQL; a customer assigned concurrently by assign_customer
    # makes the chunk fail on the unique constraint and a re-run resumes.
    return rows_insert(Assignment, ["experiment_id", "customer_id", "arm_id", "assigned_at"], rows)
