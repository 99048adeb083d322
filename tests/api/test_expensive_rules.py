"""Rules too large to plan are refused; heavy queries run with the analytics session settings."""

import pytest
from django.db import connection
from django.db.models.expressions import RawSQL

from core.db.sql_tuning import large_aggregates
from core.models import TaskRun
from marketing import tasks
from marketing.models import Customer, Segment
from tests.factories import customer_make
from tests.missing import missing

pytestmark = pytest.mark.django_db

LEAF = {"attr": "age", "op": "gte", "value": 40}


def post_rule(api, rule):
    return api.post("/api/v1/segments/", {"key": "s", "name": "S", "rule": rule}, format="json")


def test_a_20000_branch_rule_is_refused_naming_the_limit(api):
    response = post_rule(api, {"any": [dict(LEAF, value=i) for i in range(20_000)]})
    assert response.status_code == 400
    message = response.json()["error"]["fields"]["rule"][0]
    assert "200 nodes" in message and "SEGMENT_RULE_MAX_NODES" in message
    assert not Segment.objects.exists()


def test_the_largest_allowed_rule_is_accepted(api, settings):
    children = [dict(LEAF, value=i) for i in range(settings.SEGMENT_RULE_MAX_NODES - 1)]
    assert post_rule(api, {"any": children}).status_code == 201


def test_a_rule_nested_too_deep_is_refused(api, settings):
    rule = LEAF
    for _ in range(settings.SEGMENT_RULE_MAX_DEPTH):
        rule = {"not": rule}
    response = post_rule(api, rule)
    assert response.status_code == 400
    assert "SEGMENT_RULE_MAX_DEPTH" in response.json()["error"]["fields"]["rule"][0]
    assert post_rule(api, rule["not"]).status_code == 201  # one level less fits


def test_an_in_list_too_long_is_refused(api):
    response = post_rule(api, {"attr": "channel", "op": "in", "value": ["web"] * 1001})
    assert response.status_code == 400
    assert "SEGMENT_RULE_MAX_VALUES" in response.json()["error"]["fields"]["rule"][0]


def test_the_admin_checks_rules_as_the_api_does(admin_client):
    from tests.factories import attributes_declare

    attributes_declare()
    rule = '{"any": [' + ", ".join(['{"attr": "age", "op": "gte", "value": 1}'] * 300) + "]}"
    response = admin_client.post("/admin/marketing/segment/add/",
                                 {"key": "big", "name": "Big", "description": "", "rule": rule})
    assert response.status_code == 200  # the form again, with the error
    assert "SEGMENT_RULE_MAX_NODES" in response.content.decode()
    assert not Segment.objects.exists()


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        missing("session settings are PostgreSQL's")


@pytest.mark.postgres
def test_large_aggregates_turns_jit_off_and_bounds_statements(postgres, settings):
    settings.ANALYTICS_STATEMENT_TIMEOUT = "7min"
    with large_aggregates(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_setting('statement_timeout')")
        assert cursor.fetchone() == ("off", "7min")


@pytest.mark.postgres
def test_a_segment_count_that_runs_too_long_is_stopped(postgres, settings, monkeypatch):
    settings.ANALYTICS_STATEMENT_TIMEOUT = "50ms"
    customer_make()
    segment = Segment.objects.create(key="slow", name="Slow", rule=LEAF)
    # A members query that takes a second per customer stands for a rule gone wrong.
    slow = Customer.objects.filter(id__in=RawSQL(
        "SELECT id FROM marketing_customer WHERE pg_sleep(1) IS NULL", []))
    monkeypatch.setattr(tasks, "segment_members", lambda rule, as_of: slow)
    run = TaskRun.objects.create(name="segment_size", params={"segment_id": segment.id})
    with pytest.raises(Exception, match="statement timeout"):
        tasks.segment_size(run.id)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.FAILED and "statement timeout" in run.error
