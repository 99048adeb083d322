"""Admin pages issue the same queries at N and 3N customers: nothing grows with the data.

Each page is rendered over a world of N customers (assignments, events,
scores, a targeting list), then again after 2N more, and the number of
queries must not change. No query may count a whole big table either: a
COUNT over customers, events, scores or assignments must be filtered (an
indexed key) or capped (core.admin_paging's LIMIT). Timings at 1,000,000
customers are in benchmarks/admin_pages.py.
"""

import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from experiments.analysis import experiment_analyse
from experiments.models import Assignment
from experiments.services import ArmSpec
from marketing.models import Customer, Event
from modelling.models import CustomerScore, ModelVersion
from modelling.targeting import targeting_list_create
from tests.factories import T0, campaign_make, experiment_make

pytestmark = pytest.mark.django_db

N = 30
BIG_TABLES = ("marketing_customer", "marketing_event", "modelling_customerscore",
              "experiments_assignment", "modelling_targetingentry")


def _grow(experiment, version, start: int, count: int) -> None:
    """``count`` more customers, each assigned, with two events and a score."""
    Customer.objects.bulk_create([
        Customer(external_id=f"pq-{i:05d}", marketing_consent=True,
                 attributes={"age": 20 + i % 50}) for i in range(start, start + count)])
    people = list(Customer.objects.filter(external_id__startswith="pq-").order_by("id")
                  [start:start + count])
    arms = list(experiment.arms.order_by("id"))
    Assignment.objects.bulk_create([Assignment(experiment=experiment, customer=c,
                                               arm=arms[i % len(arms)], assigned_at=T0)
                                    for i, c in enumerate(people)])
    Event.objects.bulk_create([Event(customer=c, kind=kind, occurred_at=T0, value=10.0)
                               for c in people for kind in ("purchase", "email_open")])
    CustomerScore.objects.bulk_create([
        CustomerScore(model_version=version, customer=c, response=0.05, uplift=0.02,
                      best_arm="email", uplift_by_arm={"email": 0.02, "coupon": 0.01},
                      guardrail_by_arm={}, scored_at=T0) for c in people])


@pytest.fixture
def world(client, monkeypatch):
    # Pages shorter than the data, as at a million rows: a changelist whose rows all fit
    # on one page reads them without a LIMIT (Django's changelist), which is no scan.
    for model in (Customer, Event):
        monkeypatch.setattr(type(admin.site._registry[model]), "list_per_page", 10)
    campaign = campaign_make(cost_per_contact="0.10", value_per_conversion="40.00")
    experiment = experiment_make(campaign=campaign, arms=[
        ArmSpec("control", 1, is_control=True, contacts_customer=False),
        ArmSpec("email", 1), ArmSpec("coupon", 1)])
    version = ModelVersion.objects.create(
        campaign=campaign, experiment=experiment, kind="uplift", estimator="tarnet",
        target_metric="purchase", status="ready", is_champion=True,
        metrics={"arm_names": ["control", "email", "coupon"]})
    _grow(experiment, version, 0, N)
    result = experiment_analyse(experiment=experiment)
    target = targeting_list_create(campaign=campaign, model_version=version, evaluate=False)
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456")
    client.force_login(user)
    customer = Customer.objects.filter(external_id__startswith="pq-").earliest("id")
    pages = {
        "experiment overview": reverse("admin:experiments_experiment_overview",
                                       args=[experiment.id]),
        "results": reverse("admin:experiments_analysisresult_change", args=[result.id]),
        "all segments": reverse("admin:experiments_analysisresult_change",
                                args=[result.id]) + "?segments=all&view=sequential",
        "model version": reverse("admin:modelling_modelversion_change", args=[version.id]),
        "targeting form": reverse("admin:modelling_modelversion_target", args=[version.id]),
        "targeting list": reverse("admin:modelling_targetinglist_change", args=[target.id]),
        "customer page": reverse("admin:marketing_customer_change", args=[customer.id]),
        "customer changelist": reverse("admin:marketing_customer_changelist"),
        "customer search": reverse("admin:marketing_customer_changelist") + "?q=pq-0001",
        "events changelist": reverse("admin:marketing_event_changelist"),
        "events by kind": reverse("admin:marketing_event_changelist") + "?kind__exact=purchase",
        "experiment changelist": reverse("admin:experiments_experiment_changelist"),
        "model version changelist": reverse("admin:modelling_modelversion_changelist"),
        "targeting list changelist": reverse("admin:modelling_targetinglist_changelist"),
    }
    return client, experiment, version, pages


def _render(client, pages) -> dict[str, list[str]]:
    """The SQL of one render of each page (after a warm-up that fills caches)."""
    queries = {}
    for name, url in pages.items():
        assert client.get(url).status_code == 200, name
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        queries[name] = [q["sql"] for q in captured.captured_queries]
    return queries


def full_scans(sqls: list[str]) -> list[str]:
    """Queries that read a big table with neither a WHERE nor a LIMIT: a COUNT(*) of
    the whole table, a DISTINCT over a column (a list filter), a whole-table GROUP BY."""
    found = []
    for sql in sqls:
        tables = set(re.findall(r'(?:FROM|JOIN) "(\w+)"', sql))
        upper = sql.upper()
        if tables & set(BIG_TABLES) and "WHERE" not in upper and "LIMIT" not in upper:
            found.append(sql)
    return found


def test_every_page_issues_the_same_queries_at_three_times_the_data(world):
    client, experiment, version, pages = world
    before = _render(client, pages)
    assert all(before.values())  # the capture saw each page's queries
    _grow(experiment, version, N, 2 * N)
    after = _render(client, pages)
    assert Customer.objects.count() == 3 * N
    grown = {name: (len(before[name]), len(after[name])) for name in pages
             if len(before[name]) != len(after[name])}
    assert grown == {}
    for name, sqls in after.items():
        assert full_scans(sqls) == [], name


def test_the_checker_catches_a_whole_table_scan():
    assert full_scans(['SELECT COUNT(*) AS "__count" FROM "marketing_customer"'])
    assert not full_scans(['SELECT COUNT(*) FROM (SELECT 1 FROM "marketing_customer" '
                           'LIMIT 10000) subquery'])
    assert not full_scans(['SELECT COUNT(*) FROM "experiments_assignment" '
                           'WHERE "experiments_assignment"."experiment_id" = 3'])
    assert full_scans(['SELECT DISTINCT "marketing_event"."source" FROM "marketing_event" '
                       'ORDER BY "marketing_event"."source" ASC'])
