"""Marketing consent: changed atomically, in the order it was decided, with its history.

A withdrawal must never be undone by a write that was decided before it
but arrives, or commits, after it (a CRM sync racing the unsubscribe page;
a retried batch from yesterday). So:

- a write that does not carry consent never writes the consent column
  (attribute syncs leave it alone, whatever they read before);
- a write that carries consent has a time, ``decided_at``: the sender's
  ``marketing_consent_at`` when given, else when the platform received the
  write. The customer row keeps the time of its consent
  (``Customer.consent_changed_at``) and a change decided before it is not
  applied: the newest decision wins, whichever commits last;
- the rows are locked (``SELECT ... FOR UPDATE``, in id order, so two
  writers cannot deadlock on each other's rows) and compared and written
  in the same transaction as the rest of the customer write;
- every applied change adds a ConsentChange row (value, when, from where),
  which the customer's data export shows.

An erased customer's consent is false for good (marketing.privacy).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from core.db.bulk import rows_insert
from marketing.models import ConsentChange, Customer

# (customer id, consent, decided_at)
ConsentWrite = tuple[int, bool, datetime]


def customers_lock(customer_ids: Sequence[int]) -> dict[int, tuple[bool, datetime | None, bool]]:
    """Lock the customer rows (in id order) for this transaction: {id: (consent, consent time, erased)}.

    On SQLite the write transaction already excludes other writers.
    """
    if not customer_ids:
        return {}
    rows = Customer.objects.order_by("pk")
    if connection.vendor == "postgresql":
        rows = rows.select_for_update()
    ids = sorted(set(customer_ids))
    locked = {}
    for start in range(0, len(ids), 5_000):  # SQLite caps the parameters of a query
        chunk = ids[start:start + 5_000]
        locked.update((pk, (consent, at, erased_at is not None))
                      for pk, consent, at, erased_at in rows.filter(pk__in=chunk).values_list(
                          "pk", "marketing_consent", "consent_changed_at", "erased_at"))
    return locked


def consent_changes_apply(writes: Sequence[ConsentWrite],
                          locked: dict[int, tuple[bool, datetime | None, bool]], *,
                          source: str, now: datetime) -> list[int]:
    """Apply the consent writes not older than the stored decision; return the ids whose value changed.

    ``locked`` is ``customers_lock``'s answer for these customers, taken in
    the current transaction. A write of the stored value with a newer time
    moves the time forward (an older contrary write stays refused) and adds
    no history row. An erased customer's consent stays false, whatever the time.
    """
    apply: list[tuple[int, bool, datetime]] = []
    changed: list[int] = []
    for pk, consent, decided_at in writes:
        stored, stored_at, erased = locked[pk]
        if consent and erased:
            continue
        if stored_at is not None and decided_at < stored_at:
            continue  # decided before the stored consent: not applied
        if consent != stored:
            changed.append(pk)
            apply.append((pk, consent, decided_at))
        elif stored_at is None or decided_at > stored_at:
            apply.append((pk, consent, decided_at))
    if apply:
        _consent_write(apply, now)
    if changed:
        applied = {pk: (consent, at) for pk, consent, at in apply}
        rows_insert(ConsentChange, ["customer_id", "consent", "decided_at", "recorded_at",
                                    "source"],
                    [(pk, applied[pk][0], applied[pk][1], now, source[:160]) for pk in changed])
    return changed


def consent_history_start(created: Sequence[str], *, source: str, now: datetime) -> None:
    """History rows for customers just created with a consent value, by CRM id.

    One INSERT ... SELECT from the rows just written (as
    marketing.attribute_history does): no id travels back to Python.
    """
    if not created:
        return
    q = connection.ops.quote_name
    if connection.vendor == "postgresql":
        among, values = "c.external_id = ANY(%s)", [list(created)]
    else:  # one JSON parameter: SQLite caps the parameters of a statement
        among, values = "c.external_id IN (SELECT value FROM json_each(%s))", [json.dumps(
            list(created))]
    recorded = ConsentChange._meta.get_field("recorded_at").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {q(ConsentChange._meta.db_table)} "
            "(customer_id, consent, decided_at, recorded_at, source) "
            f"SELECT c.id, c.marketing_consent, c.consent_changed_at, %s, %s "
            f"FROM {q(Customer._meta.db_table)} c WHERE {among}",
            [recorded, source[:160], *values])


def _consent_write(rows: list[tuple[int, bool, datetime]], now: datetime) -> None:
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS c SET marketing_consent = v.consent, "
                "consent_changed_at = v.at, updated_at = %s "
                "FROM unnest(%s::bigint[], %s::boolean[], %s::timestamptz[]) AS v(id, consent, at) "
                "WHERE c.id = v.id",
                [now, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]])
        else:
            field = Customer._meta.get_field("updated_at")
            prep = lambda value: field.get_db_prep_save(value, connection)  # noqa: E731
            cursor.executemany(
                f"UPDATE {table} SET marketing_consent = %s, consent_changed_at = %s, "
                "updated_at = %s WHERE id = %s",
                [(consent, prep(at), prep(now), pk) for pk, consent, at in rows])


def customer_consent_history(customer: Customer) -> list[dict]:
    """The customer's consent changes, oldest first, for the data export."""
    return [{"consent": consent, "decided_at": decided_at.isoformat(),
             "recorded_at": recorded_at.isoformat(), "source": source}
            for consent, decided_at, recorded_at, source in customer.consent_changes
            .order_by("decided_at", "id")
            .values_list("consent", "decided_at", "recorded_at", "source")]
