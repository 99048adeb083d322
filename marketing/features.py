"""The one feature builder, for training and scoring alike (no train/serve skew).

Features describe a customer as of a cutoff time and use only events strictly
before it: for training the cutoff is the customer's assignment time, for
scoring it is "now". Per customer:

- declared, non-personal CRM attributes (numeric, boolean, categorical);
- per event kind and window N in ``windows``: ``<kind>s_<N>d`` (count);
- ``revenue_<N>d`` (sum of purchase value) per window;
- ``days_since_<kind>``: days since the last event of the kind within the
  longest window (``max(windows) + 1`` when there is none);
- optionally the last ``sequence_length`` events (kind, value, days before
  the cutoff) for sequence models.

Aggregates are one SQL GROUP BY per chunk of customers; memory is bounded
by the chunk size, never by the number of events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from django.db import connection

from marketing.models import Customer, CustomerAttribute, Event
from marketing.sql_time import comparable, days_between, shifted

DEFAULT_KINDS = ("purchase", "visit", "email_open", "email_click")
DEFAULT_WINDOWS = (30, 90, 365)


@dataclass(frozen=True)
class FeatureSpec:
    """What to compute; stored with each model version so scoring rebuilds it exactly."""

    attributes: tuple[str, ...] = ()
    kinds: tuple[str, ...] = DEFAULT_KINDS
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    sequence_length: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FeatureSpec:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @property
    def behaviour_columns(self) -> list[str]:
        columns = [f"{kind}s_{days}d" for kind in self.kinds for days in self.windows]
        columns += [f"revenue_{days}d" for days in self.windows]
        columns += [f"days_since_{kind}" for kind in self.kinds]
        return columns


def feature_spec_default() -> FeatureSpec:
    """All declared attributes that are not personal data, default aggregates."""
    keys = CustomerAttribute.objects.filter(is_personal=False).order_by("key")
    return FeatureSpec(attributes=tuple(keys.values_list("key", flat=True)))


@dataclass
class FeatureChunk:
    customer_ids: np.ndarray
    frame: pd.DataFrame  # one row per customer id, in customer_ids order
    sequences: list[list[tuple[int, float, float]]] = field(default_factory=list)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _aggregate_sql(spec: FeatureSpec, source_sql: str, source_params: list,
                   low: int, high: int) -> tuple[str, list]:
    """One GROUP BY over events joined to (customer_id, cutoff) pairs with low < id <= high.

    The id bounds are repeated on the events as constants so the database
    reads only this chunk's events through the (customer, kind, time) index
    instead of scanning the whole table for every chunk.
    """
    horizon = max(spec.windows)
    event = comparable("e.occurred_at")
    select, params = [], []
    for kind in spec.kinds:
        for days in spec.windows:
            start, p = shifted("s.cutoff", -days)
            select.append(f"SUM(CASE WHEN e.kind = %s AND {event} >= {start} THEN 1 ELSE 0 END)")
            params += [kind, *p]
    for days in spec.windows:
        start, p = shifted("s.cutoff", -days)
        select.append(
            f"SUM(CASE WHEN e.kind = %s AND {event} >= {start} THEN e.value ELSE 0 END)")
        params += [Event.Kind.PURCHASE, *p]
    for kind in spec.kinds:
        last = "MAX(CASE WHEN e.kind = %s THEN e.occurred_at END)"
        select.append(f"COALESCE({days_between('s.cutoff', last)}, %s)")
        params += [kind, horizon + 1]
    start, start_params = shifted("s.cutoff", -horizon)
    sql = f"""
        SELECT s.customer_id, {", ".join(select)}
        FROM ({source_sql}) s
        LEFT JOIN {_q(Event._meta.db_table)} e ON e.customer_id = s.customer_id
            AND e.customer_id > %s AND e.customer_id <= %s
            AND e.kind IN ({", ".join(["%s"] * len(spec.kinds))})
            AND {event} < {comparable("s.cutoff")} AND {event} >= {start}
        GROUP BY s.customer_id, s.cutoff
        ORDER BY s.customer_id
    """
    return sql, [*params, *source_params, low, high, *spec.kinds, *start_params]


def _sequence_sql(spec: FeatureSpec, source_sql: str, source_params: list) -> tuple[str, list]:
    """The last ``sequence_length`` events before each cutoff (window function)."""
    sql = f"""
        SELECT customer_id, kind, value, gap FROM (
            SELECT s.customer_id, e.kind, e.value,
                   {days_between("s.cutoff", "e.occurred_at")} AS gap,
                   ROW_NUMBER() OVER (PARTITION BY s.customer_id
                                      ORDER BY e.occurred_at DESC, e.id DESC) AS rn
            FROM ({source_sql}) s
            JOIN {_q(Event._meta.db_table)} e ON e.customer_id = s.customer_id
                AND {comparable("e.occurred_at")} < {comparable("s.cutoff")}
        ) ranked
        WHERE rn <= %s
        ORDER BY customer_id, gap DESC
    """
    return sql, [*source_params, spec.sequence_length]


def _attribute_sql(key: str, kind: str) -> tuple[str, list]:
    """The attribute as a typed column: float for numeric/boolean, text for categorical."""
    if connection.vendor == "postgresql":
        text = "(c.attributes ->> %s)"
        if kind == CustomerAttribute.Kind.CATEGORICAL:
            return text, [key]
        if kind == CustomerAttribute.Kind.BOOLEAN:
            return f"CASE {text} WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0 END", [key]
        return f"CAST({text} AS DOUBLE PRECISION)", [key]
    value = "json_extract(c.attributes, %s)"  # SQLite gives booleans as 1 / 0
    if kind == CustomerAttribute.Kind.CATEGORICAL:
        return f"CAST({value} AS TEXT)", [f"$.{key}"]
    return f"CAST({value} AS REAL)", [f"$.{key}"]


def _attributes_query(spec: FeatureSpec, low: int, high: int) -> tuple[str, list, list[str]]:
    """Attribute columns of the customers with low <= id <= high, extracted in SQL."""
    kinds = dict(CustomerAttribute.objects.filter(key__in=spec.attributes)
                 .values_list("key", "kind"))
    select, params = ["c.id"], []
    for key in spec.attributes:
        expression, p = _attribute_sql(key, kinds.get(key, CustomerAttribute.Kind.NUMERIC))
        select.append(expression)
        params += p
    sql = (f"SELECT {', '.join(select)} FROM {_q(Customer._meta.db_table)} c "
           f"WHERE c.id >= %s AND c.id <= %s")
    categorical = [k for k in spec.attributes if kinds.get(k) == CustomerAttribute.Kind.CATEGORICAL]
    return sql, [*params, low, high], categorical


def _attribute_frame(spec: FeatureSpec, customer_ids: np.ndarray) -> pd.DataFrame:
    """Declared attributes for ``customer_ids`` (sorted), one row each in that order.

    Numeric and boolean attributes become floats (missing: NaN, which the
    models' preprocessing handles); categorical ones stay strings.
    """
    if not spec.attributes:
        return pd.DataFrame(index=range(customer_ids.size))
    sql, params, categorical = _attributes_query(spec, int(customer_ids[0]),
                                                 int(customer_ids[-1]))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    frame = pd.DataFrame(rows, columns=["id", *spec.attributes]).set_index("id")
    frame = frame.reindex(customer_ids).reset_index(drop=True)
    for key in spec.attributes:
        if key in categorical:
            frame[key] = frame[key].astype("object").where(frame[key].notna(), None)
        else:
            frame[key] = pd.to_numeric(frame[key], errors="coerce").astype("float64")
    return frame


def _sequences(spec: FeatureSpec, source_sql: str, source_params: list,
               ids: np.ndarray) -> list[list[tuple[int, float, float]]]:
    """Per customer (in ``ids`` order): [(kind index, value, days before cutoff), ...], oldest first."""
    kind_index = {kind: i for i, kind in enumerate(Event.Kind.values)}
    sql, params = _sequence_sql(spec, source_sql, source_params)
    by_customer: dict[int, list] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for customer_id, kind, value, gap in cursor.fetchall():
            by_customer.setdefault(customer_id, []).append(
                (kind_index[kind], float(value), float(gap)))
    return [by_customer.get(int(c), []) for c in ids]


def assignment_cutoffs(experiment_id: int) -> tuple[str, list]:
    """Training rows: each assigned customer as of their own assignment time."""
    from experiments.models import Assignment  # experiments depends on marketing, not back

    table = _q(Assignment._meta.db_table)
    return (f"SELECT customer_id, assigned_at AS cutoff FROM {table} WHERE experiment_id = %s",
            [experiment_id])


def fixed_cutoff(cutoff: datetime, customer_sql: str | None = None,
                 customer_params: list | None = None) -> tuple[str, list]:
    """Scoring rows: customers (all, or the ids ``customer_sql`` selects) as of one time."""
    table = _q(Customer._meta.db_table)
    where, params = "", []
    if customer_sql:
        where, params = f" WHERE c.id IN ({customer_sql})", list(customer_params or [])
    cutoff_value = connection.ops.adapt_datetimefield_value(cutoff)
    cast = "CAST(%s AS TIMESTAMP WITH TIME ZONE)" if connection.vendor == "postgresql" else "%s"
    return (f"SELECT c.id AS customer_id, {cast} AS cutoff FROM {table} c{where}",
            [cutoff_value, *params])


def features_build(
    *, spec: FeatureSpec, source: tuple[str, list], chunk_size: int = 50_000,
) -> Iterator[FeatureChunk]:
    """Features for each (customer_id, cutoff) row of ``source``, chunked by id.

    ``source`` is (sql, params) selecting ``customer_id`` and ``cutoff`` with
    one row per customer: ``assignment_cutoffs`` or ``fixed_cutoff``.
    """
    source_sql, source_params = source
    last_id = 0
    while True:
        # The chunk is an id range, found first, so every query below gets
        # constant bounds (keyset paging: last_id < id <= high).
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT MAX(customer_id) FROM (SELECT src.customer_id FROM "
                           f"({source_sql}) src WHERE src.customer_id > %s "
                           f"ORDER BY src.customer_id LIMIT {int(chunk_size)}) page",
                           [*source_params, last_id])
            (high,) = cursor.fetchone()
        if high is None:
            return
        chunk_sql = (f"SELECT * FROM ({source_sql}) src "
                     f"WHERE src.customer_id > %s AND src.customer_id <= %s")
        chunk_params = [*source_params, last_id, high]
        sql, params = _aggregate_sql(spec, chunk_sql, chunk_params, last_id, high)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        behaviour = pd.DataFrame([r[1:] for r in rows], columns=spec.behaviour_columns,
                                 dtype="float64")
        frame = pd.concat([_attribute_frame(spec, ids), behaviour], axis=1)
        sequences = _sequences(spec, chunk_sql, chunk_params, ids) if spec.sequence_length else []
        yield FeatureChunk(customer_ids=ids, frame=frame, sequences=sequences)
        last_id = int(high)
