"""Attribute and consent history: every writer versions, every reader reads as of its cutoff."""

import importlib
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.analysis import experiment_analyse
from experiments.models import Assignment, Experiment
from experiments.outcomes import assignment_cutoffs, outcome_breakdowns
from marketing.features import FeatureSpec, features_build, fixed_cutoff
from marketing.models import Customer, CustomerAttribute, CustomerAttributeVersion
from marketing.privacy import customer_data_export, customer_erase
from marketing.segment_rules import segment_members
from marketing.services import customer_save, customers_upsert_bulk
from tests.factories import T0, attributes_declare, event_make, experiment_make

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
SPEC = FeatureSpec(attributes=("age", "channel", "vip"), kinds=("purchase",), windows=(30,))
WEB = {"attr": "channel", "op": "eq", "value": "web"}


@contextmanager
def clock(moment):
    """Writes made inside happen at ``moment`` (the services read timezone.now)."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def upsert(rows, at):
    with clock(at):
        result = customers_upsert_bulk(rows)
    assert not result.rejected, result.rejected
    return result


def features(source):
    chunks = list(features_build(spec=SPEC, source=source))
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    frame.index = np.concatenate([c.customer_ids for c in chunks])
    return frame


def chain(customer_id):
    return list(CustomerAttributeVersion.objects.filter(customer_id=customer_id)
                .order_by("valid_from", "id")
                .values_list("attributes", "marketing_consent", "valid_from", "valid_to",
                             "is_first"))


def assert_chain_is_whole(customer):
    """First version marked, each ends where the next begins, the last is open and is the row."""
    versions = chain(customer.id)
    assert [v[4] for v in versions] == [True] + [False] * (len(versions) - 1)
    for (*_, valid_to, _), (_, _, valid_from, _, _) in zip(versions, versions[1:], strict=False):
        assert valid_to == valid_from
    customer.refresh_from_db()
    assert versions[-1][3] is None
    assert versions[-1][:2] == (customer.attributes, customer.marketing_consent)


@pytest.fixture
def campaign_world():
    """Four customers known since T0 - 30 days, assigned at T0 (the experiment's start)."""
    attributes_declare()
    upsert([{"external_id": "a", "attributes": {"age": 30, "channel": "web", "vip": False},
             "marketing_consent": True},
            {"external_id": "b", "attributes": {"age": 40, "channel": "web"},
             "marketing_consent": True},
            {"external_id": "c", "attributes": {"age": 50, "channel": "phone"},
             "marketing_consent": True},
            {"external_id": "d", "attributes": {"age": 60, "channel": "store"},
             "marketing_consent": False}], T0 - 30 * DAY)
    experiment = experiment_make(attribution_window_days=14)
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.STOPPED,
                                                       started_at=T0)
    experiment.refresh_from_db()
    control, email = experiment.arms.order_by("id")
    customers = {c.external_id: c for c in Customer.objects.all()}
    for name, arm in [("a", email), ("b", control), ("c", email), ("d", control)]:
        Assignment.objects.create(experiment=experiment, customer=customers[name], arm=arm,
                                  assigned_at=T0)
    event_make(customers["a"], "purchase", T0 + 2 * DAY, 25.0)
    event_make(customers["b"], "purchase", T0 + 3 * DAY, 10.0)
    return experiment, customers


def test_an_attribute_changed_after_assignment_moves_neither_the_training_row_nor_a_breakdown(
        campaign_world):
    experiment, customers = campaign_world
    segments = {"web": WEB, "consented": {"consent": True}}
    before_rows = features(assignment_cutoffs(experiment.id))
    before = outcome_breakdowns(experiment, attributes=["channel", "vip"], segments=segments,
                                as_of=experiment.started_at)
    before_analysis = experiment_analyse(experiment=experiment).payload["segments"]

    # Because of the campaign: a joins the loyalty programme from the store, b withdraws consent.
    upsert([{"external_id": "a", "attributes": {"channel": "store", "vip": True}},
            {"external_id": "b", "marketing_consent": False}], T0 + 5 * DAY)

    after_rows = features(assignment_cutoffs(experiment.id))
    pd.testing.assert_frame_equal(after_rows, before_rows)
    a = after_rows.loc[customers["a"].id]
    assert (a["age"], a["channel"], a["vip"], a["purchases_30d"]) == (30.0, "web", 0.0, 0.0)
    after = outcome_breakdowns(experiment, attributes=["channel", "vip"], segments=segments,
                               as_of=experiment.started_at)
    assert after == before
    control, email = experiment.arms.order_by("id")
    # web at the start: a (email, revenue 25) and b (control, 10).
    assert after.segments["web"][email.id]["revenue"].n == 1
    assert after.segments["web"][email.id]["revenue"].sum_y == 25.0
    assert after.segments["web"][control.id]["revenue"].sum_y == 10.0
    assert after.segments["consented"][control.id]["revenue"].n == 1  # b, not d
    assert set(after.attributes["vip"]) == {"false", None}
    assert experiment_analyse(experiment=experiment).payload["segments"] == before_analysis

    # The same readers as of now do see the change: the test above can fail.
    now_rows = features(fixed_cutoff(T0 + 6 * DAY))
    assert now_rows.loc[customers["a"].id, "channel"] == "store"
    now = outcome_breakdowns(experiment, attributes=["channel"], segments=segments,
                             as_of=T0 + 6 * DAY)
    assert email.id not in now.segments["web"]
    assert control.id not in now.segments["consented"]


def test_scoring_now_reads_the_customer_rows_and_agrees_with_the_history(campaign_world):
    experiment, customers = campaign_world
    upsert([{"external_id": "c", "attributes": {"channel": "web"}}], T0 + 5 * DAY)
    # No version closed after T0 + 6 days: the fast path (customer rows) is taken.
    with CaptureQueriesContext(connection) as fast_queries:
        fast = features(fixed_cutoff(T0 + 6 * DAY))
    # Four days earlier c's change lies ahead: read from the history.
    with CaptureQueriesContext(connection) as past_queries:
        past = features(fixed_cutoff(T0 + 4 * DAY))
    versions_read = "COALESCE(c.valid_to, c.valid_from)"
    assert not any(versions_read in q["sql"] for q in fast_queries.captured_queries)
    assert any(versions_read in q["sql"] for q in past_queries.captured_queries)
    assert fast.loc[customers["c"].id, "channel"] == "web"
    assert past.loc[customers["c"].id, "channel"] == "phone"
    assert list(fast["age"]) == list(past["age"]) == [30.0, 40.0, 50.0, 60.0]


def test_consent_withdrawn_after_a_cutoff_still_reads_as_given_at_the_cutoff(campaign_world):
    _, customers = campaign_world
    upsert([{"external_id": "a", "marketing_consent": False}], T0 + 5 * DAY)
    consented = {"consent": True}

    def members(as_of):
        return set(segment_members(consented, as_of=as_of).values_list("external_id", flat=True))

    assert members(T0 + 5 * DAY - timedelta(microseconds=1)) == {"a", "b", "c"}
    assert members(T0 + 5 * DAY) == {"b", "c"}  # valid from the write's instant on
    assert members(None) == {"b", "c"}
    both = {"all": [consented, WEB]}
    assert set(segment_members(both, as_of=T0).values_list("external_id", flat=True)) == {
        "a", "b"}
    # Before the first version the first version stands: nothing earlier is known.
    assert members(T0 - 365 * DAY) == {"a", "b", "c"}


def test_a_bulk_upsert_of_unchanged_rows_writes_no_version():
    attributes_declare()
    rows = [{"external_id": f"c{i}", "attributes": {"age": i}, "marketing_consent": True}
            for i in range(5)]
    upsert(rows, T0)
    assert CustomerAttributeVersion.objects.count() == 5
    # Sent again, partly as a subset of the keys, one consent changed.
    again = [{"external_id": f"c{i}", "attributes": {"age": i}} for i in range(4)]
    again.append({"external_id": "c4", "marketing_consent": False})
    result = upsert(again, T0 + DAY)
    assert (result.updated, result.unchanged) == (1, 4)
    assert CustomerAttributeVersion.objects.count() == 6
    assert CustomerAttributeVersion.objects.filter(valid_to__isnull=False).count() == 1
    c4 = Customer.objects.get(external_id="c4")
    assert [(v[1], v[2], v[3]) for v in chain(c4.id)] == [(True, T0, T0 + DAY),
                                                           (False, T0 + DAY, None)]


def test_a_version_chain_has_no_gaps_or_overlaps_whichever_writer_writes():
    attributes_declare()
    times = [T0 + k * DAY for k in range(6)]
    upsert([{"external_id": "x", "attributes": {"age": 1}},
            {"external_id": "y", "attributes": {"age": 2}}], times[0])
    upsert([{"external_id": "x", "attributes": {"channel": "web"}, "marketing_consent": True},
            {"external_id": "y", "attributes": {"age": 2}}], times[1])  # y unchanged
    upsert([{"external_id": "x", "attributes": {"vip": True}}], times[2])
    with clock(times[3]):  # the admin's door
        x = Customer.objects.get(external_id="x")
        x.attributes = {"age": 3}
        customer_save(customer=x)
    with clock(times[4]):  # a new customer through the single-row door
        customer_save(customer=Customer(external_id="z", attributes={"age": 9}))
    upsert([{"external_id": "x", "marketing_consent": False},
            {"external_id": "z", "attributes": {"age": 10}}], times[5])

    x, y, z = (Customer.objects.get(external_id=e) for e in "xyz")
    for customer in (x, y, z):
        assert_chain_is_whole(customer)
    assert [v[2] for v in chain(x.id)] == [times[0], times[1], times[2], times[3], times[5]]
    assert [v[:2] for v in chain(x.id)] == [
        ({"age": 1}, False), ({"age": 1, "channel": "web"}, True),
        ({"age": 1, "channel": "web", "vip": True}, True), ({"age": 3}, True),
        ({"age": 3}, False)]
    assert len(chain(y.id)) == 1 and len(chain(z.id)) == 2
    # As of any instant a customer has exactly one version.
    for moment in [times[0] - DAY, *times, times[2] + timedelta(hours=1)]:
        assert segment_members({"attr": "age", "op": "exists", "value": True},
                               as_of=moment).filter(pk=x.pk).count() == 1


def test_erasure_leaves_no_personal_value_in_any_history_row():
    attributes_declare()
    CustomerAttribute.objects.create(key="email", kind=CustomerAttribute.Kind.CATEGORICAL,
                                     is_personal=True)
    upsert([{"external_id": "p", "attributes": {"age": 20, "email": "old@example.com"}}], T0)
    upsert([{"external_id": "p", "attributes": {"email": "new@example.com"}}], T0 + DAY)
    upsert([{"external_id": "p", "attributes": {"age": 21}}], T0 + 2 * DAY)
    customer = Customer.objects.get(external_id="p")
    assert len(chain(customer.id)) == 3
    with clock(T0 + 3 * DAY):
        record = customer_erase(customer=customer)
    assert record.attributes_removed == ["email"]
    table = connection.ops.quote_name(CustomerAttributeVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT attributes FROM {table} WHERE customer_id = %s", [customer.id])
        stored = " ".join(str(row[0]) for row in cursor.fetchall())
    assert "example.com" not in stored and "email" not in stored
    # The first two versions differed only by e-mail: one now, ending where age changed.
    assert [v[:4] for v in chain(customer.id)] == [
        ({"age": 20}, False, T0, T0 + 2 * DAY), ({"age": 21}, False, T0 + 2 * DAY, None)]
    assert_chain_is_whole(customer)
    history = customer_data_export(customer=customer)["attribute_history"]
    assert [v["attributes"] for v in history] == [{"age": 20}, {"age": 21}]


def test_the_migration_gives_existing_customers_a_first_version_from_their_creation():
    stored = [Customer.objects.create(external_id=f"old{i}", attributes={"age": i},
                                      marketing_consent=i % 2 == 0) for i in range(3)]
    migration = importlib.import_module(
        "marketing.migrations.0006_customer_attribute_versions_initial")
    editor = SimpleNamespace(connection=connection)
    with mock.patch.object(migration, "CHUNK", 2):  # two chunks
        migration.versions_create(apps, editor)
        migration.versions_create(apps, editor)  # a re-run adds nothing
    for customer in stored:
        assert chain(customer.id) == [(customer.attributes, customer.marketing_consent,
                                       customer.created_at, None, True)]


def test_the_demo_and_the_hillstrom_import_write_one_first_version_per_customer(tmp_path):
    from experiments.demo import demo_seed
    from experiments.minethatdata_import import hillstrom_import
    from tests.experiments.test_hillstrom_import import ROWS, write

    demo_seed(customers=120, seed=5, anchor=T0)
    path = write(tmp_path, ROWS)
    hillstrom_import(path)
    hillstrom_import(path)  # idempotent: no second version
    assert Customer.objects.count() == 125
    versions = CustomerAttributeVersion.objects.all()
    assert versions.count() == 125
    assert not versions.filter(is_first=False).exists()
    assert not versions.filter(valid_to__isnull=False).exists()
    for customer in Customer.objects.filter(external_id__in=["demo-0000001", "hillstrom-3"]):
        assert chain(customer.id) == [(customer.attributes, True, customer.created_at, None,
                                       True)]
    # Stored today, read as of the 2008 mailing: the first version (the file's values),
    # through the history since one customer's recency changed today.
    upsert([{"external_id": "hillstrom-3", "attributes": {"recency": 1}}], T0 + 300 * DAY)
    hillstrom = Experiment.objects.get(key="hillstrom")
    chunks = features_build(spec=FeatureSpec(attributes=("recency",), kinds=("purchase",),
                                             windows=(30,)),
                            source=assignment_cutoffs(hillstrom.id))
    assert [v for c in chunks for v in c.frame["recency"]] == [10.0, 6.0, 7.0, 9.0, 2.0]
