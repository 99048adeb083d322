"""Celery interfaces over experiment services. Tasks take ids, never instances."""

from __future__ import annotations

from celery import shared_task

from core.task_runs import task_run_progress, task_run_tracking
from experiments.analysis import experiment_analyse
from experiments.models import Experiment


@shared_task(acks_late=True, reject_on_worker_lost=True)
def experiment_analyse_task(run_id: int) -> None:
    """Snapshot an experiment's analysis. Safe to redeliver: the run is claimed once."""
    with task_run_tracking(run_id) as run:
        if run is None:
            return
        experiment = Experiment.objects.get(id=run.params["experiment_id"])
        result = experiment_analyse(
            experiment=experiment, task_run=run,
            progress=lambda fraction, step: task_run_progress(run_id, fraction, step),
        )
        run.result = {"analysis_result_id": result.id, "decision": result.decision}
