"""The feature builder: hand-checked values, and no leakage from after the cutoff."""

from datetime import timedelta

import numpy as np
import pytest

from experiments.models import Assignment
from experiments.outcomes import assignment_cutoffs
from marketing.features import (
    FeatureSpec,
    features_build,
    fixed_cutoff,
)
from tests.factories import T0, attributes_declare, customer_make, event_make, experiment_make

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
SPEC = FeatureSpec(attributes=("age", "channel", "vip"), kinds=("purchase", "visit"),
                   windows=(30, 90), sequence_length=3)


@pytest.fixture
def world():
    attributes_declare()
    ann = customer_make(age=30, channel="web", vip=True)
    bob = customer_make(channel="phone")
    for offset, value in [(-5, 10.0), (-40, 20.0), (-100, 30.0)]:
        event_make(ann, "purchase", T0 + offset * DAY, value)
    event_make(ann, "visit", T0 - 2 * DAY)
    event_make(bob, "visit", T0 - 60 * DAY)
    experiment = experiment_make()
    arm = experiment.arms.first()
    for customer in (ann, bob):
        Assignment.objects.create(experiment=experiment, customer=customer, arm=arm,
                                  assigned_at=T0)
    return experiment, ann, bob


def build(source, chunk_size=50_000):
    chunks = list(features_build(spec=SPEC, source=source, chunk_size=chunk_size))
    ids = np.concatenate([c.customer_ids for c in chunks])
    import pandas as pd
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    sequences = [s for c in chunks for s in c.sequences]
    return ids, frame, sequences


def test_it_computes_hand_checked_features(world):
    experiment, ann, bob = world
    ids, frame, sequences = build(assignment_cutoffs(experiment.id))
    assert list(ids) == [ann.id, bob.id]
    a, b = frame.iloc[0], frame.iloc[1]
    assert (a["age"], a["channel"], a["vip"]) == (30.0, "web", 1.0)
    assert np.isnan(b["age"]) and b["channel"] == "phone"
    assert (a["purchases_30d"], a["purchases_90d"], a["visits_30d"]) == (1, 2, 1)
    assert (a["revenue_30d"], a["revenue_90d"]) == (10.0, 30.0)
    assert a["days_since_purchase"] == pytest.approx(5.0)
    assert a["days_since_visit"] == pytest.approx(2.0)
    # Outside the longest window (90 days) counts as "never": 91.
    assert (b["visits_30d"], b["visits_90d"], b["days_since_purchase"]) == (0, 1, 91)
    # Last three events, oldest first: (kind index, value, days before cutoff).
    kinds = [k for k, _, _ in sequences[0]]
    assert [round(g) for _, _, g in sequences[0]] == [40, 5, 2]
    assert [v for _, v, _ in sequences[0]] == [20.0, 10.0, 0.0]
    assert len(set(kinds)) == 2
    assert [round(g) for _, _, g in sequences[1]] == [60]


def test_events_after_the_cutoff_never_change_a_feature(world):
    experiment, ann, bob = world
    before = build(assignment_cutoffs(experiment.id))
    for customer in (ann, bob):
        event_make(customer, "purchase", T0, 999.0)  # exactly at the cutoff
        event_make(customer, "purchase", T0 + DAY, 999.0)
        event_make(customer, "visit", T0 + 3 * DAY)
    after = build(assignment_cutoffs(experiment.id))
    assert before[1].equals(after[1])
    assert before[2] == after[2]


def test_a_fixed_cutoff_and_chunking_give_the_same_features(world):
    experiment, ann, bob = world
    ids, frame, _ = build(fixed_cutoff(T0), chunk_size=1)
    assert list(ids) == [ann.id, bob.id]
    assert frame.equals(build(assignment_cutoffs(experiment.id))[1])
    later = build(fixed_cutoff(T0 + 50 * DAY))[1]
    assert later.iloc[0]["purchases_30d"] == 0 and later.iloc[0]["purchases_90d"] == 2
