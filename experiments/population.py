"""Assigning a population the caller chose, by the same arm hash as everywhere.

``assign_segment`` enrols whoever the experiment's eligibility segment names.
Some experiments are run on a population no segment rule can express (for a
targeting follow-up: the customers a model version scored); the caller then
passes that population as a customer queryset. Each customer's arm is
``experiments.hashing.choose_arm(salt, external_id, weights)`` and a stored
assignment wins, as in ``experiments.assignment``; the experiment must be
running, and the layer and consent rules apply as there.

The traffic sample is not applied: the caller chose the population. Such an
experiment is created with ``traffic_fraction = 0`` so that the one-customer
and bulk assignment rules (rule 4, the traffic sample) enrol nobody else,
while they still answer "already assigned" with the stored arm for the
population: the experiment's customers are exactly the ones written here.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from core.db.bulk import rows_insert
from experiments.assignment import BatchAssignmentResult
from experiments.hashing import choose_arm
from experiments.models import Assignment, Experiment
from marketing.models import Customer


def assign_population(
    *, experiment: Experiment, customers: QuerySet[Customer], now: datetime | None = None,
    chunk_size: int = 20_000,
) -> BatchAssignmentResult:
    """Assign every customer of ``customers`` not yet assigned, a chunk at a time.

    Keyset paging by customer id bounds memory by ``chunk_size``; each chunk is
    one transaction, so an interrupted run resumes where it stopped.
    """
    if experiment.status != Experiment.Status.RUNNING:
        raise ValueError(f"experiment {experiment.key} is {experiment.status}, not running")
    now = now or timezone.now()
    arms = list(experiment.arms.order_by("id"))
    weights = [a.weight for a in arms]
    needs_consent = any(a.contacts_customer for a in arms)
    candidates = customers.filter(erased_at__isnull=True).annotate(
        _assigned=Exists(Assignment.objects.filter(experiment=experiment,
                                                   customer=OuterRef("pk"))))
    fields = ["id", "external_id", "marketing_consent", "_assigned"]
    if experiment.layer:
        candidates = candidates.annotate(_other_layer=Exists(Assignment.objects.filter(
            customer=OuterRef("pk"), experiment__layer=experiment.layer,
        ).exclude(experiment=experiment)))
        fields.append("_other_layer")
    counts = dict(considered=0, assigned=0, already_assigned=0, outside_traffic=0,
                  no_consent=0, other_layer_experiment=0)
    last_id = 0
    while True:
        chunk = list(candidates.filter(id__gt=last_id).order_by("id")
                     .values_list(*fields)[:chunk_size])
        if not chunk:
            break
        last_id = chunk[-1][0]
        rows = []
        for customer_id, external_id, consent, assigned, *other_layer in chunk:
            counts["considered"] += 1
            if assigned:
                counts["already_assigned"] += 1
            elif other_layer and other_layer[0]:
                counts["other_layer_experiment"] += 1
            elif needs_consent and not consent:
                counts["no_consent"] += 1
            else:
                arm = arms[choose_arm(experiment.salt, external_id, weights)]
                rows.append((experiment.id, customer_id, arm.id, now))
        with transaction.atomic():
            counts["assigned"] += rows_insert(
                Assignment, ["experiment_id", "customer_id", "arm_id", "assigned_at"], rows)
    return BatchAssignmentResult(**counts)
