"""Event retention: behavioural events older than EVENT_RETENTION_DAYS are deleted.

Off by default (0 keeps every event). Beat runs ``events_retention_purge``
daily (config.settings CELERY_BEAT_SCHEDULE). What was computed from the
events stays: outcomes already stored in analysis snapshots
(AnalysisResult.payload), model versions and their metrics. A re-analysis
or a retrain after the purge sees only the events that are left, so set
the retention longer than the longest experiment's attribution window and
the longest feature window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from marketing.models import Event

CHUNK = 10_000


def events_retention_purge(*, now: datetime | None = None, days: int | None = None) -> int:
    """Delete events that occurred more than ``days`` (EVENT_RETENTION_DAYS) ago; the count.

    Deletes in chunks of ids, each its own transaction, so a large first
    purge neither holds one long lock nor needs one huge undo log, and an
    interrupted run resumes. Each run that deletes anything is audit-logged.
    """
    days = settings.EVENT_RETENTION_DAYS if days is None else days
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(Event.objects.filter(occurred_at__lt=cutoff).order_by()
                   .values_list("id", flat=True)[:CHUNK])
        if not ids:
            break
        with transaction.atomic():
            deleted += Event.objects.filter(id__in=ids).delete()[0]
    if deleted:
        audit_record("delete", f"events older than {days} days", system="event-retention",
                     detail={"events": deleted, "before": cutoff.isoformat()})
    return deleted
