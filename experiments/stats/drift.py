"""Population stability index (PSI) of features against the training data.

    PSI = sum_b (a_b - e_b) * ln(a_b / e_b)

over bins b, with e_b the share of training rows and a_b the share of current
rows in the bin (Siddiqi, *Credit Risk Scorecards*, 2006). Numeric features
use the training deciles as bin edges (plus a bin for missing values);
categorical ones their training categories plus "other". Shares are floored
at ``EPSILON`` so an empty bin does not give an infinite PSI. Convention:
below 0.1 stable, 0.1 to 0.25 a shift worth watching, above 0.25 a shift
that calls for retraining.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

EPSILON = 1e-4
DEFAULT_BINS = 10
OTHER = "__other__"
MISSING = "__missing__"


def _numeric_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"),
                         minlength=len(edges) + 1)
    shares = np.append(counts, missing.sum()) / max(values.size, 1)
    return shares.tolist()


def _categorical_shares(values: pd.Series, categories: list[str]) -> list[float]:
    labels = values.astype("object").where(values.notna(), MISSING).astype(str)
    labels = labels.where(labels.isin(categories), OTHER)
    counts = labels.value_counts()
    return [float(counts.get(c, 0)) / max(len(labels), 1) for c in [*categories, OTHER]]


def psi_reference(frame: pd.DataFrame, bins: int = DEFAULT_BINS) -> dict[str, dict[str, Any]]:
    """Bins and training shares per column, JSON-serialisable, stored with the model."""
    reference: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype=np.float64)
            finite = values[~np.isnan(values)]
            edges = (np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])).tolist()
                     if finite.size else [])
            reference[name] = {"kind": "numeric", "edges": edges,
                               "shares": _numeric_shares(values, edges)}
        else:
            labels = column.astype("object").where(column.notna(), MISSING).astype(str)
            categories = labels.value_counts().index[:bins].tolist()
            reference[name] = {"kind": "categorical", "categories": categories,
                               "shares": _categorical_shares(column, categories)}
    return reference


def psi(expected: list[float], actual: list[float]) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_by_feature(reference: Mapping[str, Mapping[str, Any]], frame: pd.DataFrame) -> dict[str, float]:
    """PSI of every reference feature present in ``frame``."""
    out = {}
    for name, ref in reference.items():
        if name not in frame.columns:
            continue
        if ref["kind"] == "numeric":
            actual = _numeric_shares(frame[name].to_numpy(dtype=np.float64), ref["edges"])
        else:
            actual = _categorical_shares(frame[name], ref["categories"])
        out[name] = psi(ref["shares"], actual)
    return out
