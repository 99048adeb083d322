"""Behaviour snapshots: every customer's behavioural aggregates as of one time.

Scoring a million customers as of now would otherwise read every event of
the longest window on every run (ten million rows for the demo), which is
most of its cost. A snapshot holds, per customer, the counts and revenue
per window (``FeatureSpec.totals_metrics``, metrics of marketing.behaviour,
in that order) and the time of the last event of each kind as of ``as_of``.
Built once a day (beat, ``behaviour_snapshots_refresh_task``), it serves
every scoring run after it: at a later cutoff a customer's totals change
only by the events that entered or left one of the windows in between,
which scoring adds and subtracts, and customers with an event delivered
after the build began are recomputed from their events
(``marketing.features.behaviour_from_snapshot``). The features are
therefore the ones the event path gives, which
tests/marketing/test_behaviour_snapshots.py checks; a missing or stale
snapshot only costs speed.

A snapshot is keyed by the event kinds and windows it covers (attributes
are always read live) and replaces the older ones of its key once complete.
It is stored as one row per chunk of customers holding numpy arrays, so a
scoring chunk reads its customers with one row. Events are append-only here
(erasure scrubs their properties, never their time or value); an event
deleted by hand would stay counted until the next build.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
from django.db import connection
from django.utils import timezone

from core.db.bulk import rows_insert
from core.db.columnar import columns_fetch
from core.db.sql_tuning import large_aggregates
from marketing.features import FeatureSpec, behaviour_from_events, microseconds
from marketing.models import BehaviourSnapshot, BehaviourSnapshotPart, Customer

# An older snapshot is not used: the events that entered or left a window
# since (four slices as long as its age) would approach a full read.
SNAPSHOT_MAX_AGE = timedelta(days=7)


def snapshot_key(spec: FeatureSpec) -> str:
    return f"{','.join(spec.kinds)}|{','.join(str(d) for d in spec.windows)}"


def behaviour_snapshot_latest(spec: FeatureSpec, cutoff: datetime) -> BehaviourSnapshot | None:
    """The newest complete snapshot of the spec's kinds and windows, as of ``cutoff`` or up
    to ``SNAPSHOT_MAX_AGE`` before it."""
    return (BehaviourSnapshot.objects
            .filter(spec_key=snapshot_key(spec), ready_at__isnull=False, as_of__lte=cutoff,
                    as_of__gte=cutoff - SNAPSHOT_MAX_AGE)
            .order_by("-as_of").first())


def behaviour_snapshot_build(spec: FeatureSpec, *, as_of: datetime | None = None,
                             chunk_size: int = 50_000) -> BehaviourSnapshot:
    """Compute every current (not erased) customer's aggregates as of ``as_of`` (default now).

    One transaction: scoring sees either the old snapshot or the complete
    new one, and a failed build leaves nothing behind.
    """
    started = time.perf_counter()
    as_of = as_of or timezone.now()
    as_of_us = microseconds(as_of)
    table = connection.ops.quote_name(Customer._meta.db_table)
    page_sql = (f"SELECT CAST(id AS BIGINT) FROM {table} WHERE id > %s AND erased_at IS NULL "
                f"ORDER BY id LIMIT {int(chunk_size)}")
    with large_aggregates():
        snapshot = BehaviourSnapshot.objects.create(spec_key=snapshot_key(spec), as_of=as_of)
        low, count = 0, 0
        while True:
            (ids,) = columns_fetch(page_sql, [low], "i", ordered=True)
            if not ids.size:
                break
            behaviour = behaviour_from_events(spec, ids, np.full(ids.size, as_of_us))
            # COPY, not an INSERT with megabytes of bytea spelled out in the SQL.
            rows_insert(BehaviourSnapshotPart,
                        ["snapshot_id", "low", "high", "customer_ids", "values"],
                        [(snapshot.id, low, int(ids[-1]), ids.astype("<i8").tobytes(),
                          np.hstack([behaviour.totals, behaviour.last]).astype("<f8").tobytes())])
            low, count = int(ids[-1]), count + ids.size
        snapshot.ready_at = timezone.now()
        snapshot.customers = count
        snapshot.build_seconds = time.perf_counter() - started
        snapshot.save(update_fields=["ready_at", "customers", "build_seconds"])
        BehaviourSnapshot.objects.filter(spec_key=snapshot.spec_key).exclude(
            id=snapshot.id).delete()
    return snapshot
