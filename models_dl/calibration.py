"""Probability calibration and calibration error.

* :func:`expected_calibration_error`: ECE of Naeini, Cooper & Hauskrecht
  (2015) / Guo et al. (2017), "On Calibration of Modern Neural Networks".
* :class:`PlattCalibrator`: Platt (1999) scaling of a logit,
  ``p = sigmoid(a * logit + b)``, fitted by Newton's method on held-out
  rows. With ``b = 0`` it is Guo et al.'s temperature scaling (``a = 1/T``);
  the bias also corrects a base rate that early stopping left off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["PlattCalibrator", "calibration_table", "expected_calibration_error"]


def calibration_table(
    y_true: Any, probability: Any, n_bins: int = 10, strategy: str = "uniform"
) -> dict[str, np.ndarray]:
    """Per-bin counts, mean predicted probability and observed rate.

    ``uniform``: bins ``[0, 1/B), ..., [(B-1)/B, 1]``; ``quantile``: bins
    with equal numbers of rows. Empty bins are dropped.
    """
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(probability, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError("y_true and probability must have the same length")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1))
    else:
        raise ValueError("strategy must be 'uniform' or 'quantile'")
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    keep = count > 0
    mean_p = np.bincount(index, weights=p, minlength=n_bins)[keep] / count[keep]
    rate = np.bincount(index, weights=y, minlength=n_bins)[keep] / count[keep]
    return {"count": count[keep], "mean_probability": mean_p, "observed_rate": rate}


def expected_calibration_error(
    y_true: Any, probability: Any, n_bins: int = 10, strategy: str = "uniform"
) -> float:
    """ECE = sum over bins b of ``(n_b / n) * |observed rate_b - mean probability_b|``."""
    table = calibration_table(y_true, probability, n_bins, strategy)
    weights = table["count"] / table["count"].sum()
    return float(np.sum(weights * np.abs(table["observed_rate"] - table["mean_probability"])))


@dataclass
class PlattCalibrator:
    """``p = sigmoid(a * logit + b)``; identity (``a = 1, b = 0``) until fitted."""

    a: float = 1.0
    b: float = 0.0

    def fit(
        self, logit: Any, y_true: Any, sample_weight: Any | None = None, iterations: int = 50
    ) -> PlattCalibrator:
        """Minimise the weighted log loss over ``(a, b)`` by Newton's method.

        A small ridge on ``(a - 1, b)`` keeps the problem well posed when the
        held-out rows are few or perfectly separated.
        """
        z = np.asarray(logit, dtype=np.float64).reshape(-1)
        y = np.asarray(y_true, dtype=np.float64).reshape(-1)
        w = np.ones_like(z) if sample_weight is None else np.asarray(sample_weight, float)
        ridge = 1e-3 * w.sum()
        params = np.array([1.0, 0.0])
        design = np.stack([z, np.ones_like(z)], axis=1)
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-(design @ params)))
            gradient = design.T @ (w * (p - y)) + ridge * (params - [1.0, 0.0])
            hessian = (design * (w * p * (1 - p))[:, None]).T @ design + ridge * np.eye(2)
            step = np.linalg.solve(hessian, gradient)
            params -= step
            if np.max(np.abs(step)) < 1e-10:
                break
        self.a, self.b = float(params[0]), float(params[1])
        return self

    def transform(self, logit: Any) -> np.ndarray:
        z = np.asarray(logit, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-(self.a * z + self.b)))

    def to_config(self) -> dict[str, float]:
        return asdict(self)
