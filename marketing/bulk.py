"""The one fast path for writing many rows: COPY on PostgreSQL, batched
executemany on SQLite.

Used by the demo generator and imports, where Django's bulk_create spends
most of its time building model instances. Values go through each field's
own get_db_prep_save, so datetimes and JSON are stored exactly as the ORM
would store them. Callers run it inside a transaction for atomicity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice

from django.db import connection, models

SQLITE_BATCH = 5_000


def rows_insert(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert rows (tuples in ``columns`` order, by field attname); return the count."""
    fields = [model._meta.get_field(name) for name in columns]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    # Only fields whose Python value differs from the driver's value need a
    # conversion; skipping the rest keeps a million rows fast.
    convert = [
        (i, f) for i, f in enumerate(fields)
        if f.get_internal_type() in {"DateTimeField", "JSONField", "DecimalField", "DateField"}
    ]

    def prepared(row: Sequence) -> Sequence:
        if not convert:
            return row
        out = list(row)
        for i, field in convert:
            out[i] = field.get_db_prep_save(out[i], connection)
        return out

    count = 0
    rows = iter(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(prepared(row))
                    count += 1
            return count
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"
        while batch := [prepared(r) for r in islice(rows, SQLITE_BATCH)]:
            cursor.executemany(sql, batch)
            count += len(batch)
    return count
