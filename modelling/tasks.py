"""Celery interfaces over the model services: training, scoring, snapshots.

Tasks take ids, never instances.
"""

from __future__ import annotations

from datetime import datetime

from celery import chord, shared_task
from django.core.exceptions import ValidationError
from django.db.models import F

from core.models import TaskRun
from core.task_runs import (
    task_run_claim,
    task_run_fail,
    task_run_progress,
    task_run_succeed,
    task_run_tracking,
)
from experiments.models import Experiment
from marketing.models import Campaign, Segment
from modelling.behaviour_training import churn_models_train, value_model_train
from modelling.models import ModelVersion, SegmentationRun, SegmentCluster
from modelling.registry import champion
from modelling.response_training import response_model_train
from modelling.scoring import ChunkPlan, behaviour_snapshots_refresh, score_chunk, score_plan
from modelling.segmentation import cluster_memberships_extend, segmentation_run_execute
from modelling.targeting import targeting_list_create
from modelling.training import uplift_model_train


@shared_task(acks_late=True, reject_on_worker_lost=True)
def uplift_model_train_task(run_id: int) -> None:
    """Train, evaluate and register uplift models for an experiment."""
    with task_run_tracking(run_id) as run:
        if run is None:
            return
        params = run.params
        experiment = Experiment.objects.get(id=params["experiment_id"])
        metric = experiment.metrics.get(name=params["metric"]) if params.get("metric") else None
        versions = uplift_model_train(
            experiment=experiment, metric=metric,
            estimators=params.get("estimators", ["default"]),
            baselines=params.get("baselines", ["X"]),
            estimator_params=params.get("estimator_params"),
            random_state=params.get("random_state", 0), task_run=run,
            progress=lambda fraction, step: task_run_progress(run_id, fraction, step),
        )
        run.result = {"model_version_ids": [v.id for v in versions],
                      "champion_ids": [v.id for v in versions if v.is_champion]}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def customers_score_task(run_id: int) -> None:
    """Plan the chunks and fan them out; the chord's callback closes the run."""
    run = task_run_claim(run_id)
    if run is None:
        return
    try:
        chunks = score_plan(chunk_size=run.params.get("chunk_size", 50_000))
        cutoff = run.params["cutoff"]
        header = [customers_score_chunk_task.s(run_id, c.low, c.high, cutoff) for c in chunks]
        TaskRun.objects.filter(id=run_id).update(step=f"scoring {len(chunks)} chunks")
        chord(header)(customers_score_finish_task.s(run_id))
    except Exception as exc:
        task_run_fail(run_id, exc)
        raise


@shared_task(acks_late=True, reject_on_worker_lost=True)
def customers_score_chunk_task(run_id: int, low: int, high: int, cutoff: str) -> int:
    """Score one id range. Replaces that range's rows, so a retry is harmless."""
    run = TaskRun.objects.get(id=run_id)
    try:
        version = ModelVersion.objects.get(id=run.params["model_version_id"])
        segment_id = run.params.get("segment_id")
        written = score_chunk(
            version=version, chunk=ChunkPlan(low, high), cutoff=datetime.fromisoformat(cutoff),
            segment=Segment.objects.get(id=segment_id) if segment_id else None)
    except Exception as exc:
        task_run_fail(run_id, exc)
        raise
    total = max(int(run.params.get("chunks", 1)), 1)
    TaskRun.objects.filter(id=run_id).update(progress=F("progress") + 1.0 / total)
    return written


@shared_task(acks_late=True, reject_on_worker_lost=True)
def customers_score_finish_task(written: list[int], run_id: int) -> None:
    task_run_succeed(run_id, {"customers_scored": int(sum(written)), "chunks": len(written)})


@shared_task
def behaviour_snapshots_refresh_task() -> None:
    """What beat sends daily: rebuild the behaviour snapshots the champions score with."""
    run = TaskRun.objects.create(name="behaviour_snapshots_refresh", params={})
    with task_run_tracking(run.id) as claimed:
        if claimed is None:
            return
        claimed.result = {"snapshots": behaviour_snapshots_refresh()}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def response_model_train_task(run_id: int) -> None:
    """Train and register a propensity-to-convert model for a campaign."""
    with task_run_tracking(run_id) as run:
        if run is None:
            return
        params = run.params
        version = response_model_train(
            campaign=Campaign.objects.get(id=params["campaign_id"]),
            event_kind=params.get("event_kind", "purchase"),
            window_days=params.get("window_days", 30), params=params.get("model_params"),
            task_run=run, progress=lambda f, step: task_run_progress(run_id, f, step))
        run.result = {"model_version_id": version.id, "status": version.status,
                      "champion": version.is_champion}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def targeting_list_build_task(run_id: int) -> None:
    """Build the list jobs.requests.targeting_list_request queued; its id goes in the result.

    One step is reported, before the build: targeting_list_create is one
    transaction, so progress written inside it (reading scores, choosing,
    evaluating on held-out customers) would stay invisible to the page until
    the list itself commits. A ValidationError (the scores cannot meet the
    parameters) is the request's fault, not the worker's: the run records it
    and the task returns, so a redelivery does not repeat it and an eager
    run does not turn it into a server error on the page that queued it.
    """
    try:
        with task_run_tracking(run_id) as run:
            if run is None:
                return
            params = dict(run.params)
            segment_id = params.pop("segment_id", None)
            task_run_progress(run_id, 0.0, "reading scores, choosing, evaluating on held-out "
                                           "customers")
            target = targeting_list_create(
                campaign=Campaign.objects.get(id=params.pop("campaign_id")),
                model_version=ModelVersion.objects.get(id=params.pop("model_version_id")),
                segment=Segment.objects.get(id=segment_id) if segment_id else None, **params)
            run.result = {"targeting_list_id": target.id, "size": target.size}
    except ValidationError:
        return  # task_run_tracking has recorded it on the run


@shared_task(acks_late=True, reject_on_worker_lost=True)
def behaviour_model_train_task(run_id: int) -> None:
    """Train churn candidates or the value model as of a cutoff, then score with the champion.

    Scoring runs here, chunk by chunk, so that every customer has the
    champion's churn risk or expected revenue (and marketing's published
    copy) when the run succeeds.
    """
    with task_run_tracking(run_id) as run:
        if run is None:
            return
        params = run.params
        campaign = Campaign.objects.get(id=params["campaign_id"])
        as_of = datetime.fromisoformat(params["as_of"])
        progress = lambda f, step: task_run_progress(run_id, 0.8 * f, step)  # noqa: E731
        if params["target"] == "churn":
            versions = churn_models_train(
                campaign=campaign, as_of=as_of, horizon_days=params["horizon_days"],
                candidates=tuple(params["candidates"]), params=params.get("model_params"),
                task_run=run, progress=progress)
            kind = ModelVersion.Kind.CHURN
        else:
            versions = [value_model_train(
                campaign=campaign, as_of=as_of, horizon_days=params["horizon_days"],
                params=params.get("model_params", {}).get("hurdle_lightgbm"), task_run=run,
                progress=progress)]
            kind = ModelVersion.Kind.VALUE
        best = champion(campaign.id, kind)
        scored = 0
        if best is not None:
            task_run_progress(run_id, 0.85, f"scoring every customer with version {best.id}")
            scored = sum(score_chunk(version=best, chunk=chunk, cutoff=as_of)
                         for chunk in score_plan(chunk_size=params.get("chunk_size", 50_000)))
        run.result = {"model_version_ids": [v.id for v in versions],
                      "champion_id": best.id if best else None, "customers_scored": scored,
                      "comparison": next((v.metrics.get("comparison") for v in versions
                                          if v.metrics.get("comparison")), None)}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def segmentation_run_task(run_id: int) -> None:
    """Embed, cluster and profile the customers of the segmentation run in the params."""
    with task_run_tracking(run_id) as run:
        if run is None:
            return
        segmentation = SegmentationRun.objects.get(id=run.params["segmentation_run_id"])
        segmentation = segmentation_run_execute(
            segmentation, params=run.params.get("model_params"),
            progress=lambda f, step: task_run_progress(run_id, f, step))
        run.result = {"segmentation_run_id": segmentation.id, "k": segmentation.k,
                      "embedding": segmentation.embedding, "customers": segmentation.customers}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def cluster_memberships_extend_task(run_id: int) -> None:
    """Place customers a saved segmentation never saw at its nearest centre."""
    with task_run_tracking(run_id) as run:
        if run is None:
            return
        segmentation = SegmentationRun.objects.get(id=run.params["segmentation_run_id"])
        run.result = {"customers_added": cluster_memberships_extend(segmentation)}


@shared_task
def saved_cluster_memberships_extend_task() -> None:
    """What beat sends daily: new customers join every saved cluster by its nearest centre."""
    run = TaskRun.objects.create(name="saved_cluster_memberships_extend", params={})
    with task_run_tracking(run.id) as claimed:
        if claimed is None:
            return
        runs = SegmentationRun.objects.filter(
            status=SegmentationRun.Status.READY,
            id__in=SegmentCluster.objects.filter(segment__isnull=False).values("run_id"))
        claimed.result = {"customers_added": {str(r.id): cluster_memberships_extend(r)
                                              for r in runs}}
