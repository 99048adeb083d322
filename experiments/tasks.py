"""Celery interfaces over experiment services. Tasks take ids, never instances."""

from __future__ import annotations

from core.models import TaskRun
from core.task_delivery import run_task
from core.task_runs import task_run_reporter
from experiments.analysis import experiment_analyse
from experiments.models import Experiment


@run_task(rerun=True)
def experiment_analyse_task(run: TaskRun) -> dict:
    """Snapshot an experiment's analysis. Safe to repeat: the snapshot is written at the end."""
    experiment = Experiment.objects.get(id=run.params["experiment_id"])
    result = experiment_analyse(experiment=experiment, task_run=run,
                                progress=task_run_reporter(run))
    return {"analysis_result_id": result.id, "decision": result.decision}
