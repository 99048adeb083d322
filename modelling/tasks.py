"""Celery interfaces over the model services: training, scoring, snapshots.

Tasks take ids, never instances; core.task_delivery.run_task gives each its
lease, retries and outcome. Training, scoring and targeting are safe to
repeat: a lost training attempt's versions are marked failed
(modelling.registry.model_versions_abandon, on core.task_runs.task_run_lost)
and never become champion, scoring replaces each chunk's rows, and a
targeting list is written in one transaction.
"""

from __future__ import annotations

from datetime import datetime

from celery import chord, shared_task
from django.conf import settings

from core.models import TaskRun
from core.task_delivery import (
    RUN_CONTINUES,
    connections_reset,
    lease_heartbeat,
    retry_countdown,
    run_task,
    task_run_execute,
    transient_reason,
)
from core.task_runs import (
    task_run_fail,
    task_run_heartbeat,
    task_run_part_done,
    task_run_progress,
    task_run_reporter,
    task_run_succeed,
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


@run_task(rerun=True)
def uplift_model_train_task(run: TaskRun) -> dict:
    """Train, evaluate and register uplift models for an experiment."""
    params = run.params
    experiment = Experiment.objects.get(id=params["experiment_id"])
    metric = experiment.metrics.get(name=params["metric"]) if params.get("metric") else None
    versions = uplift_model_train(
        experiment=experiment, metric=metric,
        estimators=params.get("estimators", ["default"]),
        baselines=params.get("baselines", ["X"]),
        estimator_params=params.get("estimator_params"),
        random_state=params.get("random_state", 0), task_run=run,
        progress=task_run_reporter(run),
    )
    return {"model_version_ids": [v.id for v in versions],
            "champion_ids": [v.id for v in versions if v.is_champion]}


@run_task(rerun=True)
def customers_score_task(run: TaskRun):
    """Plan the chunks and fan them out; the chord's callback closes the run.

    The chunks carry this attempt's lease token: chunks of an attempt given
    up (its worker lost) find the token changed and do nothing. Until the
    first chunk starts, the lease covers the queue wait (one lease per chunk).
    """
    chunks = score_plan(chunk_size=run.params.get("chunk_size", 50_000))
    cutoff = run.params["cutoff"]
    token = run.lease_token
    task_run_heartbeat(run.id, token, seconds=settings.TASK_LEASE_SECONDS * max(len(chunks), 1))
    task_run_progress(run.id, 0.0, f"scoring {len(chunks)} chunks", token=token)
    header = [customers_score_chunk_task.s(run.id, token, c.low, c.high, cutoff, len(chunks))
              for c in chunks]
    chord(header)(customers_score_finish_task.s(run.id, token))
    return RUN_CONTINUES


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def customers_score_chunk_task(self, run_id: int, token: str, low: int, high: int,
                               cutoff: str, chunks: int) -> int:
    """Score one id range; safe to repeat (it replaces that range's rows).

    A transient error retries this chunk alone, with backoff, up to
    TASK_RUN_MAX_ATTEMPTS tries; progress counts each chunk once
    (task_run_part_done), however often it runs.
    """
    run = TaskRun.objects.filter(id=run_id, lease_token=token,
                                 status=TaskRun.Status.RUNNING).first()
    if run is None:
        return 0  # the run finished or was started over: this chunk belongs to the past
    in_worker = not (self.request.is_eager or self.request.called_directly)
    try:
        with lease_heartbeat(run_id, token, enabled=in_worker):
            task_run_heartbeat(run_id, token)
            version = ModelVersion.objects.get(id=run.params["model_version_id"])
            segment_id = run.params.get("segment_id")
            written = score_chunk(
                version=version, chunk=ChunkPlan(low, high),
                cutoff=datetime.fromisoformat(cutoff),
                segment=Segment.objects.get(id=segment_id) if segment_id else None)
    except Exception as exc:
        reason = transient_reason(exc)
        if reason:
            connections_reset()
        tries = self.request.retries + 1
        if reason and not self.request.called_directly \
                and tries < settings.TASK_RUN_MAX_ATTEMPTS:
            raise self.retry(exc=exc, countdown=retry_countdown(tries),
                             max_retries=settings.TASK_RUN_MAX_ATTEMPTS) from exc
        task_run_fail(run_id, exc, token=token)
        raise
    task_run_part_done(run_id, token, f"{low}-{high}", chunks)
    return written


@shared_task(acks_late=True, reject_on_worker_lost=True)
def customers_score_finish_task(written: list[int], run_id: int, token: str) -> None:
    task_run_succeed(run_id, {"customers_scored": int(sum(written)), "chunks": len(written)},
                     token=token)


@shared_task(bind=True)
def behaviour_snapshots_refresh_task(self) -> None:
    """What beat sends daily: rebuild the behaviour snapshots the champions score with.

    At most once: a lost attempt is failed, and the next day's run rebuilds.
    """
    run = TaskRun.objects.create(name="behaviour_snapshots_refresh", params={}, rerun=False,
                                 task=self.name)
    task_run_execute(self, run.id, lambda _run: {"snapshots": behaviour_snapshots_refresh()},
                     retry=False)


@run_task(rerun=True)
def response_model_train_task(run: TaskRun) -> dict:
    """Train and register a propensity-to-convert model for a campaign."""
    params = run.params
    version = response_model_train(
        campaign=Campaign.objects.get(id=params["campaign_id"]),
        event_kind=params.get("event_kind", "purchase"),
        window_days=params.get("window_days", 30), params=params.get("model_params"),
        task_run=run, progress=task_run_reporter(run))
    return {"model_version_id": version.id, "status": version.status,
            "champion": version.is_champion}


@run_task(rerun=True)
def targeting_list_build_task(run: TaskRun) -> dict:
    """Build the list jobs.requests.targeting_list_request queued; its id goes in the result.

    One step is reported, before the build: targeting_list_create is one
    transaction, so progress written inside it (reading scores, choosing,
    evaluating on held-out customers) would stay invisible to the page until
    the list itself commits. A ValidationError (the scores cannot meet the
    parameters) is the request's fault, not the worker's: run_task records
    it on the run and the task returns, so a redelivery does not repeat it
    and an eager run does not turn it into a server error on the page.
    """
    params = dict(run.params)
    segment_id = params.pop("segment_id", None)
    task_run_progress(run.id, 0.0, "reading scores, choosing, evaluating on held-out customers",
                      token=run.lease_token)
    target = targeting_list_create(
        campaign=Campaign.objects.get(id=params.pop("campaign_id")),
        model_version=ModelVersion.objects.get(id=params.pop("model_version_id")),
        segment=Segment.objects.get(id=segment_id) if segment_id else None, **params)
    return {"targeting_list_id": target.id, "size": target.size}



@run_task(rerun=True)
def behaviour_model_train_task(run: TaskRun) -> dict:
    """Train churn candidates or the value model as of a cutoff, then score with the champion.

    Scoring runs here, chunk by chunk, so that every customer has the
    champion's churn risk or expected revenue (and marketing's published
    copy) when the run succeeds. Safe to repeat: a lost attempt's versions
    are marked failed, and each chunk's scores are replaced.
    """
    params = run.params
    campaign = Campaign.objects.get(id=params["campaign_id"])
    as_of = datetime.fromisoformat(params["as_of"])
    report = task_run_reporter(run)
    progress = lambda f, step: report(0.8 * f, step)  # noqa: E731
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
        report(0.85, f"scoring every customer with version {best.id}")
        scored = sum(score_chunk(version=best, chunk=chunk, cutoff=as_of)
                     for chunk in score_plan(chunk_size=params.get("chunk_size", 50_000)))
    return {"model_version_ids": [v.id for v in versions],
            "champion_id": best.id if best else None, "customers_scored": scored,
            "comparison": next((v.metrics.get("comparison") for v in versions
                                if v.metrics.get("comparison")), None)}


@run_task(rerun=True)
def segmentation_run_task(run: TaskRun) -> dict:
    """Embed, cluster and profile the customers of the segmentation run in the params."""
    segmentation = SegmentationRun.objects.get(id=run.params["segmentation_run_id"])
    segmentation = segmentation_run_execute(
        segmentation, params=run.params.get("model_params"), progress=task_run_reporter(run))
    return {"segmentation_run_id": segmentation.id, "k": segmentation.k,
            "embedding": segmentation.embedding, "customers": segmentation.customers}


@run_task(rerun=True)
def cluster_memberships_extend_task(run: TaskRun) -> dict:
    """Place customers a saved segmentation never saw at its nearest centre (safe to repeat)."""
    segmentation = SegmentationRun.objects.get(id=run.params["segmentation_run_id"])
    return {"customers_added": cluster_memberships_extend(segmentation)}


def _saved_clusters_extend(_run: TaskRun) -> dict:
    runs = SegmentationRun.objects.filter(
        status=SegmentationRun.Status.READY,
        id__in=SegmentCluster.objects.filter(segment__isnull=False).values("run_id"))
    return {"customers_added": {str(r.id): cluster_memberships_extend(r) for r in runs}}


@shared_task(bind=True)
def saved_cluster_memberships_extend_task(self) -> None:
    """What beat sends daily: new customers join every saved cluster by its nearest centre.

    At most once: a run cut short is completed by the next day's.
    """
    run = TaskRun.objects.create(name="saved_cluster_memberships_extend", task=self.name,
                                 rerun=False, params={})
    task_run_execute(self, run.id, _saved_clusters_extend, retry=False)
