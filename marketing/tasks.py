"""Celery interfaces over marketing services. Tasks take ids, never instances."""

from __future__ import annotations

from django.utils import timezone

from core.models import TaskRun
from core.task_delivery import run_task
from marketing.models import Segment
from marketing.segment_rules import segment_members


@run_task(rerun=True, name="marketing.tasks.segment_size")
def segment_size(run: TaskRun) -> dict:
    """Count a segment's members now and cache the count on the segment (safe to repeat)."""
    segment = Segment.objects.get(id=run.params["segment_id"])
    now = timezone.now()
    count = segment_members(segment.rule, as_of=now).count()
    Segment.objects.filter(id=segment.id).update(member_count=count, counted_at=now)
    return {"segment_id": segment.id, "members": count}
