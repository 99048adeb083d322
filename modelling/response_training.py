"""response_model_train: propensity to convert, for campaigns without an experiment.

Trained on the past: features as of ``cutoff = as_of - window`` and the
label "had an event of ``event_kind`` in [cutoff, cutoff + window)", so the
model learns exactly what it will be asked at scoring time (features as of
now, conversion in the next window). Held-out quality: ROC AUC, log loss,
Brier score and expected calibration error (the model is Platt-calibrated
on its validation split, so its probabilities can be multiplied by money).
The champion among response models is the best held-out AUC.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import connection
from django.utils import timezone
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

from core.models import TaskRun
from experiments.stats.drift import psi_reference
from marketing.features import FeatureSpec, feature_spec_default, features_build, fixed_cutoff
from marketing.models import Campaign, Customer, Event
from modelling.models import ModelVersion
from modelling.registry import artifact_checksum, artifact_folder, champion_consider
from models_dl.calibration import expected_calibration_error
from models_dl.response import PropensityToBuyClassifier

ESTIMATOR = "propensity_to_buy"


def _labels(ids: np.ndarray, kind: str, start: datetime, end: datetime) -> np.ndarray:
    """1 where the customer had an event of ``kind`` in [start, end), per id in ``ids``."""
    table = connection.ops.quote_name(Event._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT customer_id FROM {table} WHERE kind = %s AND occurred_at >= %s "
            f"AND occurred_at < %s AND customer_id >= %s AND customer_id <= %s",
            [kind, start, end, int(ids.min()), int(ids.max())])
        buyers = np.array([r[0] for r in cursor.fetchall()], dtype=np.int64)
    return np.isin(ids, buyers).astype(np.float64)


def response_model_train(
    *, campaign: Campaign, event_kind: str = Event.Kind.PURCHASE, window_days: int = 30,
    as_of: datetime | None = None, params: dict | None = None, test: float = 0.2,
    random_state: int = 0, task_run: TaskRun | None = None, progress=None,
) -> ModelVersion:
    report = progress or (lambda fraction, step: None)
    as_of = as_of or timezone.now()
    cutoff = as_of - timedelta(days=window_days)
    spec: FeatureSpec = feature_spec_default()
    customers = Customer.objects.filter(erased_at__isnull=True).values("id")
    sql, sql_params = customers.query.sql_with_params()
    report(0.05, "building features")
    frames, ids, labels = [], [], []
    for chunk in features_build(spec=spec, source=fixed_cutoff(cutoff, sql, list(sql_params))):
        frames.append(chunk.frame)
        ids.append(chunk.customer_ids)
        labels.append(_labels(chunk.customer_ids, event_kind, cutoff, as_of))
    if not frames:
        raise ValueError("no customers to train on")
    X = pd.concat(frames, ignore_index=True)
    y = np.concatenate(labels)
    if y.sum() < 10 or (1 - y).sum() < 10:
        raise ValueError(f"too few customers with and without a {event_kind} to learn from")
    train, test_rows = train_test_split(np.arange(y.size), test_size=test, stratify=y,
                                        random_state=random_state)
    all_params = {"random_state": random_state, **(params or {})}
    version = ModelVersion.objects.create(
        campaign=campaign, kind=ModelVersion.Kind.RESPONSE, estimator=ESTIMATOR,
        params=all_params, feature_spec=spec.to_json(),
        target_metric=f"{event_kind}_{window_days}d", task_run=task_run,
        rows_train=train.size, rows_test=test_rows.size)
    try:
        model = PropensityToBuyClassifier(
            callback=lambda p: report(0.1 + 0.8 * p.fraction, f"training: epoch {p.epoch}"),
            **all_params)
        started = time.perf_counter()
        model.fit(X.iloc[train], y[train])
        seconds = time.perf_counter() - started
        p = model.predict_proba(X.iloc[test_rows])[:, 1]
        y_test = y[test_rows]
        metrics = {"auc": float(roc_auc_score(y_test, p)), "log_loss": float(log_loss(y_test, p)),
                   "brier": float(brier_score_loss(y_test, p)),
                   "ece": expected_calibration_error(y_test, p),
                   "base_rate": float(y_test.mean()), "validation_ece": model.validation_ece_}
        folder = model.save(artifact_folder(version))
        finite = bool(np.all(np.isfinite(p)))
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelVersion.Status.READY if finite else ModelVersion.Status.REJECTED,
            status_reason="" if finite else "predictions are not all finite",
            metrics=metrics, selection_score=metrics["auc"] if finite else None,
            feature_reference=psi_reference(X.iloc[train]), training_seconds=seconds,
            artifact_path=str(folder), artifact_sha256=artifact_checksum(folder))
    except Exception as exc:  # recorded, never promoted
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelVersion.Status.FAILED, status_reason=f"{type(exc).__name__}: {exc}")
    version.refresh_from_db()
    champion_consider(version)
    version.refresh_from_db()
    return version
