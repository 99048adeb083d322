"""Erasure and export of one customer's data (GDPR articles 17 and 15/20).

Erasure wipes what identifies or describes the person and keeps what the
experiments counted, so that no published result changes after the fact:

- the CRM id becomes ``erased:<keyed pseudonym>`` (marketing.crm_ids): the
  database no longer holds it, and the CRM can still name the customer
  (a later sync finds the erased row instead of creating the person again);
- attributes declared ``is_personal`` are removed; the others (used by
  segments and per-segment analyses) stay;
- every event keeps its kind, time and value (outcomes, aggregates) and
  loses its free-form ``properties``; idempotency keys are stored keyed-
  hashed from the start (core.pseudonyms), so none needs rewriting;
- the attribute history (CustomerAttributeVersion) loses the personal
  attributes in every version, past ones included; versions that then no
  longer differ merge, so not even the time a personal value changed stays;
- marketing consent becomes false for good (recorded in ConsentChange);
- Django's admin log names the customer by row id only: its entries about
  the customer get that text too, in case older ones held the CRM id;
- the customer row and its assignments and exposures stay, now linked to
  nobody, so counts per arm and every analysis stay identical;
  ``erased_at`` is set and an ErasureRecord notes what was wiped (keys and
  counts, never values).

Afterwards the customer is never assigned, scored or listed again; events
for them are stored without properties; personal attributes and consent
are refused (see marketing.services).

Apps above marketing (experiments, modelling) hold data about customers
too; each registers a section for the export with
``personal_data_section_register`` and what erasure must delete (scores,
targeting entries) with ``personal_data_eraser_register``, in its
AppConfig.ready, so this module never imports them.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.pseudonyms import customer_pseudonym
from marketing.attribute_history import customer_versions_copy, customer_versions_scrub
from marketing.consent import consent_changes_apply, customer_consent_history, customers_lock
from marketing.crm_ids import ERASED_PREFIX, erased_external_id
from marketing.models import (
    ClusterMembership,
    Customer,
    CustomerAttribute,
    CustomerPrediction,
    ErasureRecord,
    Event,
)

# Export sections of other apps: name -> function(customer) -> JSON-ready list.
_SECTIONS: dict[str, Callable[[Customer], list[dict]]] = {}
# Erasure steps of other apps: name -> function(customer) -> rows deleted.
_ERASERS: dict[str, Callable[[Customer], int]] = {}


def personal_data_section_register(name: str, export: Callable[[Customer], list[dict]]) -> None:
    """Add ``name`` to every customer's data export (idempotent per name)."""
    _SECTIONS[name] = export


def personal_data_eraser_register(name: str, erase: Callable[[Customer], int]) -> None:
    """Run ``erase(customer)`` inside every erasure (idempotent per name)."""
    _ERASERS[name] = erase


def customer_label(customer: Customer) -> str:
    """How audit entries and logs name a customer: never by the CRM id."""
    external_id = customer.external_id
    if external_id.startswith(ERASED_PREFIX):
        return f"customer pseudonym {external_id.removeprefix(ERASED_PREFIX)}"
    return f"customer pseudonym {customer_pseudonym(external_id)}"


@transaction.atomic
def customer_erase(*, customer: Customer, requested_by: str = "", request=None, user=None,
                   system: str = "") -> ErasureRecord:
    """Erase the customer's personal data; safe to repeat (each run is recorded).

    The audit log gets one entry naming the customer by pseudonym, its
    actor from ``request`` (API key or admin user), ``user`` or ``system``.
    """
    now = timezone.now()
    locked = customers_lock([customer.pk])
    customer = Customer.objects.get(pk=customer.pk)
    personal = set(
        CustomerAttribute.objects.filter(is_personal=True).values_list("key", flat=True))
    # The current version holds what the row holds: scrubbed in place, no new version.
    in_history = customer_versions_scrub(customer.pk, personal)
    removed = sorted((personal & customer.attributes.keys()) | in_history)
    customer.attributes = {k: v for k, v in customer.attributes.items() if k not in personal}
    customer.external_id = erased_external_id(customer.external_id)
    customer.erased_at = customer.erased_at or now
    customer.save(update_fields=["external_id", "attributes", "erased_at", "updated_at"])
    # Consent withdrawn as the newest decision there is; the history gets a
    # version from now, so readers as of earlier cutoffs still see what was.
    if consent_changes_apply([(customer.pk, False, max(now, locked[customer.pk][1] or now))],
                             locked, source="erasure", now=now):
        customer_versions_copy(created=[], changed=[customer.pk], at=now)
    scrubbed = Event.objects.filter(customer=customer).exclude(properties={}).update(properties={})
    LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Customer),
                            object_id=str(customer.pk)).update(object_repr=str(customer))
    # Behaviour scores and learned-cluster places are derived rows: deleted, and
    # never written again (erased customers are neither scored nor clustered).
    derived = (CustomerPrediction.objects.filter(customer=customer).delete()[0]
               + ClusterMembership.objects.filter(customer=customer).delete()[0]
               + sum(erase(customer) for erase in _ERASERS.values()))
    audit_record("erase", customer_label(customer), request=request, user=user,
                 system=system or "erasure",
                 detail={"attributes_removed": removed, "events_scrubbed": scrubbed,
                         "derived_rows_deleted": derived})
    return ErasureRecord.objects.create(
        customer=customer, erased_at=now, requested_by=requested_by[:128],
        attributes_removed=removed, events_scrubbed=scrubbed,
    )


def customer_data_export(*, customer: Customer, request=None, user=None,
                         system: str = "") -> dict:
    """Everything stored about the customer, as JSON-ready data; audit-logged by pseudonym."""
    audit_record("export", customer_label(customer), request=request, user=user,
                 system=system or "export")
    return {
        "customer": {
            "external_id": customer.external_id,
            "attributes": customer.attributes,
            "marketing_consent": customer.marketing_consent,
            "consent_changed_at": (customer.consent_changed_at.isoformat()
                                   if customer.consent_changed_at else None),
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
        "consent_history": customer_consent_history(customer),
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
