"""Why the model predicts the uplift it does: drivers, per-customer reasons, rules.

Three questions a campaign manager asks of an uplift model, answered on the
*predicted uplift* (the effect of an arm against control), never on the
predicted outcome: a feature can drive conversion strongly and the effect not
at all (recent buyers convert with or without an e-mail).

* :func:`uplift_drivers`: which features move the uplift, per arm, on
  held-out rows (global, a JSON-serialisable :class:`UpliftDrivers` stored
  with a model version).
* :func:`explain_customers`: for each customer and arm, the features pushing
  the uplift up or down, with their values (local).
* :func:`policy_rules` (in :mod:`.rules`, re-exported here): a small tree that
  says in words who gets which arm at the campaign's costs.

Attribution method: integrated gradients (Sundararajan, Taly & Yan 2017,
"Axiomatic Attribution for Deep Networks", ICML) of the uplift output
``f_k(x) = E[y | x, arm k] - E[y | x, control]`` with respect to the network
inputs, against a baseline ``x'`` (the mean preprocessed row of a background
set)::

    IG_j(x) = (x_j - x'_j) * integral_0^1 df_k(x' + a (x - x')) / dx_j  da

approximated with the midpoint rule over ``n_steps`` values of ``a``. Its
error falls as ``1 / n_steps^2`` on the smooth ELU networks used here
(measured in ``benchmarks/RESULTS.md``, integrated gradients).
*Completeness* holds: ``sum_j IG_j(x) = f_k(x) - f_k(x')``, so a customer's
contributions add up exactly (to the quadrature error) to their predicted
uplift minus the baseline's. That is why IG and not permutation importance is
the main method:

* the local question needs signed per-customer contributions that add up to
  the prediction; permutation importance only gives a global score;
* permuting a column evaluates the model on impossible customers (a
  customer's 365-day purchases below their 90-day purchases) and on a random
  draw, so it is noisy; IG is deterministic and costs ``n_steps`` forward and
  backward passes;
* the drivers and the per-customer reasons then come from the same numbers.

Permutation importance on the predicted uplift (``method="permutation"``)
is kept for learners without a torch network (causalml's meta-learners, any
object with ``predict``): importance of feature j is the root mean square
change of the predicted uplift when column j is shuffled,
``sqrt(mean_i (u(x_i) - u(x_i with x_ij from another row))^2)``, in the
same units as the uplift (so is mean ``|IG_j|``). For a causalml learner
fitted on encoded features, pass a function of the raw rows so that a
categorical is shuffled (and counted) as one column::

    uplift_drivers(lambda raw: learner.predict(encoder.transform(raw)), X_raw)

Attributions are grouped by the *original* feature names: the one-hot
columns of a categorical and the "was missing" column of a numeric feature
belong to the feature the preprocessor built them from, so a categorical
counts once (see :class:`~models_dl.preprocessing.TabularPreprocessor`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .losses import expected_outcome
from .preprocessing import TabularPreprocessor
from .rules import PolicyRule, PolicyRules, policy_rules
from .training import torch_threads

__all__ = [
    "Contribution",
    "PolicyRule",
    "PolicyRules",
    "UpliftDrivers",
    "UpliftExplanation",
    "explain_customers",
    "feature_groups",
    "ig_baseline",
    "integrated_gradients",
    "policy_rules",
    "uplift_drivers",
]

# Rows per integrated-gradients batch: n_steps passes over this many rows
# keep the activations of a 128-unit network near 2 MB per pass.
_IG_CHUNK = 4_096


# ------------------------------------------------------------------ grouping
def feature_groups(preprocessor: TabularPreprocessor) -> list[tuple[str, slice]]:
    """Original feature name and the slice of network-input columns built from it.

    The preprocessor lays columns out in input order, each taking
    ``ColumnSpec.width`` columns (one-hot levels plus "other" for a
    categorical; value plus "was missing" for a numeric column with gaps).
    """
    preprocessor._check_fitted()
    groups, offset = [], 0
    for spec in preprocessor.columns_:
        groups.append((spec.name, slice(offset, offset + spec.width)))
        offset += spec.width
    return groups


def _group_sum(attributions: np.ndarray, groups: list[tuple[str, slice]]) -> np.ndarray:
    """Sum attributions over each group's columns: ``(..., n_inputs) -> (..., n_groups)``."""
    return np.stack([attributions[..., cols].sum(axis=-1) for _, cols in groups], axis=-1)


def _raw_frame(X: Any, preprocessor: TabularPreprocessor) -> pd.DataFrame:
    """The rows as the preprocessor reads them, columns named as its features."""
    names = [spec.name for spec in preprocessor.columns_]
    if isinstance(X, pd.DataFrame) and preprocessor.input_was_frame_:
        return X.rename(columns=str)[names].reset_index(drop=True)
    arr = np.asarray(X)
    return pd.DataFrame(arr.reshape(arr.shape[0], -1), columns=names)


def _arm_names(n_treated: int, arm_names: Sequence[str] | None) -> list[str]:
    """Names of the treated arms; by default their treatment codes, ``arm 1..K``."""
    if arm_names is None:
        return [f"arm {k}" for k in range(1, n_treated + 1)]
    names = [str(a) for a in arm_names]
    if len(names) != n_treated:
        raise ValueError(f"arm_names needs {n_treated} names (treated arms), got {len(names)}")
    return names


# ------------------------------------------------------- integrated gradients
def _uplift_function(estimator: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> (batch, K)`` uplift in the outcome's units, differentiable in ``x``.

    Mirrors :meth:`DeepUpliftEstimator.predict`: members' expected outcomes
    are averaged, then the scaler's affine map is undone; the shift cancels
    in the difference, so the effect is ``scale * (mean_k - mean_0)``.
    """
    scale = float(estimator.outcome_scaler_.scale)
    outcome_type = estimator.outcome_type_

    def uplift(x: torch.Tensor) -> torch.Tensor:
        total = None
        for network in estimator.networks_:
            value = expected_outcome(network(x).outcomes, outcome_type)
            total = value if total is None else total + value
        mean = total / len(estimator.networks_)
        return scale * (mean[:, 1:] - mean[:, :1])

    return uplift


def ig_baseline(estimator: Any, background: Any) -> np.ndarray:
    """The integrated-gradients baseline: the mean preprocessed row of ``background``.

    Store it with a model version (a few dozen floats, no customer's values)
    to explain single customers later against the same "average held-out
    customer" as the version's drivers, without the held-out rows.
    """
    return estimator.preprocessor_.transform(background).astype(np.float64).mean(axis=0).astype(
        np.float32)


def integrated_gradients(
    estimator: Any, X: Any, *, background: Any | None = None, n_steps: int = 64,
    baseline: Any | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrated gradients of every arm's uplift w.r.t. the network inputs.

    Returns ``(attributions, baseline_uplift, baseline)``: attributions of
    shape ``(n, K, n_inputs)`` (preprocessed columns, not yet grouped), the
    uplift of the baseline row ``(K,)`` and the baseline itself
    ``(n_inputs,)``: the mean preprocessed row of ``background`` (default:
    ``X``), or ``baseline`` itself when given (see :func:`ig_baseline`). A mean baseline puts a "typical customer" at zero, so a
    contribution reads "compared with the average customer"; an all-zero
    baseline would compare with a customer that has every categorical level
    switched off, which no one is.

    ``attributions[i, k].sum() == f_k(x_i) - baseline_uplift[k]`` up to the
    midpoint rule's error (``n_steps`` points, alpha = (s - 0.5) / n_steps).
    """
    if not hasattr(estimator, "networks_"):
        raise TypeError(
            "integrated gradients need a fitted deep uplift estimator (torch networks); "
            "use method='permutation' for other learners"
        )
    if n_steps < 1:
        raise ValueError("n_steps must be at least 1")
    pre = estimator.preprocessor_
    features = pre.transform(X).astype(np.float32)
    if baseline is not None:
        baseline_np = np.asarray(baseline, dtype=np.float32).reshape(-1)
        if baseline_np.size != features.shape[1]:
            raise ValueError(f"baseline has {baseline_np.size} values, the network "
                             f"{features.shape[1]} inputs")
    else:
        baseline_np = ig_baseline(estimator, X if background is None else background)
    uplift = _uplift_function(estimator)
    device = estimator.device_
    n_treated = estimator.n_arms_ - 1
    alphas = (np.arange(n_steps) + 0.5) / n_steps
    result = np.zeros((features.shape[0], n_treated, features.shape[1]), dtype=np.float64)

    with torch_threads(estimator.n_threads):
        baseline = torch.from_numpy(baseline_np).to(device)
        with torch.no_grad():
            baseline_uplift = uplift(baseline[None, :])[0].double().cpu().numpy()
        for start in range(0, features.shape[0], _IG_CHUNK):
            x = torch.from_numpy(features[start : start + _IG_CHUNK]).to(device)
            delta = x - baseline
            grad_sum = torch.zeros(x.shape[0], n_treated, x.shape[1], dtype=torch.float64)
            for alpha in alphas:
                point = (baseline + float(alpha) * delta).requires_grad_(True)
                values = uplift(point)
                for k in range(n_treated):
                    # rows are independent in eval mode (no batch statistics),
                    # so the gradient of the row sum is every row's own gradient
                    (grad,) = torch.autograd.grad(
                        values[:, k].sum(), point, retain_graph=k < n_treated - 1
                    )
                    grad_sum[:, k] += grad.double().cpu()
            ig = delta.double().cpu()[:, None, :] * grad_sum / n_steps
            result[start : start + x.shape[0]] = ig.numpy()
    return result, baseline_uplift, baseline_np


# -------------------------------------------------------------- permutation
def _predict_uplift(model: Any, X: Any) -> np.ndarray:
    predict = model if callable(model) and not hasattr(model, "predict") else model.predict
    out = np.asarray(predict(X), dtype=np.float64)
    return out.reshape(out.shape[0], -1)


def _permutation_importance(
    model: Any, X: Any, n_repeats: int, random_state: int | None
) -> tuple[list[str], np.ndarray]:
    """RMS change of the predicted uplift per shuffled original column, ``(K, n_features)``."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    names = [str(c) if isinstance(X, pd.DataFrame) else f"x{c}" for c in frame.columns]
    reference = _predict_uplift(model, X)
    rng = np.random.default_rng(random_state)
    importance = np.zeros((reference.shape[1], frame.shape[1]))
    for j, column in enumerate(frame.columns):
        for _ in range(n_repeats):
            shuffled = frame.copy()
            shuffled[column] = frame[column].to_numpy()[rng.permutation(len(frame))]
            arg = shuffled if isinstance(X, pd.DataFrame) else shuffled.to_numpy()
            change = _predict_uplift(model, arg) - reference
            importance[:, j] += np.sqrt(np.mean(change**2, axis=0)) / n_repeats
    return names, importance


# ------------------------------------------------------------------- global
@dataclass
class UpliftDrivers:
    """Features ranked by how much they move each arm's predicted uplift.

    ``ranking[arm]`` is a list of ``(feature, importance)``, most important
    first. For integrated gradients the importance is the mean over rows of
    ``|contribution|`` (the uplift's units: a conversion-probability change
    for a binary outcome); for permutation it is the RMS change of the
    uplift when the feature is shuffled. ``baseline_uplift[arm]`` is the
    uplift of the baseline row (IG only).
    """

    method: str
    n_rows: int
    ranking: dict[str, list[tuple[str, float]]]
    baseline_uplift: dict[str, float] = field(default_factory=dict)

    def top(self, arm: str, n: int = 5) -> list[str]:
        """Names of the ``n`` most important features for ``arm``."""
        return [name for name, _ in self.ranking[arm][:n]]

    def to_json(self) -> str:
        """JSON text (lists for tuples), for storing next to a model version."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> UpliftDrivers:
        data = json.loads(text)
        data["ranking"] = {
            arm: [(name, float(v)) for name, v in items] for arm, items in data["ranking"].items()
        }
        return cls(**data)


def uplift_drivers(
    estimator: Any,
    X: Any,
    *,
    method: str = "auto",
    background: Any | None = None,
    n_steps: int = 64,
    n_repeats: int = 3,
    arm_names: Sequence[str] | None = None,
    random_state: int | None = 0,
) -> UpliftDrivers:
    """Rank the original features by their effect on each arm's predicted uplift.

    Call it on held-out rows: on training rows a network that memorised noise
    would show that noise as a driver.

    ``method``: ``"integrated_gradients"`` (deep estimators; see the module
    docstring for why it is the default), ``"permutation"`` (anything with
    ``predict(X) -> (n,)`` or ``(n, K)``, or such a callable) or ``"auto"``
    (integrated gradients when the estimator has torch networks).
    """
    if method == "auto":
        method = "integrated_gradients" if hasattr(estimator, "networks_") else "permutation"
    if method == "integrated_gradients":
        attributions, baseline_uplift, _ = integrated_gradients(
            estimator, X, background=background, n_steps=n_steps
        )
        groups = feature_groups(estimator.preprocessor_)
        names = [name for name, _ in groups]
        importance = np.abs(_group_sum(attributions, groups)).mean(axis=0)  # (K, groups)
    elif method == "permutation":
        names, importance = _permutation_importance(estimator, X, n_repeats, random_state)
        baseline_uplift = None
    else:
        raise ValueError(f"method must be 'auto', 'integrated_gradients' or 'permutation': {method!r}")
    arms = _arm_names(importance.shape[0], arm_names)
    ranking = {}
    for k, arm in enumerate(arms):
        order = np.argsort(-importance[k], kind="stable")
        ranking[arm] = [(names[j], float(importance[k, j])) for j in order]
    base = {} if baseline_uplift is None else {a: float(v) for a, v in zip(arms, baseline_uplift, strict=True)}
    return UpliftDrivers(method=method, n_rows=len(X), ranking=ranking, baseline_uplift=base)


# -------------------------------------------------------------------- local
@dataclass(frozen=True)
class Contribution:
    """One feature's push on a customer's uplift: its raw value and signed share."""

    feature: str
    value: Any
    contribution: float


@dataclass
class UpliftExplanation:
    """Why one customer has the uplift they have for one arm.

    ``baseline_uplift + sum(c.contribution for c in contributions) + other``
    equals ``uplift`` (the estimator's ``predict`` for the row) up to the
    integration error; ``other`` sums the features beyond the ``top`` shown.
    """

    row: int
    arm: str
    uplift: float
    baseline_uplift: float
    contributions: list[Contribution]
    other: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _plain(value: Any) -> Any:
    """A JSON-friendly Python scalar (NaN and None become None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value


def explain_customers(
    estimator: Any,
    X: Any,
    *,
    top: int = 5,
    background: Any | None = None,
    n_steps: int = 64,
    arm_names: Sequence[str] | None = None,
    baseline: Any | None = None,
) -> list[list[UpliftExplanation]]:
    """Per row and arm, the ``top`` features pushing the uplift up or down.

    Returns one list per row of ``X`` with one :class:`UpliftExplanation`
    per treated arm; contributions are integrated gradients summed over each
    original feature's input columns, sorted by ``|contribution|``. Pass a
    ``background`` (e.g. a sample of held-out customers) when explaining a
    handful of rows: by default the baseline is the mean of ``X`` itself. Or
    pass the ``baseline`` row stored with the model (:func:`ig_baseline`).
    """
    attributions, baseline_uplift, _ = integrated_gradients(
        estimator, X, background=background, n_steps=n_steps, baseline=baseline
    )
    groups = feature_groups(estimator.preprocessor_)
    grouped = _group_sum(attributions, groups)  # (n, K, n_groups)
    predicted = np.asarray(estimator.predict(X), dtype=np.float64).reshape(grouped.shape[0], -1)
    raw = _raw_frame(X, estimator.preprocessor_)
    arms = _arm_names(grouped.shape[1], arm_names)
    names = [name for name, _ in groups]
    result = []
    for i in range(grouped.shape[0]):
        per_arm = []
        for k, arm in enumerate(arms):
            order = np.argsort(-np.abs(grouped[i, k]), kind="stable")
            shown = order[:top]
            contributions = [
                Contribution(names[j], _plain(raw.iat[i, j]), float(grouped[i, k, j]))
                for j in shown
            ]
            per_arm.append(
                UpliftExplanation(
                    row=i,
                    arm=arm,
                    uplift=float(predicted[i, k]),
                    baseline_uplift=float(baseline_uplift[k]),
                    contributions=contributions,
                    other=float(grouped[i, k, order[top:]].sum()),
                )
            )
        result.append(per_arm)
    return result
