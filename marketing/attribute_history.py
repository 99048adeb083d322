"""Customer attribute and consent history: writing versions, and reading them as of a time.

See ``CustomerAttributeVersion`` for the table's meaning. Writers call, in the
transaction that writes the customer rows, ``customer_versions_copy`` (the
bulk upsert: copied from the rows it wrote), ``customer_versions_open`` for
new customers whose ids they hold (the demo, the Hillstrom import) and
``customer_versions_record`` for changed ones (single saves); erasure
scrubs them (``customer_versions_scrub``). readers
(features, segment rules, experiment breakdowns) select the version valid
at their cutoff with ``version_valid_sql`` / ``version_valid_q``, or, when
no version was closed after the cutoff, read the customer rows directly
(``attributes_current_at``): then every customer's current version was the
one valid at the cutoff, and the customer row holds it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import Q

from core.db.bulk import rows_insert
from marketing.models import Customer, CustomerAttributeVersion

VERSION_COLUMNS = ("customer_id", "attributes", "marketing_consent", "valid_from", "is_first")


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def customer_versions_open(rows: Iterable[tuple[int, dict, bool]], *, at: datetime,
                           first: bool) -> int:
    """Insert a current version (customer id, attributes, consent) per row, valid from ``at``.

    ``first``: the customers have no version yet (just created). Otherwise
    their current version must be closed first (``customer_versions_record``).
    Goes through core.db.bulk (COPY on PostgreSQL); returns the count.
    """
    return rows_insert(CustomerAttributeVersion, VERSION_COLUMNS,
                       ((pk, attributes, consent, at, first) for pk, attributes, consent in rows))


def customer_versions_close(customer_ids: Sequence[int], *, at: datetime) -> int:
    """End the current version of each customer at ``at``: one UPDATE for all of them."""
    if not customer_ids:
        return 0
    table = _q(CustomerAttributeVersion._meta.db_table)
    to = CustomerAttributeVersion._meta.get_field("valid_to").get_db_prep_save(at, connection)
    customers, params = _among("customer_id", customer_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET valid_to = %s WHERE valid_to IS NULL AND {customers}",
                       [to, *params])
        return cursor.rowcount


def customer_versions_record(changes: Sequence[tuple[int, dict, bool]], *, at: datetime) -> None:
    """Changed customers (id, new attributes, new consent): close each current version, open the new.

    Callers pass only customers whose attributes or consent changed: an
    unchanged customer gets no version.
    """
    if not changes:
        return
    customer_versions_close([pk for pk, _, _ in changes], at=at)
    customer_versions_open(changes, at=at, first=False)


def _among(column: str, values: Sequence) -> tuple[str, list]:
    """SQL: ``column`` is one of ``values``, with one parameter however many there are."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    # One JSON parameter: SQLite caps the number of parameters of a statement.
    return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(list(values))]


def customer_versions_copy(*, created: Sequence[str], changed: Sequence[int],
                           at: datetime) -> None:
    """The history of a bulk customer write, copied from the customer rows just written.

    ``created``: CRM ids of the customers just inserted (their first
    version); ``changed``: ids of those whose attributes or consent were
    just updated (their current version closed, a new one opened), all at
    ``at``. Two statements for any number of customers, the closing UPDATE
    and one INSERT ... SELECT: the new versions are copied inside the
    database from the rows the write left, so they equal them by
    construction, no row travels back to Python, and the ids of customers
    inserted by COPY need no read.
    """
    customer_versions_close(changed, at=at)
    customers = _q(Customer._meta.db_table)
    parts, params = [], []
    at_value = CustomerAttributeVersion._meta.get_field("valid_from").get_db_prep_save(
        at, connection)
    for values, column, first in ((created, "c.external_id", True), (changed, "c.id", False)):
        if values:
            condition, condition_params = _among(column, values)
            parts.append(f"SELECT c.id, c.attributes, c.marketing_consent, %s, %s "
                         f"FROM {customers} c WHERE {condition}")
            params += [at_value, first, *condition_params]
    if not parts:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_q(CustomerAttributeVersion._meta.db_table)} "
                       f"({', '.join(VERSION_COLUMNS)}) {' UNION ALL '.join(parts)}", params)


def attributes_current_at(as_of: datetime, *, low: int | None = None,
                          high: int | None = None) -> bool:
    """True when no version (of customers ``low..high``, inclusive) was closed after ``as_of``.

    Then each customer's current version, which the customer row holds, is
    the one valid at ``as_of``, so a reader can take the row as it is (the
    fast path for "now"). One probe of the index of closed versions.
    """
    closed = CustomerAttributeVersion.objects.filter(valid_to__gt=as_of)
    if low is not None:
        closed = closed.filter(customer_id__gte=low)
    if high is not None:
        closed = closed.filter(customer_id__lte=high)
    return not closed.exists()


def version_valid_q(as_of: datetime, prefix: str = "") -> Q:
    """Versions valid at ``as_of``: (valid_from <= t or first) and (valid_to NULL or > t)."""
    return ((Q(**{f"{prefix}valid_from__lte": as_of}) | Q(**{f"{prefix}is_first": True}))
            & (Q(**{f"{prefix}valid_to__isnull": True}) | Q(**{f"{prefix}valid_to__gt": as_of})))


def version_valid_sql(alias: str, as_of: datetime) -> tuple[str, list]:
    """SQL: the version row ``alias`` is the one valid at ``as_of`` (for a JOIN's ON clause)."""
    at = connection.ops.adapt_datetimefield_value(as_of)
    v = _q(alias)
    return (f"({v}.valid_from <= %s OR {v}.is_first) "
            f"AND ({v}.valid_to IS NULL OR {v}.valid_to > %s)", [at, at])


def version_join_sql(alias: str, customer_id: str, as_of: datetime) -> tuple[str, list]:
    """``LEFT JOIN`` of each customer's version valid at ``as_of``, as ``alias``."""
    condition, params = version_valid_sql(alias, as_of)
    table = _q(CustomerAttributeVersion._meta.db_table)
    return (f"LEFT JOIN {table} {_q(alias)} ON {_q(alias)}.customer_id = {customer_id} "
            f"AND {condition}", params)


def customer_versions_scrub(customer_id: int, keys: set[str]) -> set[str]:
    """Remove attributes ``keys`` from every version of the customer; return the keys found.

    Neighbouring versions that no longer differ become one (the earlier one
    takes the later one's end), so the history does not even show when a
    removed value changed. A single customer's versions are few: read here.
    """
    versions = list(CustomerAttributeVersion.objects.filter(customer_id=customer_id)
                    .order_by("valid_from", "id"))
    found: set[str] = set()
    kept: list[CustomerAttributeVersion] = []
    dropped: list[int] = []
    for version in versions:
        found |= keys & version.attributes.keys()
        version.attributes = {k: v for k, v in version.attributes.items() if k not in keys}
        previous = kept[-1] if kept else None
        if (previous is not None and previous.attributes == version.attributes
                and previous.marketing_consent == version.marketing_consent):
            previous.valid_to = version.valid_to
            dropped.append(version.id)
        else:
            kept.append(version)
    # Delete first: the merged version may become the current one.
    CustomerAttributeVersion.objects.filter(id__in=dropped).delete()
    CustomerAttributeVersion.objects.bulk_update(kept, ["attributes", "valid_to"])
    return found
