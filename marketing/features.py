"""The one feature builder, for training and scoring alike (no train/serve skew).

Features describe a customer as of a cutoff time and use only events strictly
before it: for training the cutoff is the customer's assignment time, for
scoring it is "now". Per customer:

- declared, non-personal CRM attributes (numeric, boolean, categorical),
  as they were at the cutoff (the attribute history);
- per event kind and window N in ``windows``: ``<kind>s_<N>d`` (count);
- ``revenue_<N>d`` (sum of purchase value) per window;
- ``days_since_<kind>``: the metric ``days_since_<kind>_<max(windows)>d``
  (days since the last event of the kind within the longest window,
  ``max(windows) + 1`` when there is none), named without its window;
- optionally the last ``sequence_length`` events (kind, value, days before
  the cutoff) for sequence models.

The behavioural columns are metrics of marketing.behaviour, which defines
their windows and aggregates (``FeatureSpec.behaviour_metrics``); here they
are applied to each customer's own cutoff with numpy
(``BehaviourMetric.contains``, ``event_weights``, ``days_since``).

Per chunk of customers, the database selects the chunk's events in the
span the cutoffs can reach and numpy applies each customer's windows; memory
is bounded by the chunk size, never by the number of events. Scoring at one
cutoff can start from a behaviour snapshot instead (see
marketing.behaviour_snapshots) and read only the events that changed a
window since; the result is the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection

from core.bounds import ATTRIBUTE_NUMBER_MAX
from core.db.columnar import binary_rows_fetch, columns_fetch
from core.db.sql_time import comparable, days_between
from marketing.attribute_history import attributes_current_at
from marketing.behaviour import US_PER_DAY, Aggregation, BehaviourMetric
from marketing.models import (
    BehaviourSnapshot,
    BehaviourSnapshotPart,
    Customer,
    CustomerAttribute,
    CustomerAttributeVersion,
    Event,
)

DEFAULT_KINDS = ("purchase", "visit", "email_open", "email_click")
DEFAULT_WINDOWS = (30, 90, 365)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    def totals_metrics(self) -> list[BehaviourMetric]:
        """Counts per kind and window, then purchase revenue per window.

        In this order in ``Behaviour.totals`` and in stored snapshots. Revenue
        is read from the spec's kinds' events only: 0 when purchase is not
        among them (as it always was, so models keep their training values).
        """
        counts = [BehaviourMetric(kind, Aggregation.COUNT, days)
                  for kind in self.kinds for days in self.windows]
        return counts + [BehaviourMetric(Event.Kind.PURCHASE, Aggregation.SUM, days)
                         for days in self.windows]

    @property
    def recency_metrics(self) -> list[BehaviourMetric]:
        """Days since the last event of each kind, within the longest window."""
        return [BehaviourMetric(kind, Aggregation.DAYS_SINCE, max(self.windows))
                for kind in self.kinds]

    @property
    def totals_columns(self) -> list[str]:
        return [metric.name for metric in self.totals_metrics]

    @property
    def behaviour_columns(self) -> list[str]:
        return self.totals_columns + [f"days_since_{kind}" for kind in self.kinds]

    @property
    def behaviour_metrics(self) -> dict[str, BehaviourMetric]:
        """Each behaviour column and the metric it holds."""
        return dict(zip(self.behaviour_columns, self.totals_metrics + self.recency_metrics,
                        strict=True))


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


def _events_sql(spec: FeatureSpec, ids: np.ndarray, listed: bool, earliest: datetime,
                latest: datetime) -> tuple[str, list]:
    """Events of the spec's kinds in [earliest, latest) as four numeric columns.

    (customer id, index of the kind in ``spec.kinds``, time, value) for the
    customers from ``ids[0]`` to ``ids[-1]`` or, when ``listed``, exactly
    ``ids`` (a scattered few: one index probe each instead of the range).
    """
    if not listed:
        customers, customer_params = "e.customer_id >= %s AND e.customer_id <= %s", [
            int(ids[0]), int(ids[-1])]
    elif connection.vendor == "postgresql":
        customers, customer_params = "e.customer_id = ANY(%s)", [ids.tolist()]
    else:
        customers, customer_params = ("e.customer_id IN (SELECT value FROM json_each(%s))",
                                      [json.dumps(ids.tolist())])
    columns, column_params = _event_columns_sql(spec)
    sql = f"""
        SELECT {columns}
        FROM {_q(Event._meta.db_table)} e
        WHERE {customers}
          AND e.kind IN ({", ".join(["%s"] * len(spec.kinds))})
          AND e.occurred_at >= %s AND e.occurred_at < %s
    """
    adapt = connection.ops.adapt_datetimefield_value
    return sql, [*column_params, *customer_params, *spec.kinds, adapt(earliest), adapt(latest)]


def _event_columns_sql(spec: FeatureSpec) -> tuple[str, list]:
    """An event ``e`` as (customer id, index of its kind in ``spec.kinds``, time, value)."""
    kind_case = " ".join(f"WHEN %s THEN {i}" for i in range(len(spec.kinds)))
    return (f"CAST(e.customer_id AS BIGINT), CAST(CASE e.kind {kind_case} END AS BIGINT), "
            f"e.occurred_at, CAST(e.value AS DOUBLE PRECISION)", list(spec.kinds))


@dataclass
class Behaviour:
    """Behavioural aggregates of sorted customer ids, before they become feature columns."""

    totals: np.ndarray  # (n, len(spec.totals_columns)): counts per kind and window, revenue
    last: np.ndarray  # (n, len(spec.kinds)): last event of each kind in the horizon, µs; NaN none


def behaviour_from_events(spec: FeatureSpec, ids: np.ndarray, cutoffs: np.ndarray, *,
                          listed: bool = False) -> Behaviour:
    """Aggregates of customers ``ids`` (sorted) as of ``cutoffs`` (microseconds), from events.

    The database only selects the customers' events in the time span any
    cutoff can reach; the windows are applied here, per customer's own
    cutoff, with integer microseconds, so an event exactly at a window's
    edge falls on the same side for every customer and every backend.
    """
    n = ids.size
    # The longest window holds every other one (they all end at the cutoff).
    longest = max(spec.totals_metrics, key=lambda metric: metric.window_days)
    horizon = longest.window_days * US_PER_DAY
    # One second of slack on each side: the exact test is below.
    earliest = _datetime(int(cutoffs.min()) - horizon - 1_000_000)
    latest = _datetime(int(cutoffs.max()) + 1_000_000)
    customer, kind, at, value = columns_fetch(
        *_events_sql(spec, ids, listed, earliest, latest), "iitf")
    row = np.minimum(np.searchsorted(ids, customer), n - 1)
    age = cutoffs[row] - at  # microseconds before the customer's cutoff
    keep = (ids[row] == customer) & longest.contains(age)
    row, kind, age, value, at = row[keep], kind[keep], age[keep], value[keep], at[keep]

    totals = _window_totals(spec, n, row, kind, value,
                            lambda metric: metric.contains(age).astype(np.float64))
    last = np.full((n, len(spec.kinds)), np.nan)
    _latest_into(last, row, kind, at)
    return Behaviour(totals=totals, last=last)


def _behaviour_frame(spec: FeatureSpec, behaviour: Behaviour,
                     cutoffs: np.ndarray) -> pd.DataFrame:
    """The behaviour feature columns: totals as they are, days since the last event of each kind.

    Times are whole microseconds held exactly in float64, so the days are the
    same whether the last event came from events or from a snapshot.
    """
    frame = pd.DataFrame(behaviour.totals, columns=spec.totals_columns)
    age = cutoffs.astype(np.float64)[:, None] - behaviour.last
    columns = spec.behaviour_columns[len(spec.totals_columns):]
    for k, (column, metric) in enumerate(zip(columns, spec.recency_metrics, strict=True)):
        frame[column] = metric.days_since(age[:, k])
    return frame


def _window_totals(spec: FeatureSpec, n: int, row: np.ndarray, kind: np.ndarray,
                   value: np.ndarray,
                   membership: Callable[[BehaviourMetric], np.ndarray]) -> np.ndarray:
    """``spec.totals_metrics`` for ``n`` customer rows.

    Each event (customer ``row``, ``kind`` index, ``value``) adds
    ``membership(metric)``, its weight in the metric's window (1 or 0 from
    events, also -1 for an event that left the window since a snapshot),
    times what the metric takes from an event (1 for a count, the value
    for a sum).
    """
    metrics = spec.totals_metrics
    totals = np.empty((n, len(metrics)))
    # Metrics of one window share the events' membership, metrics of one
    # kind the kind mask: each is computed once.
    in_window: dict[int, np.ndarray] = {}
    of_kind: dict[int, np.ndarray] = {}
    for column, metric in enumerate(metrics):
        if metric.window_days not in in_window:
            in_window[metric.window_days] = membership(metric)
        k = spec.kinds.index(metric.kind) if metric.kind in spec.kinds else -1
        if k not in of_kind:
            of_kind[k] = kind == k
        weights = in_window[metric.window_days] * of_kind[k] * metric.event_weights(value)
        totals[:, column] = np.bincount(row, weights=weights, minlength=n)
    return totals


def _latest_into(last: np.ndarray, row: np.ndarray, kind: np.ndarray, at: np.ndarray) -> None:
    """Raise ``last[row, kind]`` (µs, NaN for none) to each event's time."""
    for k in range(last.shape[1]):
        of_kind = kind == k
        latest = np.full(last.shape[0], -np.inf)
        np.maximum.at(latest, row[of_kind], at[of_kind].astype(np.float64))
        last[:, k] = np.fmax(last[:, k], np.where(np.isinf(latest), np.nan, latest))


def _datetime(microseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=microseconds)


def microseconds(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _snapshot_rows(snapshot: BehaviourSnapshot, spec: FeatureSpec, ids: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The snapshot's stored customer ids and value rows that cover ``ids[0]..ids[-1]``."""
    table = _q(BehaviourSnapshotPart._meta.db_table)
    parts = binary_rows_fetch(
        f"SELECT customer_ids, {_q('values')} FROM {table} "
        f"WHERE snapshot_id = %s AND high >= %s AND low < %s ORDER BY low",
        [snapshot.id, int(ids[0]), int(ids[-1])])
    width = len(spec.totals_columns) + len(spec.kinds)
    stored_ids, values = [np.empty(0, dtype=np.int64)], [np.empty((0, width))]
    for part_ids, part_values in parts:
        stored_ids.append(np.frombuffer(part_ids, dtype="<i8"))
        values.append(np.frombuffer(part_values, dtype="<f8").reshape(-1, width))
    return np.concatenate(stored_ids), np.concatenate(values)


def _window_changes(snapshot: BehaviourSnapshot, spec: FeatureSpec, low: int, high: int,
                    cutoff: datetime) -> tuple[np.ndarray, ...]:
    """Events of customers in (low, high] that may count differently at ``cutoff`` than in the snapshot.

    Those in [as_of, cutoff) (they entered the windows) or in [as_of - w,
    cutoff - w) for a window w (they left it), and, flagged ``late``, those
    that reached the database after the build began however old they are
    (a late delivery or a backfill the build may not have seen:
    ``SNAPSHOT_LATE_MARGIN_SECONDS`` covers ingest transactions still open
    when it started). Returns (customer, kind index, time, value, late).
    """
    adapt = connection.ops.adapt_datetimefield_value
    # A window moving from [then_start, then_end) to [now_start, now_end)
    # gains [then_end, now_end) and loses [then_start, now_start).
    slices = {}
    for metric in spec.totals_metrics:
        (then_start, then_end), (now_start, now_end) = (metric.window(snapshot.as_of),
                                                        metric.window(cutoff))
        slices.update({(then_end, now_end): None, (then_start, now_start): None})
    slices = list(slices)
    late = "e.received_at >= %s AND e.occurred_at < %s"
    late_params = [adapt(snapshot.created_at
                         - timedelta(seconds=settings.SNAPSHOT_LATE_MARGIN_SECONDS)),
                   adapt(snapshot.as_of)]
    columns, column_params = _event_columns_sql(spec)
    sql = f"""
        SELECT {columns}, CAST(CASE WHEN {late} THEN 1 ELSE 0 END AS BIGINT)
        FROM {_q(Event._meta.db_table)} e
        WHERE e.customer_id > %s AND e.customer_id <= %s
          AND e.kind IN ({", ".join(["%s"] * len(spec.kinds))})
          AND ({" OR ".join(["(e.occurred_at >= %s AND e.occurred_at < %s)"] * len(slices))}
               OR ({late}))
    """
    params = [*column_params, *late_params, low, high, *spec.kinds,
              *[adapt(t) for pair in slices for t in pair], *late_params]
    return tuple(columns_fetch(sql, params, "iitfi"))


def behaviour_from_snapshot(snapshot: BehaviourSnapshot, spec: FeatureSpec, ids: np.ndarray,
                            cutoff_us: int, low: int) -> Behaviour:
    """The customers' aggregates as of ``cutoff_us`` (not before the snapshot's as_of).

    The snapshot's totals plus the events that entered a window since,
    minus those that left it, and its last-event times raised by the events
    that entered. Customers with a late event, or that the snapshot does not
    hold, are computed from their events. The result equals what
    ``behaviour_from_events`` gives (revenue to rounding: the same values,
    summed in another order).
    """
    stored_ids, values = _snapshot_rows(snapshot, spec, ids)
    at = np.minimum(np.searchsorted(stored_ids, ids), max(stored_ids.size - 1, 0))
    found = (stored_ids[at] == ids) if stored_ids.size else np.zeros(ids.size, dtype=bool)
    rows = values[at] if stored_ids.size else np.full((ids.size, values.shape[1]), np.nan)
    width = len(spec.totals_columns)
    behaviour = Behaviour(totals=rows[:, :width].copy(), last=rows[:, width:].copy())

    customer, kind, time, value, late = _window_changes(snapshot, spec, low, int(ids[-1]),
                                                        _datetime(cutoff_us))
    recompute = ~found | np.isin(ids, customer[late == 1])
    row = np.minimum(np.searchsorted(ids, customer), ids.size - 1)
    use = (ids[row] == customer) & ~recompute[row]
    row, kind, time, value = row[use], kind[use], time[use], value[use]
    now_age, then_age = cutoff_us - time, microseconds(snapshot.as_of) - time

    def change(metric: BehaviourMetric) -> np.ndarray:
        return metric.contains(now_age).astype(np.float64) - metric.contains(then_age)

    behaviour.totals += _window_totals(spec, ids.size, row, kind, value, change)
    entered = now_age > 0
    _latest_into(behaviour.last, row[entered], kind[entered], time[entered])
    if recompute.any():
        cutoffs = np.full(int(recompute.sum()), cutoff_us, dtype=np.int64)
        fresh = behaviour_from_events(spec, ids[recompute], cutoffs, listed=True)
        behaviour.totals[recompute] = fresh.totals
        behaviour.last[recompute] = fresh.last
    return behaviour


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
            number = f"CASE {text} WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0 END"
        else:
            number = f"CAST({text} AS DOUBLE PRECISION)"
        return number, [key]
    value = "json_extract(c.attributes, %s)"  # SQLite gives booleans as 1 / 0
    if kind == CustomerAttribute.Kind.CATEGORICAL:
        return f"CAST({value} AS TEXT)", [f"$.{key}"]
    return f"CAST({value} AS REAL)", [f"$.{key}"]


def _attribute_frame(spec: FeatureSpec, customer_ids: np.ndarray,
                     cutoffs: np.ndarray) -> pd.DataFrame:
    """Declared attributes for ``customer_ids`` (sorted) as of their ``cutoffs`` (µs), in that order.

    Each customer's attribute version valid at their cutoff
    (marketing.attribute_history), so a value changed after a training
    row's assignment does not reach it. When the chunk shares one cutoff and
    none of its customers' versions was closed after it (scoring "now"),
    the customer rows hold those versions and are read directly.
    Numeric and boolean attributes become floats (missing: NaN, which the
    models' preprocessing handles); categorical ones stay strings (None).
    """
    frame = pd.DataFrame(index=range(customer_ids.size))
    if not spec.attributes:
        return frame
    kinds = dict(CustomerAttribute.objects.filter(key__in=spec.attributes)
                 .values_list("key", "kind"))
    kind_of = {key: kinds.get(key, CustomerAttribute.Kind.NUMERIC) for key in spec.attributes}
    expressions = [_attribute_sql(key, kind_of[key]) for key in spec.attributes]
    types = "".join("s" if kind_of[k] == CustomerAttribute.Kind.CATEGORICAL else "f"
                    for k in spec.attributes)
    params = [p for _, ps in expressions for p in ps]
    low, high = int(customer_ids[0]), int(customer_ids[-1])
    if cutoffs.min() == cutoffs.max() and attributes_current_at(
            _datetime(int(cutoffs[0])), low=low, high=high):
        sql = (f"SELECT CAST(c.id AS BIGINT), {', '.join(e for e, _ in expressions)} "
               f"FROM {_q(Customer._meta.db_table)} c WHERE c.id >= %s AND c.id <= %s")
        ids, *values = columns_fetch(sql, [*params, low, high], "i" + types, ordered=True)
        at = np.searchsorted(ids, customer_ids)  # every id in the range is there
        for key, column in zip(spec.attributes, values, strict=True):
            frame[key] = _in_range(column[at])
        return frame
    # The versions any cutoff of the chunk can select; each customer's own is picked below
    # (valid_from <= cutoff or first, and open or valid_to > cutoff), in exact microseconds.
    # The version table is aliased ``c`` so the attribute expressions read its JSON.
    adapt = connection.ops.adapt_datetimefield_value
    sql = (f"SELECT CAST(c.customer_id AS BIGINT), c.valid_from, "
           f"COALESCE(c.valid_to, c.valid_from), "
           f"CAST(CASE WHEN c.valid_to IS NULL THEN 1 ELSE 0 END AS BIGINT), "
           f"CAST(CASE WHEN c.is_first THEN 1 ELSE 0 END AS BIGINT), "
           f"{', '.join(e for e, _ in expressions)} "
           f"FROM {_q(CustomerAttributeVersion._meta.db_table)} c "
           f"WHERE c.customer_id >= %s AND c.customer_id <= %s "
           f"AND (c.valid_to IS NULL OR c.valid_to > %s) AND (c.valid_from <= %s OR c.is_first)")
    owner, valid_from, valid_to, is_open, first, *values = columns_fetch(
        sql, [*params, low, high, adapt(_datetime(int(cutoffs.min()))),
              adapt(_datetime(int(cutoffs.max())))], "ittii" + types)
    row = np.minimum(np.searchsorted(customer_ids, owner), customer_ids.size - 1)
    cutoff = cutoffs[row]
    keep = ((customer_ids[row] == owner) & ((valid_from <= cutoff) | (first == 1))
            & ((is_open == 1) | (valid_to > cutoff)))
    row = row[keep]
    for key, column in zip(spec.attributes, values, strict=True):
        out = np.full(customer_ids.size, None if column.dtype == object else np.nan,
                      dtype=column.dtype)
        out[row] = column[keep]
        frame[key] = _in_range(out)
    return frame


def _in_range(column: np.ndarray) -> np.ndarray:
    """A numeric column with values beyond ATTRIBUTE_NUMBER_MAX made missing (NaN).

    Such values are refused at ingest (core.bounds); one stored before that
    (1e308) would overflow the models' standardisation into NaN for every
    customer, so it counts as unknown here, as a missing value does.
    """
    if column.dtype == object:
        return column
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(column) <= ATTRIBUTE_NUMBER_MAX, column, np.nan)


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


def fixed_cutoff(cutoff: datetime, customer_sql: str | None = None,
                 customer_params: list | None = None) -> tuple[str, list]:
    """Scoring rows: customers (all, or those ``customer_sql`` selects) as of one time.

    ``customer_sql`` selects one column named ``id``, one row per customer
    (a ``Customer`` queryset's ``values("id")``): used as a table, not an
    ``IN`` list, so a chunk's id range reaches the primary key index.
    """
    table = _q(Customer._meta.db_table)
    customers, params = table, []
    if customer_sql:
        customers, params = f"({customer_sql})", list(customer_params or [])
    cutoff_value = connection.ops.adapt_datetimefield_value(cutoff)
    cast = "CAST(%s AS TIMESTAMP WITH TIME ZONE)" if connection.vendor == "postgresql" else "%s"
    return (f"SELECT c.id AS customer_id, {cast} AS cutoff FROM {customers} c",
            [cutoff_value, *params])


def features_build(
    *, spec: FeatureSpec, source: tuple[str, list], chunk_size: int = 50_000,
    snapshot: BehaviourSnapshot | None = None,
) -> Iterator[FeatureChunk]:
    """Features for each (customer_id, cutoff) row of ``source``, chunked by id.

    ``source`` is (sql, params) selecting ``customer_id`` and ``cutoff`` with
    one row per customer: ``experiments.outcomes.assignment_cutoffs`` or
    ``fixed_cutoff``. With a
    ``snapshot`` of the spec's kinds and windows (marketing.behaviour_snapshots),
    a chunk whose customers share one cutoff not before the snapshot's as_of
    starts from it; the features are the same either way, only faster.
    """
    source_sql, source_params = source
    page_sql = (f"SELECT CAST(src.customer_id AS BIGINT), src.cutoff "
                f"FROM ({source_sql}) src WHERE src.customer_id > %s "
                f"ORDER BY src.customer_id LIMIT {int(chunk_size)}")
    last_id = 0
    while True:
        # Keyset paging: the chunk's ids come first, so every query below
        # gets constant bounds (last_id < id <= high).
        ids, cutoffs = columns_fetch(page_sql, [*source_params, last_id], "it", ordered=True)
        if not ids.size:
            return
        if (np.diff(ids) <= 0).any():
            raise ValueError("features_build: the source selects a customer more than once")
        high = int(ids[-1])
        if (snapshot is not None and cutoffs.min() == cutoffs.max()
                and cutoffs[0] >= microseconds(snapshot.as_of)):
            behaviour = behaviour_from_snapshot(snapshot, spec, ids, int(cutoffs[0]), last_id)
        else:
            behaviour = behaviour_from_events(spec, ids, cutoffs)
        frame = pd.concat([_attribute_frame(spec, ids, cutoffs),
                           _behaviour_frame(spec, behaviour, cutoffs)], axis=1)
        sequences = []
        if spec.sequence_length:
            chunk_sql = (f"SELECT * FROM ({source_sql}) src "
                         f"WHERE src.customer_id > %s AND src.customer_id <= %s")
            sequences = _sequences(spec, chunk_sql, [*source_params, last_id, high], ids)
        yield FeatureChunk(customer_ids=ids, frame=frame, sequences=sequences)
        last_id = high
