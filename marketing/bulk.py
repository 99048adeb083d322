"""The one fast path for writing many rows: COPY on PostgreSQL, batched
executemany on SQLite.

Used by the demo generator and imports, where Django's bulk_create spends
most of its time building model instances. Values go through each field's
own get_db_prep_save, so datetimes and JSON are stored exactly as the ORM
would store them. Callers run it inside a transaction for atomicity.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from itertools import islice

import pandas as pd
from django.db import connection, models

SQLITE_BATCH = 5_000


def _sqlite_datetime(value: datetime | None) -> str | None:
    # What Django's SQLite backend stores: naive UTC, str() format.
    if value is None:
        return None
    return str(value.astimezone(UTC).replace(tzinfo=None))


def _converter(field: models.Field) -> Callable | None:
    """A fast value -> database conversion for the column, or None for as-is.

    Equivalent to ``field.get_db_prep_save`` for the common types, without
    its per-call overhead (a million rows spend most of their time there).
    """
    kind = field.get_internal_type()
    if kind == "JSONField":
        encoder = field.encoder
        return lambda value: None if value is None else json.dumps(value, cls=encoder)
    if kind == "DateTimeField":
        return None if connection.vendor == "postgresql" else _sqlite_datetime
    if kind in {"DecimalField", "DateField", "TimeField", "UUIDField", "DurationField"}:
        db = connection  # resolve the proxy once

        return lambda value: field.get_db_prep_save(value, db)
    return None


def rows_insert(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert rows (tuples in ``columns`` order, by field attname); return the count."""
    fields = [model._meta.get_field(name) for name in columns]
    convert = [(i, c) for i, c in enumerate(_converter(f) for f in fields) if c is not None]

    def prepared(row: Sequence) -> Sequence:
        if not convert:
            return row
        out = list(row)
        for i, to_db in convert:
            out[i] = to_db(out[i])
        return out

    return _write(model, fields, (prepared(row) for row in rows))


def frame_insert(model: type[models.Model], frame: pd.DataFrame) -> int:
    """Insert a DataFrame whose columns are field attnames; return the row count.

    The columnar twin of ``rows_insert`` for writers that hold numpy columns
    (scoring): columns are converted once each, not value by value. JSON
    fields must hold JSON text already; missing values (None / NaN) become NULL.
    """
    fields = [model._meta.get_field(name) for name in frame.columns]
    columns = []
    for f in fields:
        series = frame[f.attname]
        if f.get_internal_type() == "DateTimeField":
            values = list(series.dt.to_pydatetime())
            to_db = _converter(f)
            values = [to_db(v) for v in values] if to_db else values
        elif series.isna().any():
            values = series.astype(object).where(series.notna(), None).tolist()
        else:
            values = series.tolist()
        columns.append(values)
    return _write(model, fields, zip(*columns, strict=True))


def _write(model: type[models.Model], fields: Sequence[models.Field],
           rows: Iterable[Sequence]) -> int:
    """Rows already in database form: COPY on PostgreSQL, executemany batches on SQLite."""
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    count = 0
    rows = iter(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY goes through the driver's own cursor; wrap_database_errors
            # turns its errors into Django's (IntegrityError and friends).
            with connection.wrap_database_errors, \
                    cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            return count
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"
        while batch := list(islice(rows, SQLITE_BATCH)):
            cursor.executemany(sql, batch)
            count += len(batch)
    return count
