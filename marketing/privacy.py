"""Erasure and export of one customer's data (GDPR articles 17 and 15/20).

Erasure wipes what identifies or describes the person and keeps what the
experiments counted, so that no published result changes after the fact:

- attributes declared ``is_personal`` are removed; the others (used by
  segments and per-segment analyses) stay;
- every event keeps its kind, time and value (outcomes, aggregates) and
  loses its free-form ``properties``;
- the customer row, its CRM id and its assignments and exposures stay, so
  counts per arm do not move; ``erased_at`` is set and an ErasureRecord
  notes what was wiped (keys and counts, never values).

Afterwards events for the customer are stored without properties and
personal attributes are refused (see marketing.services).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from experiments.models import Assignment, CustomerScore, Exposure, TargetingEntry
from marketing.models import Customer, CustomerAttribute, ErasureRecord, Event


@transaction.atomic
def customer_erase(*, customer: Customer, requested_by: str = "") -> ErasureRecord:
    """Erase the customer's personal data; safe to repeat (each run is recorded)."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    personal = set(
        CustomerAttribute.objects.filter(is_personal=True).values_list("key", flat=True))
    removed = sorted(personal & customer.attributes.keys())
    now = timezone.now()
    customer.attributes = {k: v for k, v in customer.attributes.items() if k not in personal}
    customer.erased_at = customer.erased_at or now
    customer.save(update_fields=["attributes", "erased_at", "updated_at"])
    scrubbed = Event.objects.filter(customer=customer).exclude(properties={}).update(properties={})
    return ErasureRecord.objects.create(
        customer=customer, erased_at=now, requested_by=requested_by[:128],
        attributes_removed=removed, events_scrubbed=scrubbed,
    )


def customer_data_export(*, customer: Customer) -> dict:
    """Everything stored about the customer, as JSON-ready data."""
    assignments = (Assignment.objects.filter(customer=customer)
                   .select_related("experiment", "arm").order_by("assigned_at", "id"))
    exposures = (Exposure.objects.filter(assignment__customer=customer)
                 .select_related("assignment__experiment").order_by("exposed_at", "id"))
    return {
        "customer": {
            "external_id": customer.external_id,
            "attributes": customer.attributes,
            "marketing_consent": customer.marketing_consent,
            "created_at": customer.created_at.isoformat(),
            "updated_at": customer.updated_at.isoformat(),
            "erased_at": customer.erased_at.isoformat() if customer.erased_at else None,
        },
        "events": [
            {"kind": kind, "occurred_at": occurred_at.isoformat(), "value": value,
             "properties": properties, "source": source, "idempotency_key": key,
             "received_at": received_at.isoformat()}
            for kind, occurred_at, value, properties, source, key, received_at in
            Event.objects.filter(customer=customer).order_by("occurred_at", "id").values_list(
                "kind", "occurred_at", "value", "properties", "source", "idempotency_key",
                "received_at").iterator(chunk_size=2_000)
        ],
        "assignments": [
            {"experiment": a.experiment.key, "arm": a.arm.name,
             "assigned_at": a.assigned_at.isoformat()}
            for a in assignments
        ],
        "exposures": [
            {"experiment": e.assignment.experiment.key, "exposed_at": e.exposed_at.isoformat(),
             "idempotency_key": e.idempotency_key}
            for e in exposures
        ],
        "erasures": [
            {"erased_at": r.erased_at.isoformat(), "requested_by": r.requested_by,
             "attributes_removed": r.attributes_removed, "events_scrubbed": r.events_scrubbed}
            for r in customer.erasures.all()
        ],
        # Model predictions about the customer and the contact lists they were put on.
        "scores": [
            {"model_version": version_id, "campaign": campaign, "kind": kind,
             "uplift": uplift, "best_arm": best_arm, "uplift_by_arm": uplift_by_arm,
             "response": response, "scored_at": scored_at.isoformat()}
            for version_id, campaign, kind, uplift, best_arm, uplift_by_arm, response, scored_at
            in CustomerScore.objects.of_customer(customer).order_by("model_version_id")
            .values_list("model_version_id", "model_version__campaign__key",
                         "model_version__kind", "uplift", "best_arm", "uplift_by_arm",
                         "response", "scored_at")
        ],
        "targeting_entries": [
            {"targeting_list": list_id, "campaign": campaign,
             "created_at": created_at.isoformat(), "rank": rank, "arm": arm, "uplift": uplift,
             "expected_profit": expected_profit}
            for list_id, campaign, created_at, rank, arm, uplift, expected_profit
            in TargetingEntry.objects.filter(customer=customer).order_by("targeting_list_id")
            .values_list("targeting_list_id", "targeting_list__campaign__key",
                         "targeting_list__created_at", "rank", "arm", "uplift",
                         "expected_profit")
        ],
    }
