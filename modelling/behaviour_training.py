"""Behaviour prediction: churn risk and expected revenue over the next ``horizon_days``.

Both are trained "as of" a time ``as_of`` on two periods, so that what is
reported is how the model does on a *later* period than it learned from:

- train: features as of ``t1 = as_of - 2 * horizon``, outcomes in [t1, t1 + horizon);
- held-out: features as of ``t2 = as_of - horizon``, outcomes in [t2, as_of).

Only customers who existed at a period's cutoff (created before it, not
erased) are rows of that period.

Churn risk (kind ``churn``): 1 when the customer makes no purchase in the
horizon. Three candidates are trained on the same rows and graded on the
same later period (ROC AUC, log loss, expected calibration error):

- ``aggregate_mlp``: :class:`~models_dl.response.PropensityToBuyClassifier`
  on the point-in-time features (counts, revenue, recency, attributes);
- ``lightgbm``: :class:`~models_dl.behaviour.BoostedBinaryClassifier` on the same;
- ``sequence_gru``: :class:`~models_dl.sequence.EventSequenceClassifier`
  over each customer's last ``SEQUENCE_LENGTH`` events (kind, value, gap)
  with the same features as static inputs: does the order of events add
  to the aggregates?

Each is a ModelVersion whose selection score is its held-out AUC; the
registry's champion rule (modelling.registry) makes the best one champion,
and every version's ``metrics["comparison"]`` holds the side-by-side table
and a note saying which won and by how much.

Expected revenue (kind ``value``): :class:`~models_dl.behaviour.HurdleRevenueRegressor`
(P(buy) x E[revenue | buy]); held-out RMSE, MAE, R² (the selection score)
and the ratio of predicted to actual total revenue.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import connection
from django.utils import timezone
from sklearn.metrics import log_loss, mean_absolute_error, r2_score, roc_auc_score

from core.models import TaskRun
from experiments.stats.drift import psi_reference
from marketing.features import FeatureSpec, feature_spec_default, features_build, fixed_cutoff
from marketing.models import Campaign, Customer, Event
from modelling.models import ModelVersion
from modelling.registry import artifact_checksum, artifact_folder, champion_consider
from models_dl.behaviour import BoostedBinaryClassifier, HurdleRevenueRegressor
from models_dl.calibration import expected_calibration_error
from models_dl.response import PropensityToBuyClassifier
from models_dl.sequence import AS_OF_KIND, EventSequenceClassifier, EventSequences

HORIZON_DAYS = 90
SEQUENCE_LENGTH = 64
CHURN_CANDIDATES = ("aggregate_mlp", "lightgbm", "sequence_gru")
VALUE_ESTIMATOR = "hurdle_lightgbm"


# ----------------------------------------------------------------- data
def period_rows(spec: FeatureSpec, cutoff: datetime, horizon_days: int):
    """(customer ids, features, sequences or None, bought, revenue) for one period."""
    customers = Customer.objects.filter(erased_at__isnull=True, created_at__lt=cutoff).values("id")
    sql, params = customers.query.sql_with_params()
    ids, frames, sequences = [], [], []
    for chunk in features_build(spec=spec, source=fixed_cutoff(cutoff, sql, list(params))):
        ids.append(chunk.customer_ids)
        frames.append(chunk.frame)
        sequences.extend(chunk.sequences)
    if not ids:
        raise ValueError(f"no customers existed before {cutoff:%Y-%m-%d} to learn from")
    ids = np.concatenate(ids)
    revenue = purchases_in(ids, cutoff, cutoff + timedelta(days=horizon_days))
    frame = pd.concat(frames, ignore_index=True)
    seqs = behaviour_sequences(sequences, frame) if spec.sequence_length else None
    return ids, frame, seqs, (revenue > 0).astype(np.float64), revenue


def purchases_in(ids: np.ndarray, start: datetime, end: datetime) -> np.ndarray:
    """Per id in ``ids``: purchase revenue in [start, end); bought-nothing is 0.

    A customer who bought only zero-value items counts as a buyer through a
    tiny positive amount, so ``revenue > 0`` is "made a purchase".
    """
    table = connection.ops.quote_name(Event._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT customer_id, SUM(value), COUNT(*) FROM {table} WHERE kind = %s "
            f"AND occurred_at >= %s AND occurred_at < %s AND customer_id >= %s "
            f"AND customer_id <= %s GROUP BY customer_id",
            [Event.Kind.PURCHASE, start, end, int(ids.min()), int(ids.max())])
        rows = cursor.fetchall()
    out = np.zeros(ids.size)
    if rows:
        buyer = np.array([r[0] for r in rows], dtype=np.int64)
        amount = np.array([max(float(r[1] or 0.0), 1e-6) for r in rows])
        position = np.searchsorted(ids, buyer)
        inside = (position < ids.size) & (ids[np.minimum(position, ids.size - 1)] == buyer)
        out[position[inside]] = amount[inside]
    return out


def behaviour_sequences(histories: list, static: pd.DataFrame) -> EventSequences:
    """The feature builder's histories as model input.

    The builder gives, oldest first, (kind index, value, days before the
    cutoff); the GRU reads the days since the previous event, then a
    marker at the cutoff carrying the days since the last event (recency).
    """
    kinds, values, gaps, lengths = [], [], [], []
    labels = Event.Kind.values
    for history in histories:
        before = [h[2] for h in history]
        kinds.extend(labels[h[0]] for h in history)
        values.extend(float(h[1]) for h in history)
        gaps.extend([0.0] + [a - b for a, b in zip(before[:-1], before[1:], strict=True)]
                    if history else [])
        kinds.append(AS_OF_KIND)
        values.append(0.0)
        gaps.append(float(before[-1]) if history else 0.0)
        lengths.append(len(history) + 1)
    return EventSequences(np.array(kinds, dtype=object), np.array(values), np.maximum(
        np.array(gaps), 0.0), np.r_[0, np.cumsum(lengths)], static=static.reset_index(drop=True))


# --------------------------------------------------------------- models
def _candidate(name: str, params: dict):
    if name == "aggregate_mlp":
        return PropensityToBuyClassifier(**params)
    if name == "lightgbm":
        return BoostedBinaryClassifier(**params)
    if name == "sequence_gru":
        return EventSequenceClassifier(max_length=SEQUENCE_LENGTH, **params)
    raise ValueError(f"unknown churn candidate {name!r}; choose from {CHURN_CANDIDATES}")


def behaviour_predict(version: ModelVersion, model, frame: pd.DataFrame,
                      histories: list) -> np.ndarray:
    """Churn probability or expected revenue for one feature chunk."""
    if version.kind == ModelVersion.Kind.VALUE:
        return model.predict(frame)
    X = behaviour_sequences(histories, frame) if version.estimator == "sequence_gru" else frame
    return model.predict_proba(X)[:, 1]


def churn_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return {"auc": float(roc_auc_score(y, p)), "log_loss": float(log_loss(y, p)),
            "ece": expected_calibration_error(y, p), "base_rate": float(y.mean()),
            "mean_prediction": float(p.mean())}


def _periods(as_of: datetime, horizon_days: int) -> tuple[datetime, datetime]:
    return as_of - timedelta(days=2 * horizon_days), as_of - timedelta(days=horizon_days)


def churn_models_train(
    *, campaign: Campaign, as_of: datetime | None = None, horizon_days: int = HORIZON_DAYS,
    candidates: tuple[str, ...] = CHURN_CANDIDATES, params: dict | None = None,
    random_state: int = 0, task_run: TaskRun | None = None, progress=None,
) -> list[ModelVersion]:
    """Train every candidate on the earlier period, grade all on the later one."""
    report = progress or (lambda fraction, step: None)
    as_of = as_of or timezone.now()
    unknown = [c for c in candidates if c not in CHURN_CANDIDATES]
    if unknown or not candidates:
        raise ValueError(f"unknown churn candidates {unknown}; choose from {CHURN_CANDIDATES}")
    train_cutoff, test_cutoff = _periods(as_of, horizon_days)
    base = feature_spec_default()
    spec = FeatureSpec(attributes=base.attributes, kinds=base.kinds, windows=base.windows,
                       sequence_length=SEQUENCE_LENGTH if "sequence_gru" in candidates else 0)
    report(0.02, "building features of the training period")
    _, X_train, seq_train, bought_train, _ = period_rows(spec, train_cutoff, horizon_days)
    report(0.1, "building features of the later (held-out) period")
    _, X_test, seq_test, bought_test, _ = period_rows(spec, test_cutoff, horizon_days)
    y_train, y_test = 1.0 - bought_train, 1.0 - bought_test
    for y, period in ((y_train, "training"), (y_test, "held-out")):
        if y.sum() < 10 or (1 - y).sum() < 10:
            raise ValueError(f"too few churned and retained customers in the {period} period")
    versions, results = [], {}
    for position, name in enumerate(candidates):
        all_params = {"random_state": random_state, **(params or {}).get(name, {})}
        version = ModelVersion.objects.create(
            campaign=campaign, kind=ModelVersion.Kind.CHURN, estimator=name, params=all_params,
            feature_spec=(spec if name == "sequence_gru" else FeatureSpec(
                attributes=spec.attributes, kinds=spec.kinds, windows=spec.windows)).to_json(),
            target_metric=f"no_purchase_{horizon_days}d", task_run=task_run,
            rows_train=y_train.size, rows_test=y_test.size)
        report(0.2 + 0.7 * position / len(candidates), f"training {name}")
        sequential = name == "sequence_gru"
        try:
            model = _candidate(name, all_params)
            started = time.perf_counter()
            model.fit(seq_train if sequential else X_train, y_train)
            seconds = time.perf_counter() - started
            p = model.predict_proba(seq_test if sequential else X_test)[:, 1]
            if not np.all(np.isfinite(p)):
                raise ValueError("predictions are not all finite")
            metrics = {**churn_metrics(y_test, p), "train_cutoff": train_cutoff.isoformat(),
                       "test_cutoff": test_cutoff.isoformat(), "horizon_days": horizon_days}
            folder = model.save(artifact_folder(version))
            ModelVersion.objects.filter(pk=version.pk).update(
                status=ModelVersion.Status.READY, metrics=metrics,
                selection_score=metrics["auc"], feature_reference=psi_reference(X_train),
                training_seconds=seconds, artifact_path=str(folder),
                artifact_sha256=artifact_checksum(folder))
            results[name] = metrics
        except Exception as exc:  # recorded, never promoted
            ModelVersion.objects.filter(pk=version.pk).update(
                status=ModelVersion.Status.FAILED, status_reason=f"{type(exc).__name__}: {exc}")
        versions.append(version)
    comparison = churn_comparison(results)
    for version in versions:
        version.refresh_from_db()
        if version.status == ModelVersion.Status.READY:
            version.metrics = {**version.metrics, "comparison": comparison}
            version.save(update_fields=["metrics"])
    for version in versions:
        champion_consider(version)
    for version in versions:  # a later candidate may have taken the title from an earlier one
        version.refresh_from_db()
    report(1.0, "done")
    return versions


def churn_comparison(results: dict[str, dict]) -> dict:
    """The side-by-side table and a sentence on who won and by how much."""
    table = {name: {k: m[k] for k in ("auc", "log_loss", "ece")} for name, m in results.items()}
    if not table:
        return {"candidates": {}, "note": "no candidate trained"}
    ranked = sorted(table, key=lambda n: table[n]["auc"], reverse=True)
    winner = ranked[0]
    note = f"{winner} has the best held-out AUC ({table[winner]['auc']:.3f})"
    margin = None
    if len(ranked) > 1:
        margin = table[winner]["auc"] - table[ranked[1]]["auc"]
        note += f", {margin:.3f} above {ranked[1]} ({table[ranked[1]]['auc']:.3f})"
    return {"candidates": table, "winner": winner, "auc_margin": margin, "note": note}


def value_model_train(
    *, campaign: Campaign, as_of: datetime | None = None, horizon_days: int = HORIZON_DAYS,
    params: dict | None = None, random_state: int = 0, task_run: TaskRun | None = None,
    progress=None,
) -> ModelVersion:
    """Train the hurdle model of revenue in the next ``horizon_days`` (see module docstring)."""
    report = progress or (lambda fraction, step: None)
    as_of = as_of or timezone.now()
    train_cutoff, test_cutoff = _periods(as_of, horizon_days)
    spec = feature_spec_default()
    report(0.05, "building features")
    _, X_train, _, _, revenue_train = period_rows(spec, train_cutoff, horizon_days)
    _, X_test, _, _, revenue_test = period_rows(spec, test_cutoff, horizon_days)
    all_params = {"random_state": random_state, **(params or {})}
    version = ModelVersion.objects.create(
        campaign=campaign, kind=ModelVersion.Kind.VALUE, estimator=VALUE_ESTIMATOR,
        params=all_params, feature_spec=spec.to_json(),
        target_metric=f"revenue_{horizon_days}d", task_run=task_run,
        rows_train=revenue_train.size, rows_test=revenue_test.size)
    try:
        report(0.4, "training")
        started = time.perf_counter()
        model = HurdleRevenueRegressor(**all_params).fit(X_train, revenue_train)
        seconds = time.perf_counter() - started
        predicted = model.predict(X_test)
        if not np.all(np.isfinite(predicted)):
            raise ValueError("predictions are not all finite")
        actual_total = float(revenue_test.sum())
        metrics = {
            "rmse": float(np.sqrt(np.mean((predicted - revenue_test) ** 2))),
            "mae": float(mean_absolute_error(revenue_test, predicted)),
            "r2": float(r2_score(revenue_test, predicted)),
            "buyer_auc": float(roc_auc_score(revenue_test > 0, model.predict_parts(X_test)[0])),
            "predicted_to_actual_total": float(predicted.sum() / actual_total)
            if actual_total > 0 else None,
            "mean_revenue": float(revenue_test.mean()),
            "train_cutoff": train_cutoff.isoformat(), "test_cutoff": test_cutoff.isoformat(),
            "horizon_days": horizon_days}
        folder = model.save(artifact_folder(version))
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelVersion.Status.READY, metrics=metrics, selection_score=metrics["r2"],
            feature_reference=psi_reference(X_train), training_seconds=seconds,
            artifact_path=str(folder), artifact_sha256=artifact_checksum(folder))
    except Exception as exc:  # recorded, never promoted
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelVersion.Status.FAILED, status_reason=f"{type(exc).__name__}: {exc}")
    champion_consider(version)
    version.refresh_from_db()
    return version
