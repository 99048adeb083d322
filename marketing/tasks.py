"""Celery interfaces over marketing services. Tasks take ids, never instances."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from core.db.sql_tuning import large_aggregates
from core.task_runs import task_run_tracking
from marketing.models import Segment
from marketing.segment_rules import segment_members


@shared_task(acks_late=True, reject_on_worker_lost=True)
def segment_size(run_id: int) -> None:
    """Count a segment's members now and cache the count on the segment."""
    with task_run_tracking(run_id) as run:
        if run is None:
            return
        segment = Segment.objects.get(id=run.params["segment_id"])
        now = timezone.now()
        with large_aggregates():  # JIT off and a statement timeout (core.db.sql_tuning)
            count = segment_members(segment.rule, as_of=now).count()
        Segment.objects.filter(id=segment.id).update(member_count=count, counted_at=now)
        run.result = {"segment_id": segment.id, "members": count}
