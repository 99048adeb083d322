"""The one fast path for writing many rows: binary COPY on PostgreSQL,
batched executemany on SQLite.

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
        if f.get_internal_type() == "JSONField" and connection.vendor == "postgresql":
            values = [_jsonb_binary(v) for v in values]
        columns.append(values)
    return _write(model, fields, zip(*columns, strict=True), json_ready=True)


# Column types as psycopg names them, by the start of Django's db_type.
_PG_TYPES = {"bigint": "int8", "bigserial": "int8", "integer": "int4", "serial": "int4",
             "smallint": "int2", "double precision": "float8", "real": "float4",
             "boolean": "bool", "varchar": "text", "text": "text", "jsonb": "jsonb",
             "timestamp with time zone": "timestamptz", "date": "date", "numeric": "numeric",
             "uuid": "uuid", "interval": "interval"}


def _pg_type(field: models.Field) -> str:
    db_type = field.db_type(connection).split("(")[0].strip()
    if db_type not in _PG_TYPES:
        raise TypeError(f"bulk insert: no binary COPY type for {field.name} ({db_type})")
    return _PG_TYPES[db_type]


def _jsonb_binary(text: str | None) -> bytes | None:
    # PostgreSQL's binary jsonb is a version byte (1) and the JSON text. Sent
    # as raw bytes it needs no per-value adapter object; the server parses it.
    return None if text is None else b"\x01" + text.encode()


def _write(model: type[models.Model], fields: Sequence[models.Field],
           rows: Iterable[Sequence], *, json_ready: bool = False) -> int:
    """Rows already in database form: COPY on PostgreSQL, executemany batches on SQLite.

    JSON values are text, or with ``json_ready`` already ``_jsonb_binary`` bytes.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    count = 0
    rows = iter(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Binary COPY: numbers and times travel in their binary form, with
            # no text formatting in Python or parsing in the server. It goes
            # through the driver's own cursor; wrap_database_errors turns its
            # errors into Django's (IntegrityError and friends).
            types = [_pg_type(f) for f in fields]
            json_columns = [] if json_ready else [i for i, t in enumerate(types) if t == "jsonb"]
            with connection.wrap_database_errors, cursor.cursor.copy(
                    f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["bytea" if t == "jsonb" else t for t in types])
                for row in rows:
                    if json_columns:
                        row = list(row)
                        for i in json_columns:
                            row[i] = _jsonb_binary(row[i])
                    copy.write_row(row)
                    count += 1
            return count
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"
        while batch := list(islice(rows, SQLITE_BATCH)):
            cursor.executemany(sql, batch)
            count += len(batch)
    return count
