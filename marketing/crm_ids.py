"""Finding customers by the CRM's id, erased ones included.

Erasure replaces ``Customer.external_id`` with ``erased_external_id(id)``
(a keyed pseudonym, core.pseudonyms), so the database no longer holds the
CRM's id, yet the CRM can still name the customer: a later sync updates
the erased row (refusing personal data and consent) instead of creating a
new person, and its events stay attached without properties. Every lookup
by CRM id hashes the requested ids on the way in and matches both forms.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from core.db.lookups import values_matching
from core.pseudonyms import customer_pseudonym
from marketing.models import Customer

ERASED_PREFIX = "erased:"


def erased_external_id(external_id: str) -> str:
    """What an erased customer's ``external_id`` becomes; idempotent."""
    if external_id.startswith(ERASED_PREFIX):
        return external_id
    return ERASED_PREFIX + customer_pseudonym(external_id)


def crm_ids_lookup(queryset: QuerySet, external_ids: Iterable[object], *,
                   field: str = "external_id") -> dict[str, tuple]:
    """``{requested CRM id: rest of the row}`` for a values_list led by ``field``.

    Ids that are not strings, hold NUL or match nothing are left out.
    """
    wanted = {e for e in external_ids if isinstance(e, str) and "\x00" not in e}
    erased = {erased_external_id(e): e for e in wanted}
    found: dict[str, tuple] = {}
    for external_id, *rest in values_matching(queryset, field,
                                              sorted(wanted | erased.keys())):
        found[erased.get(external_id, external_id)] = tuple(rest)
    return found


def customer_by_crm_id(external_id: str) -> Customer | None:
    """The customer the CRM calls ``external_id`` (erased or not), or None."""
    return (Customer.objects.filter(external_id__in=[external_id, erased_external_id(external_id)])
            .order_by("erased_at").first())
