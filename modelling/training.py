"""uplift_model_train: from an experiment's assignments, outcomes and
point-in-time features to registered, evaluated model versions.

1. Data: one row per assigned customer; features from marketing.features as
   of the assignment time (never after), the target metric's outcome in the
   attribution window from experiments.outcomes, arms coded 0 = control,
   1..K = the other arms in id order.
2. Split: train / validation / test stratified by arm (and outcome when
   binary). The deep estimators early-stop on the validation rows (passed
   as their internal validation share of train+validation); everything is
   evaluated once on the untouched test rows.
3. Evaluate per arm on the test rows: Qini (causalml's normalised Qini
   score), AUUC (normalised), uplift at the top 30%, Qini curve points, and
   sqrt(PEHE) when the experiment has stored true effects (the demo), and
   the calibration table (modelling.uplift_calibration: predicted uplift
   beside the observed effect per decile and per declared segment).
   causalml baselines are fitted on the same split and reported beside.
4. Register: a ModelVersion per estimator with its artifact and checksum;
   sanity checks (finite, non-constant predictions, finite Qini) decide
   READY or REJECTED; modelling.registry decides the champion.
5. Explain each READY version on a sample of at most 2,000 test rows
   (modelling.explanations: uplift drivers per arm, targeting rules at the
   campaign's costs and the share of the model's value they keep). A failed
   explanation is recorded with the version and never fails the training.
   The causalml baselines are not explained: they are fitted for their
   held-out metrics only and not kept as versions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from django.db.models import Min
from sklearn.model_selection import train_test_split

from core.models import TaskRun
from experiments.models import Arm, Assignment, Experiment, Metric, TrueEffect
from experiments.outcomes import assignment_cutoffs, outcome_rows
from experiments.stats.drift import psi_reference
from experiments.stats.serialisation import to_jsonable
from marketing.features import FeatureSpec, features_build
from marketing.models import Customer, CustomerAttribute
from marketing.segment_rules import segment_members
from modelling.explanations import explanation_sample, model_version_explain
from modelling.models import ModelVersion
from modelling.registry import (
    GUARDRAIL_FOLDER,
    HELD_OUT_FILE,
    artifact_checksum,
    artifact_folder,
    champion_consider,
)
from modelling.uplift_calibration import calibration_table
from models_dl import make_estimator
from models_dl.baselines import causalml_fit_predict
from models_dl.metrics import (
    auuc_score,
    per_arm_scores,
    qini_curve,
    qini_score,
    sqrt_pehe,
    uplift_at_k,
)

logger = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
CURVE_POINTS = 101


@dataclass
class TrainingData:
    customer_ids: np.ndarray
    X: pd.DataFrame
    treatment: np.ndarray  # 0 = control, 1..K
    y: np.ndarray
    arm_names: list[str]  # index = treatment code
    true_effect: np.ndarray | None  # (n, K) when the experiment stores its truth


def feature_spec_for(experiment: Experiment) -> FeatureSpec:
    """Declared non-personal attributes that the experiment's customers actually carry."""
    sample = Customer.objects.filter(assignments__experiment=experiment).values_list(
        "attributes", flat=True)[:2_000]
    present = {key for attributes in sample for key in attributes}
    keys = CustomerAttribute.objects.filter(is_personal=False, key__in=present).order_by("key")
    return FeatureSpec(attributes=tuple(keys.values_list("key", flat=True)))


def training_data_build(experiment: Experiment, metric: Metric, spec: FeatureSpec) -> TrainingData:
    arms = list(experiment.arms.order_by("-is_control", "id"))
    if not arms or not arms[0].is_control:
        raise ValueError(f"experiment {experiment.key} has no control arm")
    code = {arm.id: i for i, arm in enumerate(arms)}
    outcomes = outcome_rows(experiment, metric)
    chunks = list(features_build(spec=spec, source=assignment_cutoffs(experiment.id)))
    if not chunks:
        raise ValueError(f"experiment {experiment.key} has no assigned customers")
    ids = np.concatenate([c.customer_ids for c in chunks])
    if not np.array_equal(ids, outcomes.customer_ids):
        raise ValueError("features and outcomes disagree on the assigned customers")
    X = pd.concat([c.frame for c in chunks], ignore_index=True)
    treatment = np.array([code[a] for a in outcomes.arm_ids.tolist()], dtype=np.int64)
    data = TrainingData(ids, X, treatment, outcomes.y, [a.name for a in arms],
                        _true_effects(experiment, metric, arms, ids))
    return _without_erased(experiment, data)


def _without_erased(experiment: Experiment, data: TrainingData) -> TrainingData:
    """Drop erased customers' rows: a model trained after an erasure learns nothing from them.

    (Analyses keep them: their assignments and outcomes, linked to nobody,
    keep every published count as it was.) A model trained before keeps no
    per-customer row either: its artifact is weights and aggregate metrics.
    """
    erased = np.fromiter(Assignment.objects.filter(
        experiment=experiment, customer__erased_at__isnull=False,
    ).values_list("customer_id", flat=True), dtype=np.int64)
    if not erased.size:
        return data
    keep = ~np.isin(data.customer_ids, erased)
    return TrainingData(
        data.customer_ids[keep], data.X[keep].reset_index(drop=True), data.treatment[keep],
        data.y[keep], data.arm_names,
        None if data.true_effect is None else data.true_effect[keep])


def _true_effects(experiment: Experiment, metric: Metric, arms: list[Arm],
                  ids: np.ndarray) -> np.ndarray | None:
    field = {Metric.Aggregation.CONVERTED: "conversion_uplift",
             Metric.Aggregation.SUM: "revenue_uplift"}.get(metric.aggregation)
    rows = TrueEffect.objects.filter(experiment=experiment)
    if field is None or not rows.exists():
        return None
    position = {int(c): i for i, c in enumerate(ids.tolist())}
    truth = np.full((ids.size, len(arms) - 1), np.nan)
    column = {arm.id: k for k, arm in enumerate(arms[1:])}
    for customer_id, arm_id, value in rows.values_list("customer_id", "arm_id", field).iterator(
            chunk_size=20_000):
        if customer_id in position and arm_id in column:
            truth[position[customer_id], column[arm_id]] = value
    return None if np.isnan(truth).any() else truth


@dataclass
class Split:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split_indices(data: TrainingData, *, validation: float, test: float, seed: int) -> Split:
    """Stratified by arm (and by outcome when it is binary)."""
    n = data.treatment.size
    binary = set(np.unique(data.y)) <= {0.0, 1.0}
    strata = data.treatment * 2 + (data.y > 0) if binary else data.treatment
    # Strata too small to split fall back to arm-only stratification.
    if np.bincount(strata).min(initial=n) < 10:
        strata = data.treatment
    rest, test_idx = train_test_split(np.arange(n), test_size=test, random_state=seed,
                                      stratify=strata)
    train_idx, val_idx = train_test_split(rest, test_size=validation / (1 - test),
                                          random_state=seed, stratify=strata[rest])
    return Split(np.sort(train_idx), np.sort(val_idx), np.sort(test_idx))


def evaluate_uplift(y: np.ndarray, treatment: np.ndarray, effect: np.ndarray,
                    arm_names: list[str], true_effect: np.ndarray | None) -> tuple[dict, dict]:
    """Held-out metrics per arm, and Qini curve points for plotting."""
    effect = effect.reshape(effect.shape[0], -1)
    scores = {
        "qini": per_arm_scores(qini_score, y, effect, treatment),
        "auuc": per_arm_scores(auuc_score, y, effect, treatment),
        "uplift_at_30": per_arm_scores(uplift_at_k, y, effect, treatment, k=0.3),
    }
    arms: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    for k in range(1, effect.shape[1] + 1):
        name = arm_names[k]
        arms[name] = {metric: values[k] for metric, values in scores.items()}
        rows = (treatment == 0) | (treatment == k)
        if true_effect is not None:
            arms[name]["sqrt_pehe"] = sqrt_pehe(true_effect[:, k - 1], effect[:, k - 1])
        x, q = qini_curve(y[rows], effect[rows, k - 1], (treatment[rows] == k).astype(int))
        keep = np.unique(np.linspace(0, x.size - 1, min(CURVE_POINTS, x.size)).astype(int))
        curves[name] = {"x": x[keep].tolist(), "qini": q[keep].tolist()}
    summary = {metric: float(np.mean([a[metric] for a in arms.values()]))
               for metric in next(iter(arms.values()))}
    return {"arms": arms, "mean": summary}, curves


def _stats_kind(metric: Metric) -> str:
    return "proportion" if metric.aggregation == Metric.Aggregation.CONVERTED else "mean"


def _segment_masks(experiment: Experiment, customer_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Declared breakdown segments as masks over the rows, membership as of the start."""
    as_of = experiment.started_at or experiment.assignments.aggregate(t=Min("assigned_at"))["t"]
    masks = {}
    for segment in experiment.breakdown_segments.all():
        members = np.fromiter(
            segment_members(segment.rule, as_of=as_of).filter(
                assignments__experiment=experiment).values_list("id", flat=True).iterator(),
            dtype=np.int64)
        masks[segment.key] = np.isin(customer_ids, members)
    return masks


def _sanity_problems(effect: np.ndarray, metrics: dict) -> list[str]:
    problems = []
    if not np.all(np.isfinite(effect)):
        problems.append("predictions are not all finite")
    elif float(np.std(effect)) < 1e-9:
        problems.append("predictions are constant: the model ranks nobody")
    if not np.isfinite(metrics["mean"].get("qini", np.nan)):
        problems.append("held-out Qini is not finite")
    return problems


# Guardrail models only rank harm; a few epochs give their ordering at a
# fraction of the primary model's training time.
GUARDRAIL_MAX_EPOCHS = 20


def guardrail_models_fit(*, experiment: Experiment, data: TrainingData, split: Split, name: str,
                         params: dict, folder: Path) -> dict[str, dict]:
    """One uplift model per guardrail metric, saved under ``folder/guardrails/<metric>``.

    Same estimator family, random_state and split as the primary model (so
    the held-out rows are the same), epochs capped at GUARDRAIL_MAX_EPOCHS.
    Returns, per metric, what scoring and targeting need (event kind, whether
    a rise is bad) and its held-out quality. A guardrail model that fails is
    recorded with its error and left out; the primary model stands.
    """
    fit_rows = np.concatenate([split.train, split.validation])
    X_fit, X_test = data.X.iloc[fit_rows], data.X.iloc[split.test]
    t_fit, t_test = data.treatment[fit_rows], data.treatment[split.test]
    cheap = {**params, "max_epochs": min(int(params.get("max_epochs", GUARDRAIL_MAX_EPOCHS)),
                                         GUARDRAIL_MAX_EPOCHS)}
    found: dict[str, dict] = {}
    for metric in experiment.metrics.filter(role=Metric.Role.GUARDRAIL).order_by("id"):
        entry = {"event_kind": metric.event_kind, "aggregation": metric.aggregation,
                 "higher_is_better": metric.higher_is_better}
        try:
            outcomes = outcome_rows(experiment, metric)
            if not np.array_equal(outcomes.customer_ids, data.customer_ids):
                raise ValueError("guardrail outcomes and training rows disagree")
            model = make_estimator(name, validation_fraction=split.validation.size
                                   / fit_rows.size, **cheap)
            model.fit(X_fit, t_fit, outcomes.y[fit_rows])
            effect = np.asarray(model.predict(X_test)).reshape(split.test.size, -1)
            quality, _ = evaluate_uplift(outcomes.y[split.test], t_test, effect,
                                         data.arm_names, None)
            model.save(folder / GUARDRAIL_FOLDER / metric.name)
            found[metric.name] = {**entry, "held_out": quality, "model": True}
        except Exception as exc:  # a guardrail model is an aid; its failure is recorded
            logger.exception("guardrail model %s failed", metric.name)
            found[metric.name] = {**entry, "model": False, "error": f"{type(exc).__name__}: {exc}"}
    return found


def held_out_ids_save(folder: Path, customer_ids: np.ndarray) -> None:
    """The test split's customer ids, inside the artifact (so the checksum covers them).

    modelling.targeting_evaluation evaluates lists on exactly these
    customers, which the model never saw.
    """
    np.save(folder / HELD_OUT_FILE, np.sort(np.asarray(customer_ids, dtype=np.int64)))


def _uplift_unit(metric: Metric) -> str:
    """What one unit of uplift counts, for the rules' text."""
    return "conversions" if metric.aggregation == Metric.Aggregation.CONVERTED else metric.name


def _explain(version: ModelVersion, estimator, X_test: pd.DataFrame, arm_names: list[str],
             truth_test: np.ndarray | None, *, unit: str, seed: int) -> None:
    """Store the version's explanations on a sample of the test rows, or why there are none."""
    sample = explanation_sample(len(X_test), seed=seed)
    try:
        version.refresh_from_db()  # the metrics (arm names, guardrail models) just stored
        model_version_explain(
            version=version, estimator=estimator, X=X_test.iloc[sample], arm_names=arm_names,
            unit=unit, true_effect=None if truth_test is None else truth_test[sample],
            random_state=seed)
    except Exception as exc:  # the model is still good: say why it is not explained
        logger.exception("explaining model version %s failed", version.pk)
        ModelVersion.objects.filter(pk=version.pk).update(
            explanations={"error": f"{type(exc).__name__}: {exc}"})


def uplift_model_train(
    *, experiment: Experiment, metric: Metric | None = None,
    estimators: Sequence[str] = ("default",), baselines: Sequence[str] = ("X",),
    estimator_params: dict | None = None, validation: float = 0.2, test: float = 0.2,
    random_state: int = 0, task_run: TaskRun | None = None, progress: Progress | None = None,
) -> list[ModelVersion]:
    """Train, evaluate and register one ModelVersion per estimator."""
    report = progress or (lambda fraction, step: None)
    metric = metric or experiment.metrics.get(role=Metric.Role.PRIMARY)
    spec = feature_spec_for(experiment)
    report(0.02, "building point-in-time features")
    data = training_data_build(experiment, metric, spec)
    split = split_indices(data, validation=validation, test=test, seed=random_state)
    fit_rows = np.concatenate([split.train, split.validation])
    X_fit, X_test = data.X.iloc[fit_rows], data.X.iloc[split.test]
    t_fit, y_fit = data.treatment[fit_rows], data.y[fit_rows]
    t_test, y_test = data.treatment[split.test], data.y[split.test]
    truth_test = None if data.true_effect is None else data.true_effect[split.test]

    segment_masks = _segment_masks(experiment, data.customer_ids)

    report(0.1, "causalml baselines")
    baseline_metrics = {}
    for name in baselines:
        started = time.perf_counter()
        effect = causalml_fit_predict(name, X_fit, t_fit, y_fit, X_test, seed=random_state)
        metrics, _ = evaluate_uplift(y_test, t_test, effect, data.arm_names, truth_test)
        baseline_metrics[f"causalml_{name}"] = {**metrics["mean"],
                                                "fit_seconds": time.perf_counter() - started}

    versions = []
    share = 0.85 / max(len(estimators), 1)
    for i, name in enumerate(estimators):
        base = 0.12 + i * share
        params = {"random_state": random_state, **(estimator_params or {}).get(name, {})}
        version = ModelVersion.objects.create(
            campaign=experiment.campaign, experiment=experiment, kind=ModelVersion.Kind.UPLIFT,
            estimator=name, params=params, feature_spec=spec.to_json(),
            target_metric=metric.name, task_run=task_run, rows_train=split.train.size,
            rows_validation=split.validation.size, rows_test=split.test.size)
        try:
            def on_epoch(p, base=base, name=name):
                report(base + share * 0.9 * p.fraction, f"training {name}: epoch {p.epoch}")

            estimator = make_estimator(name, validation_fraction=split.validation.size
                                       / fit_rows.size, callback=on_epoch, **params)
            started = time.perf_counter()
            estimator.fit(X_fit, t_fit, y_fit)
            seconds = time.perf_counter() - started
            effect = np.asarray(estimator.predict(X_test)).reshape(split.test.size, -1)
            metrics, curves = evaluate_uplift(y_test, t_test, effect, data.arm_names, truth_test)
            reference = psi_reference(X_fit)
            metrics["baselines"] = baseline_metrics
            metrics["arm_names"] = data.arm_names
            metrics["calibration"] = calibration_table(
                y_test, t_test, effect, data.arm_names, kind=_stats_kind(metric),
                segments={key: mask[split.test] for key, mask in segment_masks.items()})
            folder = estimator.save(artifact_folder(version))
            metrics["guardrails"] = guardrail_models_fit(
                experiment=experiment, data=data, split=split, name=name, params=params,
                folder=folder)
            held_out_ids_save(folder, data.customer_ids[split.test])
            problems = _sanity_problems(effect, metrics)
            ModelVersion.objects.filter(pk=version.pk).update(
                status=ModelVersion.Status.REJECTED if problems else ModelVersion.Status.READY,
                status_reason="; ".join(problems), metrics=to_jsonable(metrics),
                curves=to_jsonable(curves),
                selection_score=metrics["mean"]["qini"] if not problems else None,
                feature_reference=reference,
                training_seconds=seconds, artifact_path=str(folder),
                artifact_sha256=artifact_checksum(folder))
            if not problems:
                report(base + share * 0.95, f"explaining {name}")
                _explain(version, estimator, X_test, data.arm_names[1:], truth_test,
                         unit=_uplift_unit(metric), seed=random_state)
        except Exception as exc:  # a failed retrain is recorded, never promoted
            logger.exception("training %s failed", name)
            ModelVersion.objects.filter(pk=version.pk).update(
                status=ModelVersion.Status.FAILED, status_reason=f"{type(exc).__name__}: {exc}")
        version.refresh_from_db()
        champion_consider(version)
        version.refresh_from_db()
        versions.append(version)
    report(0.99, "registered")
    return versions
