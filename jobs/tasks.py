"""What Celery beat sends for per-campaign schedules."""

from __future__ import annotations

from celery import shared_task

from core.models import TaskRun
from core.task_runs import task_run_tracking
from jobs.schedules import campaign_action_run


@shared_task
def campaign_scheduled_action_task(campaign_id: int, action: str) -> None:
    """What beat sends: record a run, then queue the action's services."""
    run = TaskRun.objects.create(name=f"scheduled_{action}",
                                 params={"campaign_id": campaign_id, "action": action})
    with task_run_tracking(run.id) as claimed:
        if claimed is None:
            return
        claimed.result = campaign_action_run(campaign_id=campaign_id, action=action)
