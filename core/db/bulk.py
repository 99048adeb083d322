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

import numpy as np
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
    (scoring). On PostgreSQL the COPY data is assembled column by column in
    numpy (``_copy_frame``), with no Python work per row. JSON fields must
    hold JSON text already; missing values (None / NaN) become NULL.
    """
    fields = [model._meta.get_field(name) for name in frame.columns]
    if connection.vendor == "postgresql":
        return _copy_frame(model, fields, frame)
    columns = []
    for f in fields:
        series = frame[f.attname]
        if f.get_internal_type() == "DateTimeField":
            values = [_sqlite_datetime(v) for v in series.dt.to_pydatetime()]
        elif series.isna().any():
            values = series.astype(object).where(series.notna(), None).tolist()
        else:
            values = series.tolist()
        columns.append(values)
    return _write(model, fields, zip(*columns, strict=True))


# Column types as psycopg names them, by the start of Django's db_type.
_PG_TYPES = {"bigint": "int8", "bigserial": "int8", "integer": "int4", "serial": "int4",
             "smallint": "int2", "double precision": "float8", "real": "float4",
             "boolean": "bool", "varchar": "text", "text": "text", "jsonb": "jsonb",
             "timestamp with time zone": "timestamptz", "date": "date", "numeric": "numeric",
             "uuid": "uuid", "interval": "interval", "bytea": "bytea"}


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
           rows: Iterable[Sequence]) -> int:
    """Rows already in database form: COPY on PostgreSQL, executemany batches on SQLite."""
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
            json_columns = [i for i, t in enumerate(types) if t == "jsonb"]
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


# Binary COPY: signature, flags and header extension length; the trailer is int16 -1.
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = b"\xff\xff"
_FIXED_WIDTH = {"int8": ">i8", "int4": ">i4", "int2": ">i2", "float8": ">f8", "bool": "u1",
                "timestamptz": ">i8"}
_PG_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")  # timestamptz counts microseconds from it


def _encode_column(series: pd.Series, pg_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column in binary COPY form: (NULL mask, byte length of each non-NULL value,
    the non-NULL values' bytes back to back)."""
    null = series.isna().to_numpy()
    present = series[~null]
    if pg_type in _FIXED_WIDTH:
        if pg_type == "timestamptz":
            present = (present - _PG_EPOCH) // pd.Timedelta(microseconds=1)
        values = present.to_numpy().astype(_FIXED_WIDTH[pg_type])
        width = values.dtype.itemsize
        return null, np.full(values.size, width), values.view(np.uint8)
    if pg_type not in {"text", "jsonb"}:
        raise TypeError(f"frame_insert: no binary encoding for {pg_type}")
    encode = _jsonb_binary if pg_type == "jsonb" else str.encode
    encoded = [encode(value) for value in present.tolist()]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    return null, lengths, np.frombuffer(b"".join(encoded), dtype=np.uint8)


def _place(out: np.ndarray, starts: np.ndarray, lengths: np.ndarray, data: np.ndarray) -> None:
    """Copy consecutive pieces of ``data`` (``lengths`` bytes each) to ``out[starts[i]:]``."""
    shift = starts - np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out[np.repeat(shift, lengths) + np.arange(data.size)] = data


def _copy_frame(model: type[models.Model], fields: Sequence[models.Field],
                frame: pd.DataFrame) -> int:
    """Binary COPY of a frame, its rows laid out by numpy: every row is a field count,
    then per field a 4-byte length (-1 for NULL) and the value's bytes."""
    n = len(frame)
    if not n:
        return 0
    columns = [_encode_column(frame[f.attname], _pg_type(f)) for f in fields]
    sizes = np.zeros((n, len(fields)), dtype=np.int64)  # bytes of each field, length included
    for k, (null, lengths, _) in enumerate(columns):
        sizes[:, k] = 4
        sizes[~null, k] += lengths
    row_sizes = 2 + sizes.sum(axis=1)
    starts = len(_SIGNATURE) + np.concatenate([[0], np.cumsum(row_sizes)[:-1]])
    out = np.empty(len(_SIGNATURE) + int(row_sizes.sum()) + len(_TRAILER), dtype=np.uint8)
    out[:len(_SIGNATURE)] = np.frombuffer(_SIGNATURE, dtype=np.uint8)
    out[-len(_TRAILER):] = np.frombuffer(_TRAILER, dtype=np.uint8)
    field_count = np.full(n, len(fields), dtype=">i2").view(np.uint8)
    _place(out, starts, np.full(n, 2), field_count)
    at = starts + 2
    for k, (null, lengths, data) in enumerate(columns):
        length_field = np.full(n, -1, dtype=np.int64)
        length_field[~null] = lengths
        _place(out, at, np.full(n, 4), length_field.astype(">i4").view(np.uint8))
        _place(out, at[~null] + 4, lengths, data)
        at = at + sizes[:, k]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(
            f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(out.data)
    return n
