"""customers_score: a model version's predictions for every customer, in chunks.

The customer id range is cut into chunks; each chunk builds features as of
one cutoff (the job's start, so every chunk sees the same point in time),
starting from the latest behaviour snapshot when there is one
(marketing.behaviour_snapshots), predicts, and replaces that chunk's score
rows in one transaction (with a segment, only its members' rows: everyone
else keeps their score). Running a job twice therefore gives the same rows,
and chunks can run on different workers (modelling.tasks fans them out
with a Celery chord).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
import pandas as pd
from django.db.models import Max, Min

from core.db.bulk import frame_insert
from core.db.sql_tuning import large_aggregates
from marketing.behaviour_snapshots import (
    behaviour_snapshot_build,
    behaviour_snapshot_latest,
    snapshot_key,
)
from marketing.features import FeatureSpec, features_build, fixed_cutoff
from marketing.models import Customer, CustomerPrediction, Segment
from marketing.segment_rules import segment_members
from modelling.behaviour_training import behaviour_predict
from modelling.models import CustomerScore, ModelVersion
from modelling.registry import artifact_load, guardrail_models_load

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkPlan:
    low: int  # exclusive
    high: int  # inclusive


def score_plan(*, chunk_size: int = 50_000) -> list[ChunkPlan]:
    """Id ranges of about ``chunk_size`` customers each."""
    bounds = Customer.objects.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return []
    edges = list(range(bounds["low"] - 1, bounds["high"], chunk_size)) + [bounds["high"]]
    return [ChunkPlan(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@lru_cache(maxsize=4)
def _model(version_id: int, checksum: str):
    # Cached per worker process: a chord sends many chunks of one version.
    return artifact_load(ModelVersion.objects.get(id=version_id))


@lru_cache(maxsize=4)
def _guardrail_models(version_id: int, checksum: str) -> dict:
    version = ModelVersion.objects.get(id=version_id)
    if version.kind != ModelVersion.Kind.UPLIFT:
        return {}
    return guardrail_models_load(version)


def score_chunk(*, version: ModelVersion, chunk: ChunkPlan, cutoff: datetime,
                segment: Segment | None = None) -> int:
    """Score the customers with ``chunk.low < id <= chunk.high``; returns rows written."""
    customers = Customer.objects.filter(id__gt=chunk.low, id__lte=chunk.high,
                                        erased_at__isnull=True)
    if segment is not None:
        customers = customers.filter(id__in=segment_members(segment.rule, as_of=cutoff)
                                     .values("id"))
    sql, params = customers.values("id").query.sql_with_params()
    spec = FeatureSpec.from_json(version.feature_spec)
    model = _model(version.id, version.artifact_sha256)
    guardrails = _guardrail_models(version.id, version.artifact_sha256)
    arm_names = version.metrics.get("arm_names", [])
    with large_aggregates():
        frames = [_score_frame(version, model, features.customer_ids, features.frame, arm_names,
                               cutoff, guardrails=guardrails, histories=features.sequences)
                  for features in features_build(
                      spec=spec, source=fixed_cutoff(cutoff, sql, list(params)),
                      chunk_size=chunk.high - chunk.low,
                      snapshot=behaviour_snapshot_latest(spec, cutoff))]
        replaced = CustomerScore.objects.filter(model_version=version, customer_id__gt=chunk.low,
                                                customer_id__lte=chunk.high)
        if segment is not None:
            # Only the members' rows: everyone else keeps their score.
            replaced = replaced.filter(customer_id__in=customers.values("id"))
        replaced.delete()
        written = sum(frame_insert(CustomerScore, frame) for frame in frames)
        if version.is_champion and version.kind in PUBLISHED:
            predictions_publish(version, chunk, frames,
                                members=customers.values("id") if segment is not None else None)
        return written


# The behaviour scores a champion publishes to marketing.CustomerPrediction,
# where segment rules and the API's bulk read find them.
PUBLISHED = {ModelVersion.Kind.CHURN: CustomerPrediction.Name.CHURN_RISK,
             ModelVersion.Kind.VALUE: CustomerPrediction.Name.EXPECTED_REVENUE_90D}


def predictions_publish(version: ModelVersion, chunk: ChunkPlan, frames: list,
                        members=None) -> int:
    """Replace the chunk's published score of the version's kind by this version's.

    ``members``: when a segment was scored, only these customers' rows are replaced.
    """
    name = PUBLISHED[version.kind]
    replaced = CustomerPrediction.objects.filter(name=name, customer_id__gt=chunk.low,
                                                 customer_id__lte=chunk.high)
    if members is not None:
        replaced = replaced.filter(customer_id__in=members)
    replaced.delete()
    written = 0
    for frame in frames:
        published = pd.DataFrame({"customer_id": frame["customer_id"], "name": str(name),
                                  "value": frame["response"],
                                  "model_version_id": version.id,
                                  "scored_at": frame["scored_at"]})
        written += frame_insert(CustomerPrediction, published)
    return written


def _score_frame(version, model, ids: np.ndarray, X, arm_names: list[str],
                 cutoff: datetime, *, guardrails: dict | None = None,
                 histories: list | None = None) -> pd.DataFrame:
    """The score rows of one feature chunk, as columns (see core.db.bulk.frame_insert).

    ``guardrails``: metric name -> guardrail uplift model; their per-arm
    effects go to ``guardrail_by_arm`` as {"metric": {"arm": effect}}.
    Churn and value models write their prediction to ``response``; the
    sequence model reads ``histories`` (the chunk's event sequences).
    """
    frame = pd.DataFrame({"model_version_id": version.id, "customer_id": ids})
    frame["guardrail_by_arm"] = "{}"
    if version.kind in (ModelVersion.Kind.RESPONSE, *PUBLISHED):
        frame["uplift"], frame["best_arm"], frame["uplift_by_arm"] = np.nan, "", "{}"
        frame["response"] = (np.asarray(model.predict_proba(X))[:, 1]
                             if version.kind == ModelVersion.Kind.RESPONSE
                             else behaviour_predict(version, model, X, histories or []))
        frame["scored_at"] = cutoff
        return _finite_only(frame, np.isfinite(frame["response"].to_numpy()), version)
    # One forward pass: the effect of arm k is its expected outcome minus control's.
    outcomes = np.asarray(model.predict_outcomes(X)).reshape(ids.size, -1)
    with np.errstate(invalid="ignore", over="ignore"):
        effect = outcomes[:, 1:] - outcomes[:, [0]]
    finite = np.isfinite(outcomes).all(axis=1) & np.isfinite(effect).all(axis=1)
    best = effect.argmax(axis=1)
    names = arm_names[1:] if len(arm_names) == effect.shape[1] + 1 else [
        f"arm_{k + 1}" for k in range(effect.shape[1])]
    frame["uplift"] = effect[np.arange(ids.size), best]
    frame["best_arm"] = np.asarray(names, dtype=object)[best]
    # {"arm": effect, ...} from one format string: a json.dumps per row would
    # cost as much as the model's forward pass. Flat per-arm lists, zipped:
    # a list per row would make the garbage collector walk the whole heap.
    template = "{" + ", ".join(json.dumps(name).replace("%", "%%") + ": %r"
                               for name in names) + "}"
    frame["uplift_by_arm"] = [template % values
                              for values in zip(*np.round(effect, 6).T.tolist(), strict=True)]
    if guardrails:
        frame["guardrail_by_arm"], guard_finite = _guardrail_json(guardrails, X, names, ids.size)
        finite &= guard_finite
    frame["response"] = outcomes[:, 0]
    frame["scored_at"] = cutoff
    return _finite_only(frame, finite, version)


def _finite_only(frame: pd.DataFrame, finite: np.ndarray, version) -> pd.DataFrame:
    """The rows whose every prediction is finite: a NaN or inf score is never written.

    A model gives one for a customer whose features it cannot represent;
    that customer keeps no score from this version (a ranking cannot place
    NaN, and JSON cannot hold it), the rest of the chunk is written, and the
    count is logged for the operator.
    """
    if finite.all():
        return frame
    logger.warning("model version %s gave non-finite predictions for %d of %d customers "
                   "(ids %s...); their scores were not written", version.id,
                   int((~finite).sum()), finite.size,
                   frame["customer_id"].to_numpy()[~finite][:5].tolist())
    return frame[finite].reset_index(drop=True)


def _guardrail_json(guardrails: dict, X, names: list[str], n: int
                    ) -> tuple[list[str], np.ndarray]:
    """{"metric": {"arm": effect, ...}, ...} per row, from one format string (as uplift_by_arm),
    and which rows' effects are all finite."""
    parts, columns = [], []
    finite = np.ones(n, dtype=bool)
    for metric, guard_model in guardrails.items():
        outcomes = np.asarray(guard_model.predict_outcomes(X)).reshape(n, -1)
        with np.errstate(invalid="ignore", over="ignore"):
            effect = outcomes[:, 1:] - outcomes[:, [0]]
        finite &= np.isfinite(effect).all(axis=1)
        columns.extend(np.round(effect, 6).T.tolist())
        parts.append(json.dumps(metric).replace("%", "%%") + ": {" + ", ".join(
            json.dumps(name).replace("%", "%%") + ": %r" for name in names) + "}")
    template = "{" + ", ".join(parts) + "}"
    return [template % values for values in zip(*columns, strict=True)], finite


def behaviour_snapshots_refresh() -> list[dict]:
    """Rebuild the behaviour snapshot of every (kinds, windows) a champion model scores with.

    Beat runs this daily (``CELERY_BEAT_SCHEDULE``), before the rescoring
    schedules, so that scoring reads a day's changes from events instead of
    a year's.
    """
    specs = {}
    for spec_json in ModelVersion.objects.filter(
            is_champion=True, status=ModelVersion.Status.READY).values_list("feature_spec",
                                                                            flat=True):
        spec = FeatureSpec.from_json(spec_json)
        specs.setdefault(snapshot_key(spec), spec)
    built = [behaviour_snapshot_build(spec) for spec in specs.values()]
    return [{"snapshot_id": s.id, "key": s.spec_key, "customers": s.customers,
             "seconds": round(s.build_seconds, 1)} for s in built]
