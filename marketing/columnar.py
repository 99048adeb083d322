"""Query results as numpy columns, without a Python object per value.

A million customers' features are tens of millions of numbers; building a
Python tuple per row (``cursor.fetchall``) would cost more than computing
them. On PostgreSQL the query runs inside ``COPY ... TO STDOUT (FORMAT
BINARY)`` and, because every column is a non-NULL 8-byte integer or float,
each row has the same layout, which numpy reads in one step. SQLite, used
for small data, goes through the cursor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from django.db import connection

# PGCOPY signature (11 bytes), flags (int32), header extension length (int32).
_HEADER = 19
_TRAILER = 2  # int16 -1
# PostgreSQL sends a timestamptz as int64 microseconds since 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800_000_000
_DTYPES = {"i": ">i8", "f": ">f8", "t": ">i8"}


def columns_fetch(sql: str, params: Sequence, kinds: str) -> list[np.ndarray]:
    """Run ``sql`` and return its columns; ``kinds`` has one letter per column.

    ``"i"``: a BIGINT column, returned as int64; ``"f"``: DOUBLE PRECISION,
    float64; ``"t"``: a timestamp with time zone, returned as int64
    microseconds since 1970-01-01 UTC (exact: the database's own
    representation, with no arithmetic per row). The SQL must give exactly
    those types and never NULL, so that rows have a fixed width.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [_sqlite_column([r[i] for r in rows], k) for i, k in enumerate(kinds)]
    layout = [("fields", ">i2")]
    for i, kind in enumerate(kinds):
        layout += [(f"len{i}", ">i4"), (f"c{i}", _DTYPES[kind])]
    row = np.dtype(layout)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        # psycopg binds COPY parameters on the client (COPY takes none itself).
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as copy:
            data = b"".join(bytes(block) for block in copy)
    count, rest = divmod(len(data) - _HEADER - _TRAILER, row.itemsize)
    if rest:
        raise ValueError("columns_fetch: a row is not fixed-width (a NULL or a wrong cast)")
    rows = np.frombuffer(data, dtype=row, count=count, offset=_HEADER)
    if count and not ((rows["fields"] == len(kinds)).all()
                      and all((rows[f"len{i}"] == 8).all() for i in range(len(kinds)))):
        raise ValueError("columns_fetch: a column is NULL or not 8 bytes wide")
    return [rows[f"c{i}"].astype(np.float64) if k == "f" else
            rows[f"c{i}"].astype(np.int64) + (_PG_EPOCH_US if k == "t" else 0)
            for i, k in enumerate(kinds)]


def _sqlite_column(values: list, kind: str) -> np.ndarray:
    if kind == "t":  # Django stores datetimes in SQLite as naive UTC text
        if not values:
            return np.empty(0, dtype=np.int64)
        stamps = pd.to_datetime(pd.Series(values), format="ISO8601", utc=True)
        return stamps.dt.as_unit("us").astype("int64").to_numpy()
    return np.asarray(values, dtype=np.int64 if kind == "i" else np.float64)
