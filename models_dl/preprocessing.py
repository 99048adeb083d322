"""Feature and outcome preprocessing fitted inside the estimators.

Everything learned here (medians, means, standard deviations, category
vocabularies, which columns were log-transformed) is kept in plain Python
types so that it goes into the estimator's JSON config next to the state
dict: a saved model needs nothing else to score new rows.

Feature pipeline, per column:

* **numeric**: missing values are replaced by the training median and, when
  the column had missing values at fit time, a 0/1 "was missing" column is
  appended (missingness is often informative in CRM data: no purchase date
  means no purchase). Heavy-tailed non-negative columns (sample skewness
  above ``log_skew_threshold``, e.g. revenue, order counts) go through
  ``log1p`` first, so that a few whales do not dominate the standardisation.
  Then ``(x - mean) / std``.
* **categorical** (object, string, category or bool columns of a DataFrame,
  non-numeric columns of an object array, or the indices named in
  ``categorical_features``): one-hot over the ``max_categories`` most
  frequent training levels plus one "other / missing" column, so unseen
  levels at scoring time are not an error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ColumnSpec",
    "OutcomeScaler",
    "TabularPreprocessor",
    "infer_outcome_type",
]

OUTCOME_TYPES = ("binary", "continuous", "zero_inflated")


@dataclass
class ColumnSpec:
    """What was learned about one input column."""

    name: str
    kind: str  # "numeric" or "categorical"
    median: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    log1p: bool = False
    missing_indicator: bool = False
    categories: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        if self.kind == "categorical":
            return len(self.categories) + 1
        return 1 + int(self.missing_indicator)


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-dimensional, got shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


def _is_categorical(series: pd.Series) -> bool:
    if isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(series):
        return True
    if pd.api.types.is_numeric_dtype(series):
        return False
    # object / string column: categorical unless every non-missing value parses as a number
    converted = pd.to_numeric(series, errors="coerce")
    return bool((converted.isna() & series.notna()).any())


def _category_labels(series: pd.Series) -> pd.Series:
    """Map a column to string labels; missing values stay missing (the 'other' bucket)."""
    labels = series.astype(object)
    # astype(str) applies str() in pandas' own loop: a Python lambda per value
    # cost as much as the network's forward pass when scoring.
    return labels.astype(str).where(labels.notna())


def _skewness(values: np.ndarray, max_values: int = 100_000) -> float:
    """Sample skewness, from an evenly spaced subsample on large columns (it only
    decides whether to log-transform; 100 000 values settle that)."""
    if values.size > max_values:
        values = values[:: values.size // max_values]
    if values.size < 3:
        return 0.0
    centred = values - values.mean()
    sd = centred.std()
    if sd == 0:
        return 0.0
    return float(np.mean(centred**3) / sd**3)


class TabularPreprocessor:
    """Turn a numpy array or DataFrame into a dense float32 matrix.

    Parameters
    ----------
    categorical_features:
        Column names (DataFrame) or indices (array) to force to categorical.
        Others are detected from their dtype.
    max_categories:
        Most frequent levels kept per categorical column; rarer and unseen
        levels share one "other / missing" column.
    log_skew_threshold:
        Non-negative numeric columns whose sample skewness exceeds this are
        ``log1p``-transformed before standardising. ``None`` disables it.
    """

    def __init__(
        self,
        categorical_features: list[Any] | None = None,
        max_categories: int = 50,
        log_skew_threshold: float | None = 2.0,
    ) -> None:
        self.categorical_features = categorical_features
        self.max_categories = max_categories
        self.log_skew_threshold = log_skew_threshold
        self.columns_: list[ColumnSpec] | None = None
        self.input_was_frame_: bool = False

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any) -> TabularPreprocessor:
        frame = _as_frame(X)
        self.input_was_frame_ = isinstance(X, pd.DataFrame)
        forced = set(self.categorical_features or [])
        specs: list[ColumnSpec] = []
        for position, name in enumerate(frame.columns):
            series = frame[name]
            is_cat = name in forced or position in forced or _is_categorical(series)
            if is_cat:
                labels = _category_labels(series)
                counts = labels.dropna().value_counts(sort=True)
                # ties in frequency broken by label so the vocabulary is deterministic
                ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                vocab = [label for label, _ in ordered[: self.max_categories]]
                specs.append(ColumnSpec(name=str(name), kind="categorical", categories=vocab))
                continue
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            missing = ~np.isfinite(values)
            observed = values[~missing]
            median = float(np.median(observed)) if observed.size else 0.0
            filled = np.where(missing, median, values)
            log1p = bool(
                self.log_skew_threshold is not None
                and observed.size
                and observed.min() >= 0
                and _skewness(observed) > self.log_skew_threshold
            )
            if log1p:
                filled = np.log1p(filled)
            std = float(filled.std())
            specs.append(
                ColumnSpec(
                    name=str(name),
                    kind="numeric",
                    median=median,
                    mean=float(filled.mean()),
                    std=std if std > 1e-12 else 1.0,
                    log1p=log1p,
                    missing_indicator=bool(missing.any()),
                )
            )
        self.columns_ = specs
        return self

    # ------------------------------------------------------------ transform
    @property
    def n_output_features_(self) -> int:
        self._check_fitted()
        return sum(spec.width for spec in self.columns_)

    def _check_fitted(self) -> None:
        if self.columns_ is None:
            raise RuntimeError("TabularPreprocessor is not fitted")

    def transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        frame = _as_frame(X)
        if frame.shape[1] != len(self.columns_):
            raise ValueError(
                f"X has {frame.shape[1]} columns, the preprocessor was fitted on "
                f"{len(self.columns_)}"
            )
        if self.input_was_frame_ and isinstance(X, pd.DataFrame):
            expected = [spec.name for spec in self.columns_]
            missing_cols = [c for c in expected if c not in map(str, frame.columns)]
            if missing_cols:
                raise ValueError(f"X lacks columns seen at fit time: {missing_cols}")
            frame = frame.rename(columns=str)[expected]
        out = np.empty((frame.shape[0], self.n_output_features_), dtype=np.float32)
        offset = 0
        for position, spec in enumerate(self.columns_):
            series = frame.iloc[:, position]
            if spec.kind == "categorical":
                labels = _category_labels(series)
                index = {label: i for i, label in enumerate(spec.categories)}
                # unseen and missing levels land in the last ("other") column
                codes = labels.map(index).fillna(len(spec.categories)).to_numpy(dtype=np.int64)
                block = np.zeros((frame.shape[0], spec.width), dtype=np.float32)
                block[np.arange(frame.shape[0]), codes] = 1.0
                out[:, offset : offset + spec.width] = block
            else:
                values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
                missing = ~np.isfinite(values)
                filled = np.where(missing, spec.median, values)
                if spec.log1p:
                    # clip: a negative value at scoring time must not produce NaN
                    filled = np.log1p(np.maximum(filled, 0.0))
                out[:, offset] = (filled - spec.mean) / spec.std
                if spec.missing_indicator:
                    out[:, offset + 1] = missing
            offset += spec.width
        return out

    def fit_transform(self, X: Any) -> np.ndarray:
        return self.fit(X).transform(X)

    # ---------------------------------------------------------------- JSON
    def to_config(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "categorical_features": self.categorical_features,
            "max_categories": self.max_categories,
            "log_skew_threshold": self.log_skew_threshold,
            "input_was_frame": self.input_was_frame_,
            "columns": [asdict(spec) for spec in self.columns_],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TabularPreprocessor:
        pre = cls(
            categorical_features=config["categorical_features"],
            max_categories=config["max_categories"],
            log_skew_threshold=config["log_skew_threshold"],
        )
        pre.input_was_frame_ = config["input_was_frame"]
        pre.columns_ = [ColumnSpec(**spec) for spec in config["columns"]]
        return pre


def infer_outcome_type(y: np.ndarray) -> str:
    """Guess the outcome family from the training labels.

    ``binary`` when every value is 0 or 1; ``zero_inflated`` when the values
    are non-negative and at least 30 % of them are exactly zero (revenue per
    contacted customer); ``continuous`` otherwise.
    """
    y = np.asarray(y, dtype=np.float64)
    if np.isin(y, (0.0, 1.0)).all():
        return "binary"
    if y.min() >= 0 and np.mean(y == 0) >= 0.3:
        return "zero_inflated"
    return "continuous"


@dataclass
class OutcomeScaler:
    """Bring the outcome to a scale the network trains well on, and back.

    * ``binary``: untouched (the network outputs logits).
    * ``continuous``: standardised, ``(y - mean) / scale`` (Shalit et al. 2017
      standardise the IHDP outcome the same way).
    * ``zero_inflated``: divided by the mean of the positive values, so the
      log-normal part of the ZILN loss starts near ``mu = 0``.
    """

    outcome_type: str
    mean: float = 0.0
    scale: float = 1.0

    @classmethod
    def fit(cls, y: np.ndarray, outcome_type: str) -> OutcomeScaler:
        if outcome_type not in OUTCOME_TYPES:
            raise ValueError(f"outcome_type must be one of {OUTCOME_TYPES}, got {outcome_type!r}")
        y = np.asarray(y, dtype=np.float64)
        if outcome_type == "binary":
            if not np.isin(y, (0.0, 1.0)).all():
                raise ValueError("binary outcome must contain only 0 and 1")
            return cls(outcome_type)
        if outcome_type == "continuous":
            std = float(y.std())
            return cls(outcome_type, mean=float(y.mean()), scale=std if std > 1e-12 else 1.0)
        if y.min() < 0:
            raise ValueError("zero_inflated outcome must be non-negative")
        positive = y[y > 0]
        scale = float(positive.mean()) if positive.size else 1.0
        return cls(outcome_type, mean=0.0, scale=scale)

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return ((y - self.mean) / self.scale).astype(np.float32)

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float64) * self.scale + self.mean

    def inverse_transform_effect(self, tau: np.ndarray) -> np.ndarray:
        """Differences of outcomes only pick up the scale, not the shift."""
        return np.asarray(tau, dtype=np.float64) * self.scale
