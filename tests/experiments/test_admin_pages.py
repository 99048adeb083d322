"""The experiment's overview, results and per-segment pages: content, permissions, query counts."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.groups import ANALYST, CAMPAIGN_MANAGER
from core.models import TaskRun
from experiments.analysis import experiment_analyse
from experiments.demo import demo_seed
from experiments.models import AnalysisResult, Experiment
from experiments.results import result_rows, segment_rows

pytestmark = pytest.mark.django_db


def _client(client, group):
    user = get_user_model().objects.create_user(group.replace(" ", ""), password="x",
                                                is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return client


def _seed(customers):
    demo_seed(customers=customers, seed=5, anchor=datetime(2026, 10, 1, tzinfo=UTC))
    experiment = Experiment.objects.get(key="demo_spring")
    experiment_analyse(experiment=experiment)
    return experiment


def test_the_overview_shows_arms_the_decision_and_what_to_do_next(client):
    experiment = _seed(300)
    page = _client(client, CAMPAIGN_MANAGER).get(
        reverse("admin:experiments_experiment_overview", args=[experiment.id]))
    assert page.status_code == 200
    html = page.content.decode()
    result = AnalysisResult.objects.get(experiment=experiment)
    assert f">{result.decision.replace('_', ' ')}<" in html  # keep_running: "keep running"
    assert "What to do next" in html and "Analyse now" in html and "Train now" in html
    for arm in experiment.arms.all():
        assert arm.name in html
    # Each arm's count is the assignments' GROUP BY, written with separators.
    assert f">{experiment.assignments.count():,} customers assigned" not in html
    assert f"{experiment.assignments.filter(arm__is_control=True).count():,}</td>" in html


def test_effects_read_in_percentage_points_and_the_two_views_never_mix(client):
    experiment = _seed(300)
    result = AnalysisResult.objects.get(experiment=experiment)
    conversion = next(m for m in result.payload["metrics"] if m["kind"] == "proportion")
    c = conversion["comparisons"][0]
    fixed = result_rows(result.payload, view="fixed", sequential_design=True)
    sequential = result_rows(result.payload, view="sequential", sequential_design=True)
    row_f = next(b for b in fixed if b.name == conversion["metric"]).rows[0]
    row_s = next(b for b in sequential if b.name == conversion["metric"]).rows[0]
    used = c["cuped"]["effect"] if c.get("cuped") else c["unadjusted"]
    assert (row_f.low, row_f.high, row_f.p_value) == (
        used["absolute_ci_low"], used["absolute_ci_high"], used["p_value"])
    assert (row_s.low, row_s.high, row_s.p_value) == (
        c["sequential"]["ci_low"], c["sequential"]["ci_high"], c["p_value_adjusted"])
    page = _client(client, ANALYST).get(
        reverse("admin:experiments_experiment_overview", args=[experiment.id]) + "?view=fixed")
    html = page.content.decode()
    effect = used["absolute_effect"] * 100
    assert f"{'+' if effect >= 0 else '-'}{abs(effect):.1f} pp" in html
    assert "95% interval" in html and "Confidence sequence" not in html
    assert "Show the sequential view" in html


def test_segment_intervals_are_widened_for_the_number_of_segment_tests():
    experiment = _seed(300)
    payload = AnalysisResult.objects.get(experiment=experiment).payload
    rows = segment_rows(payload)
    assert len(rows) == sum(len(m["comparisons"]) for s in payload["segments"]
                            for m in s["metrics"])
    row = rows[0]
    cell = next(c for s in payload["segments"] if s["segment"] == row.segment
                for m in s["metrics"] if m["metric"] == row.metric
                for c in m["comparisons"] if c["arm"] == row.arm)
    plain = cell["unadjusted"]["absolute_ci_high"] - cell["unadjusted"]["absolute_ci_low"]
    assert row.high - row.low > plain * 1.3  # z of alpha/m (m tests) against z of alpha


def test_the_analyst_sees_no_buttons_and_every_post_is_refused(client):
    experiment = _seed(300)
    analyst = _client(client, ANALYST)
    html = analyst.get(reverse("admin:experiments_experiment_overview",
                               args=[experiment.id])).content.decode()
    assert "Analyse now</button>" not in html and "<form method=\"post\"" not in html
    before = TaskRun.objects.count()
    for url in [reverse("admin:experiments_experiment_run", args=[experiment.id, "analyse"]),
                reverse("admin:experiments_experiment_run", args=[experiment.id, "train"]),
                reverse("admin:experiments_experiment_transition", args=[experiment.id, "stop"])]:
        assert analyst.post(url).status_code == 403
    assert TaskRun.objects.count() == before
    assert Experiment.objects.get(id=experiment.id).status == experiment.status


def test_analyse_now_queues_a_run_and_the_progress_endpoint_links_the_result(
        client, django_capture_on_commit_callbacks):
    experiment = _seed(300)
    manager = _client(client, CAMPAIGN_MANAGER)
    # Tasks are queued when the request's transaction commits (eager in tests).
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(reverse("admin:experiments_experiment_run",
                                        args=[experiment.id, "analyse"]))
    run = TaskRun.objects.get(name="experiment_analyse")
    assert response.status_code == 302 and response.url.endswith(f"?run={run.id}")
    state = manager.get(reverse("admin:experiments_experiment_progress", args=[run.id])).json()
    newest = AnalysisResult.objects.filter(experiment=experiment).latest("created_at", "id")
    assert state["done"] is True and state["status"] == "succeeded"
    assert state["result_url"] == reverse("admin:experiments_analysisresult_change",
                                          args=[newest.id])


@pytest.mark.parametrize("name", ["overview", "result"])
def test_page_queries_do_not_grow_with_customers(client, name):
    manager = _client(client, CAMPAIGN_MANAGER)
    counts = []
    for customers in (50, 500):
        # Each size seeds the demo inside a savepoint that is rolled back after.
        with transaction.atomic():
            experiment = _seed(customers)
            experiment_analyse(experiment=experiment)  # two snapshots: the history chart
            url = (reverse("admin:experiments_experiment_overview", args=[experiment.id])
                   if name == "overview" else
                   reverse("admin:experiments_analysisresult_change",
                           args=[experiment.analyses.latest("created_at", "id").id]))
            manager.get(url)  # warms process-wide caches (content types) once
            with CaptureQueriesContext(connection) as queries:
                assert manager.get(url + "?segments=all").status_code == 200
            counts.append(len(queries))
            transaction.set_rollback(True)
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("status, targeting, expected", [
    ("running", None, "Not enough evidence yet: keep the experiment running"),
    ("stopped", {"id": 1, "size": 1234, "url": "/x/"},
     "ended without a clear winner for everyone: contact only the customers the model "
     "expects to gain, see the recommended list (1,234 customers)"),
    ("stopped", None, "ended without a clear winner for everyone: train a model"),
])
def test_an_unclear_result_advises_by_the_experiments_status(status, targeting, expected):
    from experiments.models import AnalysisResult, Experiment
    from experiments.results import ModelInsight, next_step

    # An ended test is not advised to keep running: its next step is the targeting.
    sentence = next_step(Experiment(status=status),
                         AnalysisResult(decision="keep_running", payload={}),
                         ModelInsight(targeting=targeting))
    assert expected in sentence
