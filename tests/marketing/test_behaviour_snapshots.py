"""Behaviour snapshots give exactly the event path's features, reading only what changed."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from marketing import features
from marketing.behaviour_snapshots import behaviour_snapshot_build, behaviour_snapshot_latest
from marketing.features import FeatureSpec, features_build, fixed_cutoff
from marketing.models import BehaviourSnapshot, Event
from tests.factories import T0, attributes_declare, customer_make, event_make

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
SPEC = FeatureSpec(attributes=("age",), kinds=("purchase", "visit", "email_open"),
                   windows=(30, 90))
KINDS = ("purchase", "visit", "email_open", "cart_add")  # cart_add: a kind outside the spec


def frame(cutoff, snapshot=None, chunk_size=7):
    chunks = list(features_build(spec=SPEC, source=fixed_cutoff(cutoff), snapshot=snapshot,
                                 chunk_size=chunk_size))
    return (np.concatenate([c.customer_ids for c in chunks]),
            pd.concat([c.frame for c in chunks], ignore_index=True))


def assert_same_features(a, b):
    assert np.array_equal(a[0], b[0])
    revenue = [c for c in a[1].columns if c.startswith("revenue_")]
    # Revenue sums the same values, possibly in another order: equal to rounding.
    np.testing.assert_allclose(a[1][revenue], b[1][revenue], rtol=1e-12)
    pd.testing.assert_frame_equal(a[1].drop(columns=revenue), b[1].drop(columns=revenue))


@pytest.fixture
def world():
    """30 customers with a year and a half of events, some exactly on window edges."""
    attributes_declare()
    rng = np.random.default_rng(3)
    customers = [customer_make(age=int(rng.integers(18, 80))) for _ in range(30)]
    for customer in customers:
        for _ in range(rng.integers(0, 12)):
            at = T0 - timedelta(seconds=int(rng.integers(0, 540 * 86_400)))
            event_make(customer, KINDS[rng.integers(0, 4)], at, float(rng.integers(1, 90)))
    for days in (0, 30, 90):  # on the edges of the windows at T0 and at T0 + 10 days
        event_make(customers[0], "purchase", T0 - days * DAY, 5.0)
        event_make(customers[1], "visit", T0 + 10 * DAY - days * DAY)
    # Delivered long ago: only what happens after the build counts as late.
    Event.objects.update(received_at=T0 - 600 * DAY)
    return customers


def test_snapshot_features_equal_the_event_path_at_later_cutoffs(world):
    snapshot = behaviour_snapshot_build(SPEC, as_of=T0, chunk_size=8)
    assert snapshot.customers == 30 and snapshot.parts.count() == 4
    # After the build: new events, and late deliveries of old ones.
    event_make(world[2], "purchase", T0 + 2 * DAY, 40.0)
    event_make(world[3], "visit", T0 - 45 * DAY)
    event_make(world[4], "purchase", T0 - 400 * DAY, 12.0)
    newcomer = customer_make(age=33)
    event_make(newcomer, "email_open", T0 + DAY)
    for delta in (timedelta(0), timedelta(microseconds=1), timedelta(hours=5), 10 * DAY,
                  31 * DAY, 89 * DAY, 400 * DAY):
        cutoff = T0 + delta
        assert_same_features(frame(cutoff, snapshot), frame(cutoff))


def test_only_late_deliveries_are_recomputed_from_events(world, monkeypatch):
    snapshot = behaviour_snapshot_build(SPEC, as_of=T0)
    event_make(world[5], "visit", T0 + 3 * DAY)  # entered the windows
    event_make(world[6], "purchase", T0 - 200 * DAY)  # late delivery, outside every window
    recomputed = []
    original = features.behaviour_from_events

    def spy(spec, ids, cutoffs, **kwargs):
        recomputed.extend(ids.tolist())
        return original(spec, ids, cutoffs, **kwargs)

    monkeypatch.setattr(features, "behaviour_from_events", spy)
    cutoff = T0 + 5 * DAY
    with_snapshot = frame(cutoff, snapshot, chunk_size=50)
    # Customers with an event that entered or left a window since the
    # snapshot are brought up to date from those events alone.
    slices = [(T0, cutoff)] + [(T0 - d * DAY, cutoff - d * DAY) for d in SPEC.windows]
    changed = {e.customer_id for e in Event.objects.filter(kind__in=SPEC.kinds)
               if any(low <= e.occurred_at < high for low, high in slices)}
    assert len(changed) >= 3 and world[5].id in changed
    assert recomputed == [world[6].id]
    monkeypatch.setattr(features, "behaviour_from_events", original)
    assert_same_features(with_snapshot, frame(cutoff))


def test_the_latest_complete_snapshot_not_after_the_cutoff_is_used(world):
    first = behaviour_snapshot_build(SPEC, as_of=T0 - 5 * DAY)
    assert behaviour_snapshot_latest(SPEC, T0) == first
    assert behaviour_snapshot_latest(SPEC, T0 - 6 * DAY) is None
    assert behaviour_snapshot_latest(SPEC, T0 + 3 * DAY) is None  # too old to pay off
    other = FeatureSpec(kinds=("purchase",), windows=(30,))
    assert behaviour_snapshot_latest(other, T0) is None
    second = behaviour_snapshot_build(SPEC, as_of=T0)
    # A complete build replaces the older snapshot of the same kinds and windows.
    assert list(BehaviourSnapshot.objects.values_list("id", flat=True)) == [second.id]
    assert second.ready_at is not None and second.build_seconds > 0
    # A cutoff before the snapshot cannot use it: the event path answers.
    assert_same_features(frame(T0 - 20 * DAY, second), frame(T0 - 20 * DAY))


def test_the_admin_lists_snapshots_read_only(world, admin_client):
    snapshot = behaviour_snapshot_build(SPEC, as_of=T0)
    page = admin_client.get("/admin/marketing/behavioursnapshot/")
    assert page.status_code == 200 and snapshot.spec_key in page.content.decode()
    assert admin_client.get("/admin/marketing/behavioursnapshot/add/").status_code == 403
