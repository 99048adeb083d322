"""Erasure and export of one customer's data (GDPR articles 17 and 15/20).

Erasure wipes what identifies or describes the person and keeps what the
experiments counted, so that no published result changes after the fact:

- attributes declared ``is_personal`` are removed; the others (used by
  segments and per-segment analyses) stay;
- every event keeps its kind, time and value (outcomes, aggregates) and
  loses its free-form ``properties``;
- the attribute history (CustomerAttributeVersion) loses the personal
  attributes in every version, past ones included; versions that then no
  longer differ merge, so not even the time a personal value changed stays;
- the customer row, its CRM id and its assignments and exposures stay, so
  counts per arm do not move; ``erased_at`` is set and an ErasureRecord
  notes what was wiped (keys and counts, never values).

Afterwards events for the customer are stored without properties and
personal attributes are refused (see marketing.services).

Apps above marketing (experiments, modelling) hold data about customers too;
each registers a section for the export in its AppConfig.ready with
``personal_data_section_register``, so this module never imports them.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from marketing.attribute_history import customer_versions_scrub
from marketing.models import Customer, CustomerAttribute, ErasureRecord, Event

# Export sections of other apps: name -> function(customer) -> JSON-ready list.
_SECTIONS: dict[str, Callable[[Customer], list[dict]]] = {}


def personal_data_section_register(name: str, export: Callable[[Customer], list[dict]]) -> None:
    """Add ``name`` to every customer's data export (idempotent per name)."""
    _SECTIONS[name] = export


@transaction.atomic
def customer_erase(*, customer: Customer, requested_by: str = "") -> ErasureRecord:
    """Erase the customer's personal data; safe to repeat (each run is recorded)."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    personal = set(
        CustomerAttribute.objects.filter(is_personal=True).values_list("key", flat=True))
    now = timezone.now()
    # The current version holds what the row holds: scrubbed in place, no new version.
    in_history = customer_versions_scrub(customer.pk, personal)
    removed = sorted((personal & customer.attributes.keys()) | in_history)
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
    return {
        "customer": {
            "external_id": customer.external_id,
            "attributes": customer.attributes,
            "marketing_consent": customer.marketing_consent,
            "created_at": customer.created_at.isoformat(),
            "updated_at": customer.updated_at.isoformat(),
            "erased_at": customer.erased_at.isoformat() if customer.erased_at else None,
        },
        "attribute_history": [
            {"attributes": attributes, "marketing_consent": consent,
             "valid_from": valid_from.isoformat(),
             "valid_to": valid_to.isoformat() if valid_to else None}
            for attributes, consent, valid_from, valid_to in customer.attribute_versions
            .order_by("valid_from", "id")
            .values_list("attributes", "marketing_consent", "valid_from", "valid_to")
        ],
        "events": [
            {"kind": kind, "occurred_at": occurred_at.isoformat(), "value": value,
             "properties": properties, "source": source, "idempotency_key": key,
             "received_at": received_at.isoformat()}
            for kind, occurred_at, value, properties, source, key, received_at in
            Event.objects.filter(customer=customer).order_by("occurred_at", "id").values_list(
                "kind", "occurred_at", "value", "properties", "source", "idempotency_key",
                "received_at").iterator(chunk_size=2_000)
        ],
        "erasures": [
            {"erased_at": r.erased_at.isoformat(), "requested_by": r.requested_by,
             "attributes_removed": r.attributes_removed, "events_scrubbed": r.events_scrubbed}
            for r in customer.erasures.all()
        ],
        **{name: export(customer) for name, export in _SECTIONS.items()},
    }
