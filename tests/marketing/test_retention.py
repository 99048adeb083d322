"""Events past EVENT_RETENTION_DAYS are deleted; outcomes stored in analyses stay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.models import AuditEntry, TaskRun
from experiments.analysis import experiment_analyse
from experiments.models import Assignment, Experiment
from marketing.models import Event
from marketing.retention import events_retention_purge
from marketing.tasks import events_retention_purge_task
from tests.factories import T0, attributes_declare, customer_make, event_make, experiment_make

pytestmark = pytest.mark.django_db


def test_it_is_off_by_default(settings):
    assert settings.EVENT_RETENTION_DAYS == 0
    customer_make()
    event_make(customer_make(), "visit", T0 - timedelta(days=3000))
    events_retention_purge_task()
    assert Event.objects.count() == 1
    assert not TaskRun.objects.exists()


def test_old_events_go_and_the_stored_analysis_keeps_its_outcomes(settings):
    attributes_declare()
    experiment = experiment_make()
    Experiment.objects.filter(pk=experiment.pk).update(status="stopped", started_at=T0)
    control, email = experiment.arms.order_by("id")
    for i in range(6):
        customer = customer_make()
        Assignment.objects.create(experiment=experiment, customer=customer,
                                  arm=control if i % 2 else email, assigned_at=T0)
        event_make(customer, "purchase", T0 + timedelta(days=1), 10.0 * (i + 1))
    result = experiment_analyse(experiment=experiment)
    stored = result.payload["metrics"]

    settings.EVENT_RETENTION_DAYS = 30  # T0 + 1 day is months before today
    events_retention_purge_task()
    assert not Event.objects.exists()
    result.refresh_from_db()
    assert result.payload["metrics"] == stored
    assert TaskRun.objects.get(name="events_retention_purge").status == "succeeded"


def test_the_purge_deletes_exactly_the_events_before_the_cutoff():
    customer = customer_make()
    old = [event_make(customer, "visit", T0 - timedelta(days=d)) for d in (31, 45)]
    kept = [event_make(customer, "visit", T0 - timedelta(days=d)) for d in (29, 0)]
    assert events_retention_purge(now=T0, days=30) == len(old)
    assert set(Event.objects.values_list("id", flat=True)) == {e.id for e in kept}
    entry = AuditEntry.objects.get(action="delete")
    assert (entry.actor, entry.detail["events"]) == ("system:event-retention", 2)
