"""Celery interfaces over marketing services. Tasks take ids, never instances."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from core.db.sql_tuning import large_aggregates
from core.models import TaskRun
from core.task_delivery import run_task, task_run_execute
from marketing.models import Segment
from marketing.retention import events_retention_purge
from marketing.segment_rules import segment_count_public, segment_members


@run_task(rerun=True, name="marketing.tasks.segment_size")
def segment_size(run: TaskRun) -> dict:
    """Count a segment's members now and cache the count on the segment (safe to repeat)."""
    segment = Segment.objects.get(id=run.params["segment_id"])
    now = timezone.now()
    with large_aggregates():  # JIT off and a statement timeout (core.db.sql_tuning)
        count = segment_members(segment.rule, as_of=now).count()
    Segment.objects.filter(id=segment.id).update(member_count=count, counted_at=now)
    segment.member_count, segment.counted_at = count, now
    # The run's result is shown in the admin and the API: the count as shown
    # there (a small cell suppressed, with the reason), never the exact one.
    shown, note = segment_count_public(segment)
    return {"segment_id": segment.id, "members": shown, **({"note": note} if note else {})}


@shared_task(bind=True)
def events_retention_purge_task(self) -> None:
    """What beat sends daily: delete events past EVENT_RETENTION_DAYS (none when it is 0).

    At most once: a purge cut short is finished by the next day's run.
    """
    if not settings.EVENT_RETENTION_DAYS:
        return
    run = TaskRun.objects.create(name="events_retention_purge", task=self.name, rerun=False,
                                 params={})
    task_run_execute(self, run.id, lambda _run: {"events_deleted": events_retention_purge()},
                     retry=False)
