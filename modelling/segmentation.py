"""Learned segments: embed customers by behaviour, cluster, profile, save as a segment.

``segmentation_run_execute`` (one SegmentationRun):

1. features as of the run's cutoff for every customer who existed then
   (the one feature builder, with event sequences);
2. two embeddings: ``autoencoder`` (models_dl.embedding.TabularAutoencoder
   over the point-in-time features) and ``sequence`` (the final hidden
   state of an EventSequenceClassifier trained on the preceding period to
   predict churn);
3. k-means on each standardised embedding for every k in the manager's
   range [k_min, k_max]; k is the one with the best silhouette (computed
   on at most ``SILHOUETTE_SAMPLE`` customers);
4. the measured comparison that picks the embedding: the silhouette of
   each embedding's clustering measured in one common space, the
   standardised point-in-time features (``common_silhouette``), so that
   the clusters are judged by how well they separate customers' actual
   behaviour, not by the geometry of the space that made them. Reported
   beside it, for information: each clustering's own silhouette and, when
   the horizon after the cutoff has passed, a 3-fold cross-validated
   logistic-regression probe predicting churn from the embedding (not the
   criterion: the sequence model is trained on churn, so it wins that
   probe by construction, while its clusters track churn rather than
   behavioural types; benchmarks/RESULTS.md);
5. memberships (marketing.ClusterMembership), cluster profiles, and a
   2-D map (PCA of the embedding) of a sample of customers.

The artifact (embedding model, standardisation, centres) makes the run's
definition stable: ``cluster_memberships_extend`` places customers the run
never saw at the nearest centre, so a cluster saved as a segment
(``segment_cluster_save``) means the same thing tomorrow.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, silhouette_score
from sklearn.model_selection import cross_val_predict

from core.db.bulk import rows_insert
from core.models import TaskRun
from core.small_cells import privacy_min_cell
from experiments.models import Arm
from experiments.outcomes import outcome_rows
from marketing.features import FeatureSpec, feature_spec_default, features_build, fixed_cutoff
from marketing.models import ClusterMembership, Customer, CustomerPrediction, Segment
from marketing.services import segment_create
from modelling.behaviour_training import (
    HORIZON_DAYS,
    SEQUENCE_LENGTH,
    behaviour_sequences,
    period_rows,
    purchases_in,
)
from modelling.models import CustomerScore, ModelVersion, SegmentationRun, SegmentCluster
from modelling.registry import artifact_checksum, champion
from models_dl.embedding import TabularAutoencoder, nearest_centre
from models_dl.preprocessing import TabularPreprocessor
from models_dl.sequence import EventSequenceClassifier

EMBEDDINGS = ("autoencoder", "sequence")
SILHOUETTE_SAMPLE = 4_000
MAP_SAMPLE = 1_500
TOP_FEATURES = 5


def profile_cells_suppress(profile: dict) -> dict:
    """Blank the per-arm cells of a profile under PRIVACY_MIN_CELL (core.small_cells)."""
    minimum = privacy_min_cell()
    if minimum <= 0:
        return profile
    if profile.get("size", 0) < minimum:
        return {"index": profile["index"], "size": None, "suppressed": True}
    for arm in profile.get("arms", []):
        if arm["n"] < minimum:
            arm.update({"rate": None, "effect": None, "low": None, "high": None,
                        "suppressed": True})
    return profile


# ------------------------------------------------------------------ embeddings
def _standardise(embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = embedding.mean(axis=0)
    std = embedding.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    return (embedding - mean) / std, mean, std


def _best_k(points: np.ndarray, k_min: int, k_max: int, seed: int):
    """(k, {k: silhouette}, fitted KMeans) with the best silhouette in [k_min, k_max]."""
    rng = np.random.default_rng(seed)
    sample = rng.choice(points.shape[0], min(SILHOUETTE_SAMPLE, points.shape[0]), replace=False)
    scores, fits = {}, {}
    for k in range(k_min, min(k_max, points.shape[0] - 1) + 1):
        fit = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(points)
        labels = fit.labels_[sample]
        scores[k] = (float(silhouette_score(points[sample], labels))
                     if np.unique(labels).size > 1 else -1.0)
        fits[k] = fit
    if not scores:
        raise ValueError("too few customers for the range of cluster counts")
    k = max(scores, key=scores.get)
    return k, scores, fits[k]


def _probe_auc(points: np.ndarray, churned: np.ndarray, seed: int) -> float:
    """3-fold cross-validated AUC of a logistic regression from embedding to churn."""
    p = cross_val_predict(LogisticRegression(max_iter=500), points, churned, cv=3,
                          method="predict_proba")[:, 1]
    return float(roc_auc_score(churned, p))


def _sequence_embedder(spec: FeatureSpec, cutoff: datetime, params: dict, seed: int):
    """A GRU trained on the period before ``cutoff`` to predict churn; its state is the embedding."""
    start = cutoff - timedelta(days=HORIZON_DAYS)
    _, _, seqs, bought, _ = period_rows(spec, start, HORIZON_DAYS)
    seqs.static = None  # the representation of the history alone
    model = EventSequenceClassifier(max_length=SEQUENCE_LENGTH, random_state=seed,
                                    **{"hidden_size": 16, "max_epochs": 20, **params})
    return model.fit(seqs, 1.0 - bought)


# ------------------------------------------------------------------ the run
def segmentation_run_create(*, campaign, experiment=None, cutoff: datetime | None = None,
                            k_min: int = 2, k_max: int = 8,
                            task_run: TaskRun | None = None) -> SegmentationRun:
    if not 2 <= k_min <= k_max <= 20:
        raise ValueError("the cluster range must satisfy 2 <= k_min <= k_max <= 20")
    return SegmentationRun.objects.create(
        campaign=campaign, experiment=experiment, cutoff=cutoff or timezone.now(),
        k_min=k_min, k_max=k_max, task_run=task_run)


def segmentation_run_execute(run: SegmentationRun, *, params: dict | None = None,
                             embeddings: tuple[str, ...] = EMBEDDINGS, random_state: int = 0,
                             progress=None) -> SegmentationRun:
    """Embed, compare, cluster, profile (see the module docstring); the run records failures."""
    try:
        _execute(run, params or {}, embeddings, random_state, progress or (lambda f, s: None))
    except Exception as exc:
        SegmentationRun.objects.filter(pk=run.pk).update(
            status=SegmentationRun.Status.FAILED, status_reason=f"{type(exc).__name__}: {exc}")
        run.refresh_from_db()
        raise
    run.refresh_from_db()
    return run


def _execute(run: SegmentationRun, params: dict, embeddings: tuple[str, ...], seed: int,
             report) -> None:
    if not embeddings or any(e not in EMBEDDINGS for e in embeddings):
        raise ValueError(f"embeddings: choose from {EMBEDDINGS}")
    base = feature_spec_default()
    spec = FeatureSpec(attributes=base.attributes, kinds=base.kinds, windows=base.windows,
                       sequence_length=SEQUENCE_LENGTH if "sequence" in embeddings else 0)
    report(0.05, "building features")
    ids, frame, seqs, _, _ = period_rows(spec, run.cutoff, HORIZON_DAYS)
    if ids.size < 20:
        raise ValueError("fewer than 20 customers to segment")
    horizon_end = run.cutoff + timedelta(days=HORIZON_DAYS)
    churned = None
    if horizon_end <= timezone.now():
        churned = (purchases_in(ids, run.cutoff, horizon_end) == 0).astype(int)
        if churned.min() == churned.max():
            churned = None
    rng = np.random.default_rng(seed)
    common_sample = rng.choice(ids.size, min(SILHOUETTE_SAMPLE, ids.size), replace=False)
    common, _, _ = _standardise(TabularPreprocessor().fit_transform(frame))
    candidates, models = {}, {}
    for position, name in enumerate(embeddings):
        report(0.1 + 0.4 * position / len(embeddings), f"learning the {name} embedding")
        if name == "autoencoder":
            model = TabularAutoencoder(random_state=seed, **params.get("autoencoder", {}))
            embedding = model.fit(frame).transform(frame)
        else:
            model = _sequence_embedder(spec, run.cutoff, params.get("sequence", {}), seed)
            seqs.static = None
            embedding = model.embed(seqs)
        points, mean, std = _standardise(embedding)
        k, k_scores, fit = _best_k(points, run.k_min, run.k_max, seed)
        labels = fit.labels_[common_sample]
        entry = {"k": k, "silhouette": k_scores[k], "k_scores": k_scores,
                 "common_silhouette": float(silhouette_score(common[common_sample], labels))
                 if np.unique(labels).size > 1 else -1.0}
        if churned is not None:
            entry["churn_probe_auc"] = _probe_auc(points, churned, seed)
        candidates[name] = entry
        models[name] = (model, points, mean, std, fit)
    criterion = "common_silhouette"
    chosen = max(candidates, key=lambda n: candidates[n][criterion])
    model, points, mean, std, fit = models[chosen]
    comparison = {"candidates": {n: {k: v for k, v in c.items() if k != "k_scores"}
                                 for n, c in candidates.items()},
                  "criterion": criterion, "chosen": chosen}
    report(0.6, "saving memberships and profiles")
    labels = fit.labels_
    folder = _artifact_save(run, chosen, model, mean, std, fit.cluster_centers_, spec)
    rng = np.random.default_rng(seed)
    sample = rng.choice(ids.size, min(MAP_SAMPLE, ids.size), replace=False)
    xy = PCA(n_components=2, random_state=seed).fit_transform(points)[sample]
    with transaction.atomic():
        ClusterMembership.objects.filter(run_id=run.id).delete()
        now = timezone.now()
        rows_insert(ClusterMembership, ["run_id", "customer_id", "cluster", "assigned_at"],
                    ((run.id, int(c), int(k), now) for c, k in zip(ids.tolist(),
                                                                   labels.tolist(), strict=True)))
        profiles = cluster_profiles(run, ids, frame, labels)
        SegmentCluster.objects.filter(run=run).delete()
        SegmentCluster.objects.bulk_create([
            SegmentCluster(run=run, index=p["index"], size=int((labels == p["index"]).sum()),
                           profile=p) for p in profiles])
        SegmentationRun.objects.filter(pk=run.pk).update(
            status=SegmentationRun.Status.READY, embedding=chosen, comparison=comparison,
            k_scores={str(k): v for k, v in candidates[chosen]["k_scores"].items()},
            k=int(fit.n_clusters), customers=int(ids.size),
            map_points={"x": np.round(xy[:, 0], 3).tolist(), "y": np.round(xy[:, 1], 3).tolist(),
                        "cluster": labels[sample].tolist()},
            artifact_path=str(folder), artifact_sha256=artifact_checksum(folder))
    report(1.0, "done")


def _artifact_save(run, embedding: str, model, mean, std, centres, spec: FeatureSpec) -> Path:
    folder = Path(settings.MODEL_ARTIFACT_DIR) / f"segmentation-{run.id}-{uuid.uuid4().hex[:12]}"
    model.save(folder / "embedding")
    (folder / "clusters.json").write_text(json.dumps({
        "embedding": embedding, "mean": mean.tolist(), "std": std.tolist(),
        "centres": np.asarray(centres).tolist(), "feature_spec": spec.to_json()}))
    return folder


def _run_model(run: SegmentationRun):
    folder = Path(run.artifact_path)
    if not folder.is_dir() or artifact_checksum(folder) != run.artifact_sha256:
        raise ValueError(f"the artifact of segmentation run {run.id} is missing or altered")
    config = json.loads((folder / "clusters.json").read_text())
    if config["embedding"] == "autoencoder":
        model = TabularAutoencoder.load(folder / "embedding")
    else:
        model = EventSequenceClassifier.load(folder / "embedding", device="cpu")
    return model, config


def customers_embed_assign(run: SegmentationRun, customer_ids, cutoff: datetime) -> np.ndarray:
    """Cluster index of each of ``customer_ids`` (sorted) by the run's nearest centre."""
    model, config = _run_model(run)
    spec = FeatureSpec.from_json(config["feature_spec"])
    customers = Customer.objects.filter(id__in=list(map(int, customer_ids))).values("id")
    sql, params = customers.query.sql_with_params()
    ids, frames, histories = [], [], []
    for chunk in features_build(spec=spec, source=fixed_cutoff(cutoff, sql, list(params))):
        ids.append(chunk.customer_ids)
        frames.append(chunk.frame)
        histories.extend(chunk.sequences)
    if not ids:
        return np.array([], dtype=np.int64)
    frame = pd.concat(frames, ignore_index=True)
    if config["embedding"] == "autoencoder":
        embedding = model.transform(frame)
    else:
        seqs = behaviour_sequences(histories, frame)
        seqs.static = None
        embedding = model.embed(seqs)
    points = (embedding - np.array(config["mean"])) / np.array(config["std"])
    return nearest_centre(points, np.array(config["centres"]))


def cluster_memberships_extend(run: SegmentationRun, *, at: datetime | None = None) -> int:
    """Give every customer the run has no membership for one, by the nearest saved centre."""
    at = at or timezone.now()
    known = ClusterMembership.objects.filter(run_id=run.id).values("customer_id")
    new_ids = np.array(sorted(Customer.objects.filter(erased_at__isnull=True)
                              .exclude(id__in=known).values_list("id", flat=True)),
                       dtype=np.int64)
    if not new_ids.size:
        return 0
    clusters = customers_embed_assign(run, new_ids, at)
    return rows_insert(ClusterMembership, ["run_id", "customer_id", "cluster", "assigned_at"],
                       ((run.id, int(c), int(k), at) for c, k in zip(
                           new_ids.tolist(), clusters.tolist(), strict=True)))


@transaction.atomic
def segment_cluster_save(*, cluster: SegmentCluster, key: str, name: str) -> Segment:
    """A Segment whose rule is membership of this cluster of this run (a stable definition)."""
    if cluster.segment_id:
        raise ValueError(f"cluster {cluster.index} of run {cluster.run_id} is already saved as "
                         f"segment {cluster.segment.key!r}")
    profile = cluster.profile or {}
    traits = ", ".join(f"{d['feature']} {d['cluster']:.3g} vs {d['rest']:.3g}"
                       for d in profile.get("distinguishing", [])[:3])
    segment = segment_create(
        key=key, name=name, rule={"cluster": {"run": cluster.run_id, "index": cluster.index}},
        description=f"Learned cluster {cluster.index} of segmentation run {cluster.run_id} "
                    f"({cluster.run.embedding} embedding); {traits}. New customers join by "
                    f"the nearest centre of that run.")
    SegmentCluster.objects.filter(pk=cluster.pk).update(segment=segment)
    cluster.segment = segment
    return segment


# ------------------------------------------------------------------ profiles
def cluster_profiles(run: SegmentationRun, ids: np.ndarray, frame: pd.DataFrame,
                     labels: np.ndarray) -> list[dict]:
    """Per cluster: size, what sets it apart, conversion, revenue, churn risk, per-arm effects.

    Distinguishing features: numeric columns ranked by the standardised
    mean difference (cluster mean minus the rest's, over the pooled
    standard deviation), each with both means.
    """
    numeric = frame.select_dtypes(include="number").astype(float)
    churn = dict(CustomerPrediction.objects.filter(
        name=CustomerPrediction.Name.CHURN_RISK, customer_id__in=ids.tolist())
        .values_list("customer_id", "value")) if ids.size <= 50_000 else {}
    churn_values = np.array([churn.get(int(c), np.nan) for c in ids])
    arms = _arm_outcomes(run, ids)
    uplift = _predicted_uplift(run, ids)
    profiles = []
    for k in range(int(labels.max()) + 1):
        inside = labels == k
        if not inside.any():
            continue
        distinguishing = []
        for column in numeric.columns:
            values = numeric[column].to_numpy()
            a, b = values[inside], values[~inside]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            if a.size < 2 or b.size < 2:
                continue
            pooled = np.sqrt((a.var() + b.var()) / 2)
            if pooled <= 1e-12:
                continue
            distinguishing.append({"feature": column, "cluster": float(a.mean()),
                                   "rest": float(b.mean()),
                                   "difference": float((a.mean() - b.mean()) / pooled)})
        distinguishing.sort(key=lambda d: -abs(d["difference"]))
        profile = {
            "index": k, "size": int(inside.sum()), "share": float(inside.mean()),
            "distinguishing": distinguishing[:TOP_FEATURES],
            "conversion_90d": _mean(numeric.get("purchases_90d"), inside, positive=True),
            "revenue_90d": _mean(numeric.get("revenue_90d"), inside),
            "churn_risk": (float(np.nanmean(churn_values[inside]))
                           if np.isfinite(churn_values[inside]).any() else None),
        }
        if arms is not None:
            profile["arms"] = _arm_effects(arms, ids[inside])
        if uplift is not None:
            profile["predicted_uplift"] = {arm: float(np.nanmean(values[inside]))
                                           for arm, values in uplift.items()}
        profiles.append(profile_cells_suppress(profile))
    return profiles


def _mean(series, inside: np.ndarray, positive: bool = False) -> float | None:
    if series is None:
        return None
    values = series.to_numpy()[inside]
    return float(np.nanmean(values > 0) if positive else np.nanmean(values))


def _arm_outcomes(run: SegmentationRun, ids: np.ndarray):
    """(customer ids, arm names, converted) of the run's experiment, or None without one."""
    experiment = run.experiment
    if experiment is None:
        return None
    metric = experiment.metrics.filter(role="primary").first() or experiment.metrics.first()
    if metric is None:
        return None
    rows = outcome_rows(experiment, metric)
    names = dict(Arm.objects.filter(experiment=experiment).values_list("id", "name"))
    control = Arm.objects.filter(experiment=experiment, is_control=True).values_list(
        "name", flat=True).first()
    return {"customer_ids": rows.customer_ids, "arm": np.array([names[a] for a in rows.arm_ids]),
            "y": rows.y, "control": control, "arms": [names[a] for a in sorted(names)]}


def _arm_effects(outcomes: dict, members: np.ndarray) -> list[dict]:
    """Per arm: customers, rate, and the difference from control with a 95 % interval.

    Difference of means with the unpooled (Welch) standard error,
    sqrt(s1²/n1 + s0²/n0), and a normal 1.96 interval.
    """
    inside = np.isin(outcomes["customer_ids"], members)
    arm, y = outcomes["arm"][inside], outcomes["y"][inside]
    control = y[arm == outcomes["control"]]
    cells = []
    for name in outcomes["arms"]:
        values = y[arm == name]
        cell = {"arm": name, "n": int(values.size),
                "rate": float(values.mean()) if values.size else None,
                "effect": None, "low": None, "high": None}
        if name != outcomes["control"] and values.size > 1 and control.size > 1:
            effect = values.mean() - control.mean()
            se = np.sqrt(values.var(ddof=1) / values.size + control.var(ddof=1) / control.size)
            cell.update(effect=float(effect), low=float(effect - 1.96 * se),
                        high=float(effect + 1.96 * se))
        cells.append(cell)
    return cells


def _predicted_uplift(run: SegmentationRun, ids: np.ndarray) -> dict | None:
    """Arm -> each customer's predicted uplift (NaN unscored) from the campaign's champion."""
    version = champion(run.campaign_id, ModelVersion.Kind.UPLIFT)
    if version is None or ids.size > 200_000:
        return None
    scores = dict(CustomerScore.objects.filter(model_version=version, customer_id__in=ids.tolist())
                  .values_list("customer_id", "uplift_by_arm"))
    if not scores:
        return None
    arms = sorted({arm for by_arm in scores.values() for arm in (by_arm or {})})
    return {arm: np.array([(scores.get(int(c)) or {}).get(arm, np.nan) for c in ids], dtype=float)
            for arm in arms}


def customer_cluster(run: SegmentationRun, customer: Customer) -> int | None:
    """The customer's cluster in the run (None when not a member)."""
    return (ClusterMembership.objects.filter(run_id=run.id, customer=customer)
            .values_list("cluster", flat=True).first())
