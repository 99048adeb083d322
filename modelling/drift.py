"""Feature drift of a model version: PSI of each feature now against training."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from django.utils import timezone

from experiments.stats.drift import psi_by_feature
from marketing.features import FeatureSpec, features_build, fixed_cutoff
from marketing.models import Customer
from modelling.models import ModelVersion

DRIFT_SAMPLE = 20_000


@dataclass(frozen=True)
class DriftReport:
    model_version_id: int
    psi: dict[str, float]
    max_psi: float
    customers: int


def feature_drift(version: ModelVersion, *, sample: int = DRIFT_SAMPLE) -> DriftReport:
    """PSI of each feature now (a spread sample of customers) against training."""
    total = Customer.objects.count()
    step = max(total // sample, 1)
    table = Customer._meta.db_table
    # Every step-th customer by id: spread over the whole base, cheap in SQL.
    customers_sql = f"SELECT id FROM {table} WHERE erased_at IS NULL AND id %% %s = 0"
    spec = FeatureSpec.from_json(version.feature_spec)
    frames = [chunk.frame for chunk in features_build(
        spec=spec, source=fixed_cutoff(timezone.now(), customers_sql, [step]))]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    values = psi_by_feature(version.feature_reference, frame) if len(frame) else {}
    return DriftReport(version.id, values, max(values.values(), default=0.0), len(frame))
