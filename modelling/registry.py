"""The model registry: artifacts on disk with checksums, and the champion rule.

A version's artifact is the folder models_dl writes (``config.json`` +
``weights.pt``); its SHA-256 over the files is stored so a tampered or
half-copied artifact is refused at load time.

Champion rule: among versions of one campaign and kind, a version becomes
champion only if it is READY (passed the sanity checks) and its selection
score (``ModelVersion.selection_score``: held-out Qini for uplift models,
held-out ROC AUC for response and churn models, held-out R²
for value models) beats the current champion's. A failed, rejected or worse retrain
leaves the live champion in place.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from modelling.models import ModelVersion

# Inside an uplift version's artifact folder, covered by its checksum: one
# model per guardrail metric, and the ids of the held-out (test) customers.
GUARDRAIL_FOLDER = "guardrails"
HELD_OUT_FILE = "held_out_customer_ids.npy"


def artifact_folder(version: ModelVersion) -> Path:
    """A new folder per version; the random suffix keeps two databases (or a
    restored backup) that share MODEL_ARTIFACT_DIR from overwriting each other."""
    return Path(settings.MODEL_ARTIFACT_DIR) / f"{version.kind}-{version.id}-{uuid.uuid4().hex[:12]}"


def artifact_checksum(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _checked_folder(version: ModelVersion) -> Path:
    folder = Path(version.artifact_path)
    if not folder.is_dir():
        raise FileNotFoundError(f"artifact of model version {version.id} missing at {folder}")
    if artifact_checksum(folder) != version.artifact_sha256:
        raise ValueError(f"artifact of model version {version.id} fails its checksum")
    return folder


def guardrail_models_load(version: ModelVersion) -> dict:
    """Metric name -> fitted guardrail uplift model (checksum checked); {} when none."""
    from models_dl import load_estimator

    names = [name for name, entry in version.metrics.get("guardrails", {}).items()
             if entry.get("model")]
    if not names:
        return {}
    folder = _checked_folder(version)
    return {name: load_estimator(folder / GUARDRAIL_FOLDER / name, device="cpu")
            for name in names}


def held_out_ids_load(version: ModelVersion):
    """The version's test-split customer ids (numpy int64), or None for older versions."""
    folder = _checked_folder(version)
    path = folder / HELD_OUT_FILE
    return np.load(path, allow_pickle=False) if path.is_file() else None


def behaviour_model_load(estimator: str, folder: Path):
    """A churn or value model (modelling.behaviour_training) by its estimator name."""
    from models_dl.behaviour import BoostedBinaryClassifier, HurdleRevenueRegressor
    from models_dl.response import PropensityToBuyClassifier
    from models_dl.sequence import EventSequenceClassifier

    loaders = {"aggregate_mlp": lambda: PropensityToBuyClassifier.load(folder, device="cpu"),
               "lightgbm": lambda: BoostedBinaryClassifier.load(folder),
               "sequence_gru": lambda: EventSequenceClassifier.load(folder, device="cpu"),
               "hurdle_lightgbm": lambda: HurdleRevenueRegressor.load(folder)}
    if estimator not in loaders:
        raise ValueError(f"no loader for estimator {estimator!r}")
    return loaders[estimator]()


def artifact_load(version: ModelVersion):
    """The fitted estimator of a version, after checking the artifact's checksum."""
    from models_dl import load_estimator

    folder = _checked_folder(version)
    if version.kind in (ModelVersion.Kind.CHURN, ModelVersion.Kind.VALUE):
        return behaviour_model_load(version.estimator, folder)
    if version.kind == ModelVersion.Kind.RESPONSE:
        from models_dl.response import PropensityToBuyClassifier

        return PropensityToBuyClassifier.load(folder, device="cpu")
    return load_estimator(folder, device="cpu")


@transaction.atomic
def champion_consider(version: ModelVersion) -> bool:
    """Make ``version`` the champion if it is ready and beats the current one."""
    version.refresh_from_db()
    if version.status != ModelVersion.Status.READY or version.selection_score is None:
        return False
    current = (ModelVersion.objects.select_for_update()
               .filter(campaign=version.campaign_id, kind=version.kind, is_champion=True)
               .exclude(pk=version.pk).first())
    if (current is not None and current.selection_score is not None
            and version.selection_score <= current.selection_score):
        return False
    if current is not None:
        ModelVersion.objects.filter(pk=current.pk).update(is_champion=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_champion=True)
    version.is_champion = True
    return True


def champion(campaign_id: int, kind: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(campaign_id=campaign_id, kind=kind,
                                       is_champion=True).first()


def model_versions_abandon(*, run, reason: str, **_signal) -> int:
    """Mark the versions a lost training attempt left "training" as failed (task_run_lost).

    Their artifact was never registered (the path and checksum are written
    only once the folder is complete) and they never became champion, so
    the champion stays as it was until a new attempt succeeds.
    """
    return ModelVersion.objects.filter(task_run_id=run.id,
                                       status=ModelVersion.Status.TRAINING).update(
        status=ModelVersion.Status.FAILED, status_reason=f"training abandoned: {reason}")
