"""What Celery beat sends: per-campaign schedules and the task-run reaper."""

from __future__ import annotations

from celery import shared_task

from core.models import TaskRun
from core.task_delivery import task_run_execute
from core.task_runs import task_runs_reap, worker_heartbeat_record
from jobs.schedules import campaign_action_run


@shared_task(bind=True)
def campaign_scheduled_action_task(self, campaign_id: int, action: str) -> None:
    """What beat sends: record a run, then queue the action's services.

    At most once (acknowledged on receipt, never retried): running it twice
    could queue its work twice, so a lost attempt is failed with the reason
    and the schedule's next tick does the work.
    """
    run = TaskRun.objects.create(name=f"scheduled_{action}", task=self.name, rerun=False,
                                 params={"campaign_id": campaign_id, "action": action})
    task_run_execute(self, run.id,
                     lambda _run: campaign_action_run(campaign_id=campaign_id, action=action),
                     retry=False)


@shared_task(bind=True, ignore_result=True)
def task_runs_reap_task(self) -> dict:
    """Every TASK_REAPER_SECONDS: restart or fail runs whose worker was lost, send unsent runs.

    Also records the worker's heartbeat (core.models.WorkerHeartbeat).
    """
    worker_heartbeat_record(self.request.hostname or "eager")
    return task_runs_reap()
