"""A scoring chunk retries a transient error on its own and counts its progress once."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from core.models import TaskRun
from core.task_runs import task_run_claim
from modelling import tasks
from modelling.models import ModelVersion
from tests.factories import T0, campaign_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def scoring_run():
    version = ModelVersion.objects.create(campaign=campaign_make(), kind=ModelVersion.Kind.UPLIFT,
                                          estimator="test", target_metric="purchase")
    run = TaskRun.objects.create(name="customers_score", task=tasks.customers_score_task.name,
                                 params={"model_version_id": version.id})
    return task_run_claim(run.id)


def test_a_chunk_retries_a_dropped_connection_alone_and_counts_once(scoring_run, monkeypatch):
    calls = []

    def score_chunk(**kwargs):
        calls.append(kwargs["chunk"])
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return 7

    monkeypatch.setattr(tasks, "score_chunk", score_chunk)
    args = (scoring_run.id, scoring_run.lease_token, 0, 100, T0.isoformat(), 2)
    assert tasks.customers_score_chunk_task.apply(args, throw=False).get() == 7
    assert len(calls) == 2  # retried, without failing the run
    run = TaskRun.objects.get(id=scoring_run.id)
    assert run.status == TaskRun.Status.RUNNING and run.progress == pytest.approx(0.5)

    assert tasks.customers_score_chunk_task.apply(args, throw=False).get() == 7  # delivered again
    run.refresh_from_db()
    assert run.progress == pytest.approx(0.5) and run.result["parts_done"] == ["0-100"]

    stale = (scoring_run.id, "an-earlier-attempt", 100, 200, T0.isoformat(), 2)
    assert tasks.customers_score_chunk_task.apply(stale, throw=False).get() == 0
    assert len(calls) == 3  # the earlier attempt's chunk did not score


@pytest.fixture
def eager_retries_do_not_raise():
    """Celery's eager retries nest applies; with eager errors propagated, the Retry escapes."""
    from config.celery import app

    saved = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = saved


def test_a_chunk_that_keeps_failing_fails_the_run(scoring_run, monkeypatch, settings,
                                                  eager_retries_do_not_raise):
    settings.TASK_RUN_MAX_ATTEMPTS = 3
    calls = []

    def score_chunk(**kwargs):
        calls.append(1)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tasks, "score_chunk", score_chunk)
    args = (scoring_run.id, scoring_run.lease_token, 0, 100, T0.isoformat(), 1)
    with pytest.raises(OperationalError):
        tasks.customers_score_chunk_task.apply(args, throw=False).get()
    assert len(calls) == 3
    run = TaskRun.objects.get(id=scoring_run.id)
    assert run.status == TaskRun.Status.FAILED and "server closed the connection" in run.error
