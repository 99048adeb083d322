"""Uplift evaluation metrics, with the reference each one reproduces.

Two normalisations are in common use and they do not agree; both are
provided, under the names of the library they match:

* **scikit-uplift** (``sklift.metrics``, v0.5.1): :func:`qini_curve`,
  :func:`uplift_curve`, :func:`qini_auc_score` (the normalised *Qini
  coefficient*), :func:`uplift_auc_score` (normalised AUUC) and
  :func:`uplift_at_k`. Curves are evaluated at the end of each block of tied
  scores, so they do not depend on how ties are ordered.
* **causalml** (``causalml.metrics``, v0.18.0): :func:`cumulative_gain`
  (``get_cumgain``), :func:`cumulative_qini` (``get_qini``),
  :func:`auuc_score` and :func:`qini_score`. causalml evaluates after every
  row, in the order of a non-stable sort, so tied scores are ordered
  arbitrarily there; here ties keep their input order (a stable sort).
  The two agree exactly when the scores are distinct.

Notation: rows sorted by decreasing predicted uplift; among the first ``k``
rows, ``N_t(k)``, ``N_c(k)`` are the numbers of treated and control rows and
``Y_t(k)``, ``Y_c(k)`` the sums of their outcomes. Outcomes may be binary or
continuous except where stated.

For several arms (treatment coded 0 = control, 1..K), :func:`per_arm_scores`
scores arm ``k`` on the rows in arm ``k`` or control, ranked by the
predicted effect of arm ``k``. √PEHE (:func:`sqrt_pehe`) follows Hill (2011)
and Shalit et al. (2017): the root mean squared error of the effect, best
computed against the noiseless effect ``mu1(x) - mu0(x)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "auuc_score",
    "cumulative_gain",
    "cumulative_qini",
    "per_arm_curves",
    "per_arm_scores",
    "perfect_qini_curve",
    "perfect_uplift_curve",
    "qini_auc_score",
    "qini_curve",
    "qini_score",
    "sqrt_pehe",
    "true_gain_auc_score",
    "uplift_at_k",
    "uplift_auc_score",
    "uplift_curve",
]


def _arrays(y_true: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    u = np.asarray(uplift, dtype=np.float64).reshape(-1)
    t = np.asarray(treatment).reshape(-1)
    if not (y.shape == u.shape == t.shape):
        raise ValueError(f"lengths differ: y {y.shape}, uplift {u.shape}, treatment {t.shape}")
    if not np.isin(t, (0, 1)).all():
        raise ValueError("treatment must be 0 (control) or 1 (treated); use per_arm_scores for K arms")
    return y, u, t.astype(np.float64)


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


# ------------------------------------------------------------ sklift family
def _threshold_sums(y: np.ndarray, u: np.ndarray, t: np.ndarray):
    """Cumulative counts and sums at the end of each block of equal scores."""
    order = np.argsort(u, kind="mergesort")[::-1]
    y, u, t = y[order], u[order], t[order]
    ends = np.r_[np.flatnonzero(np.diff(u)), u.size - 1]
    n_all = (ends + 1).astype(np.float64)
    n_t = np.cumsum(t)[ends]
    y_t = np.cumsum(y * t)[ends]
    y_c = np.cumsum(y * (1 - t))[ends]
    return n_all, n_t, n_all - n_t, y_t, y_c


def _start_at_origin(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.size == 0 or v[0] != 0 or x[0] != 0:
        return np.r_[0.0, x], np.r_[0.0, v]
    return x, v


def qini_curve(y_true: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve (Radcliffe 2007) at each distinct score; equals ``sklift.metrics.qini_curve``.

    ``Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)`` (0 where ``N_c(k) = 0``),
    evaluated at the last row of each block of tied scores, with ``(0, 0)``
    prepended. Returns ``(k, Q(k))``.
    """
    y, u, t = _arrays(y_true, uplift, treatment)
    n_all, n_t, n_c, y_t, y_c = _threshold_sums(y, u, t)
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c != 0)
    return _start_at_origin(n_all, y_t - y_c * ratio)


def uplift_curve(y_true: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """Uplift (cumulative gain) curve; equals ``sklift.metrics.uplift_curve``.

    ``U(k) = (Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k`` (a ratio is 0 while its
    group is empty), at the end of each block of tied scores, ``(0, 0)``
    prepended (Gutierrez & Gerardy 2016, sec. 4.1).
    """
    y, u, t = _arrays(y_true, uplift, treatment)
    n_all, n_t, n_c, y_t, y_c = _threshold_sums(y, u, t)
    mean_t = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=n_t != 0)
    mean_c = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=n_c != 0)
    return _start_at_origin(n_all, (mean_t - mean_c) * n_all)


def perfect_qini_curve(
    y_true: Any, treatment: Any, negative_effect: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve of an oracle ranking; equals ``sklift.metrics.perfect_qini_curve``.

    With ``negative_effect`` the oracle ranks treated responders first and
    control responders last (score ``y*t - y*(1-t)``); otherwise the curve
    goes straight up to the overall Qini ``Y_t - Y_c N_t / N_c`` and stays flat.
    """
    y, _, t = _arrays(y_true, np.zeros(np.shape(y_true)), treatment)
    if negative_effect:
        return qini_curve(y, y * t - y * (1 - t), t)
    overall = y[t == 1].sum() - (t == 1).sum() * y[t == 0].sum() / (t == 0).sum()
    return np.array([0.0, overall, y.size]), np.array([0.0, overall, overall])


def perfect_uplift_curve(y_true: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve of an oracle ranking; equals ``sklift.metrics.perfect_uplift_curve``.

    Binary outcomes only: treated responders and control non-responders
    first, then whichever of control responders / treated non-responders is
    the larger group first (sklift's construction).
    """
    y, _, t = _arrays(y_true, np.zeros(np.shape(y_true)), treatment)
    _require_binary(y)
    control_responders = np.sum((y == 1) & (t == 0))
    treated_non_responders = np.sum((y == 0) & (t == 1))
    summand = y if control_responders > treated_non_responders else t
    return uplift_curve(y, 2 * (y == t) + summand, t)


def _require_binary(y: np.ndarray) -> None:
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("this metric is defined for binary outcomes only")


def qini_auc_score(y_true: Any, uplift: Any, treatment: Any, negative_effect: bool = True) -> float:
    """Normalised Qini coefficient; equals ``sklift.metrics.qini_auc_score``.

    ``(A_model - A_random) / (A_perfect - A_random)``, each ``A`` the
    trapezoidal area under a Qini curve, the random curve being the straight
    line from ``(0, 0)`` to the end of the perfect curve. 1 is the oracle,
    0 random ranking; negative is worse than random. Our definition also
    accepts continuous outcomes (sklift refuses them).
    """
    y, u, t = _arrays(y_true, uplift, treatment)
    x_model, q_model = qini_curve(y, u, t)
    x_best, q_best = perfect_qini_curve(y, t, negative_effect)
    random_area = _trapezoid(np.array([0.0, x_best[-1]]), np.array([0.0, q_best[-1]]))
    return (_trapezoid(x_model, q_model) - random_area) / (
        _trapezoid(x_best, q_best) - random_area
    )


def uplift_auc_score(y_true: Any, uplift: Any, treatment: Any) -> float:
    """Normalised area under the uplift curve; equals ``sklift.metrics.uplift_auc_score``.

    ``(A_model - A_random) / (A_perfect - A_random)`` with the areas under
    :func:`uplift_curve`, :func:`perfect_uplift_curve` and the straight line.
    Binary outcomes only (the oracle curve is built for 0/1 outcomes).
    """
    y, u, t = _arrays(y_true, uplift, treatment)
    _require_binary(y)
    x_model, v_model = uplift_curve(y, u, t)
    x_best, v_best = perfect_uplift_curve(y, t)
    random_area = _trapezoid(np.array([0.0, x_best[-1]]), np.array([0.0, v_best[-1]]))
    return (_trapezoid(x_model, v_model) - random_area) / (
        _trapezoid(x_best, v_best) - random_area
    )


def uplift_at_k(
    y_true: Any, uplift: Any, treatment: Any, k: float | int = 0.3, strategy: str = "overall"
) -> float:
    """Uplift among the top-``k`` scored rows; equals ``sklift.metrics.uplift_at_k``.

    ``k`` is a share in (0, 1) or a row count. ``"overall"``: the top ``k``
    rows of the whole sample, then treated mean minus control mean among
    them. ``"by_group"``: the top ``k`` share (or count) of the treated and,
    separately, of the control rows. Ties are ordered as sklift does
    (reverse of a stable ascending sort), so the cut is the same.
    """
    y, u, t = _arrays(y_true, uplift, treatment)
    n = y.size
    integer_k = isinstance(k, (int, np.integer)) and not isinstance(k, bool)
    if integer_k and not 0 < k < n or not integer_k and not 0 < k < 1:
        raise ValueError(f"k={k} must be a share in (0, 1) or a count in (0, {n})")
    order = np.argsort(u, kind="mergesort")[::-1]
    y_sorted, t_sorted = y[order], t[order]
    if strategy == "overall":
        size = k if integer_k else int(n * k)
        top_y, top_t = y_sorted[:size], t_sorted[:size]
        return float(top_y[top_t == 1].mean() - top_y[top_t == 0].mean())
    if strategy == "by_group":
        n_c = k if integer_k else int((t == 0).sum() * k)
        n_t = k if integer_k else int((t == 1).sum() * k)
        return float(y_sorted[t_sorted == 1][:n_t].mean() - y_sorted[t_sorted == 0][:n_c].mean())
    raise ValueError(f"strategy must be 'overall' or 'by_group', got {strategy!r}")


# ---------------------------------------------------------- causalml family
def _cumulative_lift(
    y: np.ndarray, u: np.ndarray, t: np.ndarray, tau: np.ndarray | None
) -> np.ndarray:
    """causalml's ``get_cumlift`` for one model: ``n + 1`` points, point 0 = 0.

    Points where one group is still empty are linearly interpolated from the
    neighbours, as causalml's ``DataFrame.interpolate`` does.
    """
    order = np.argsort(-u, kind="stable")
    k = np.arange(1, u.size + 1, dtype=np.float64)
    if tau is not None:
        lift = np.cumsum(tau[order]) / k
    else:
        y, t = y[order], t[order]
        n_t = np.cumsum(t)
        n_c = k - n_t
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = np.cumsum(y * t) / n_t - np.cumsum(y * (1 - t)) / n_c
    lift = np.r_[0.0, lift]
    missing = ~np.isfinite(lift)
    if missing.any():
        index = np.arange(lift.size)
        lift[missing] = np.interp(index[missing], index[~missing], lift[~missing])
    return lift


def cumulative_gain(
    y_true: Any,
    uplift: Any,
    treatment: Any,
    tau: Any | None = None,
    normalize: bool = False,
) -> np.ndarray:
    """Cumulative gain after each row; equals ``causalml.metrics.get_cumgain``.

    ``G(k) = k * (Y_t(k) / N_t(k) - Y_c(k) / N_c(k))`` for ``k = 0..n``
    (Gutierrez & Gerardy 2016); with the true effects ``tau`` given,
    ``G(k) = sum of tau over the first k rows``. ``normalize`` divides by
    ``|G(n)|``. Returns ``n + 1`` values.
    """
    y, u, t = _arrays(y_true, uplift, treatment)
    tau_arr = None if tau is None else np.asarray(tau, dtype=np.float64).reshape(-1)
    lift = _cumulative_lift(y, u, t, tau_arr)
    gain = lift * np.arange(lift.size)
    return gain / abs(gain[-1]) if normalize else gain


def cumulative_qini(
    y_true: Any,
    uplift: Any,
    treatment: Any,
    tau: Any | None = None,
    normalize: bool = False,
) -> np.ndarray:
    """Qini after each row; equals ``causalml.metrics.get_qini``.

    ``Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)`` for ``k = 0..n``
    (Radcliffe 2007); with true effects, ``Q(k) = N_t(k) * mean of tau over
    the first k rows``. Leading points where a group is empty are
    interpolated between 0 and the first defined value.
    """
    y, u, t = _arrays(y_true, uplift, treatment)
    order = np.argsort(-u, kind="stable")
    k = np.arange(1, u.size + 1, dtype=np.float64)
    n_t = np.cumsum(t[order])
    if tau is not None:
        tau_sorted = np.asarray(tau, dtype=np.float64).reshape(-1)[order]
        qini = np.cumsum(tau_sorted) / k * n_t
    else:
        y_s, t_s = y[order], t[order]
        with np.errstate(divide="ignore", invalid="ignore"):
            qini = np.cumsum(y_s * t_s) - np.cumsum(y_s * (1 - t_s)) * n_t / (k - n_t)
    qini = np.r_[0.0, qini]
    missing = ~np.isfinite(qini)
    if missing.any():
        index = np.arange(qini.size)
        qini[missing] = np.interp(index[missing], index[~missing], qini[~missing])
    return qini / abs(qini[-1]) if normalize else qini


def auuc_score(
    y_true: Any, uplift: Any, treatment: Any, tau: Any | None = None, normalize: bool = True
) -> float:
    """Area under the cumulative gain curve; equals ``causalml.metrics.auuc_score``.

    ``AUUC = mean over k = 0..n of G(k)`` with ``G`` from
    :func:`cumulative_gain` (normalised by ``|G(n)|`` by default). A random
    ranking scores about 0.5 when normalised.
    """
    return float(np.mean(cumulative_gain(y_true, uplift, treatment, tau, normalize)))


def qini_score(
    y_true: Any, uplift: Any, treatment: Any, tau: Any | None = None, normalize: bool = True
) -> float:
    """Area between the Qini curve and the random line; equals ``causalml.metrics.qini_score``.

    ``mean over k = 0..n of (Q(k) - Q(n) * k / n)`` with ``Q`` from
    :func:`cumulative_qini` (normalised by ``|Q(n)|`` by default).
    """
    qini = cumulative_qini(y_true, uplift, treatment, tau, normalize)
    random_line = np.linspace(qini[0], qini[-1], qini.size)
    return float((qini.sum() - random_line.sum()) / qini.size)


# ------------------------------------------------------------- truth known
def sqrt_pehe(tau_true: Any, tau_pred: Any) -> float:
    """√PEHE = ``sqrt(mean((tau_hat(x) - tau(x))^2))`` (Hill 2011).

    For several arms (shape ``(n, K)``) the mean runs over rows and arms.
    """
    true = np.asarray(tau_true, dtype=np.float64)
    pred = np.asarray(tau_pred, dtype=np.float64)
    if true.shape != pred.shape:
        raise ValueError(f"shapes differ: {true.shape} vs {pred.shape}")
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def true_gain_auc_score(tau_true: Any, uplift: Any) -> float:
    """Normalised area under the cumulative *true* effect curve (effects known).

    Rank rows by predicted ``uplift``; ``G(k)`` = sum of the true effects of
    the first ``k`` rows, evaluated at the end of each block of tied scores
    (as in :func:`uplift_curve`). With trapezoidal areas ``A``::

        (A_model - A_random) / (A_oracle - A_random)

    where the random ranking is the straight line to ``G(n)`` and the oracle
    ranks by the true effect. 1 is a perfect ranking, 0 a random one. This is
    the Qini coefficient's normalisation applied to the noiseless curve of
    Gutierrez & Gerardy (2016) / causalml's ``get_cumgain`` with a
    ``treatment_effect_col``: on simulated or semi-synthetic data it scores
    the ranking without the outcome noise and, on observational data such as
    IHDP, without the confounding bias of observed-outcome curves.
    """
    tau = np.asarray(tau_true, dtype=np.float64).reshape(-1)
    u = np.asarray(uplift, dtype=np.float64).reshape(-1)
    if tau.shape != u.shape:
        raise ValueError(f"shapes differ: {tau.shape} vs {u.shape}")

    def area(score: np.ndarray) -> float:
        order = np.argsort(score, kind="mergesort")[::-1]
        ends = np.r_[np.flatnonzero(np.diff(score[order])), score.size - 1]
        x, g = _start_at_origin((ends + 1).astype(np.float64), np.cumsum(tau[order])[ends])
        return _trapezoid(x, g)

    random_area = tau.sum() * tau.size / 2.0
    return (area(u) - random_area) / (area(tau) - random_area)


# --------------------------------------------------------------- multi-arm
def _per_arm(metric: Callable[..., Any], y_true: Any, uplift: Any, treatment: Any, **kwargs: Any):
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    u = np.asarray(uplift, dtype=np.float64)
    u = u.reshape(-1, 1) if u.ndim == 1 else u
    t = np.asarray(treatment).reshape(-1).astype(np.int64)
    if u.shape[0] != t.shape[0]:
        raise ValueError("uplift and treatment have different numbers of rows")
    results = {}
    for arm in range(1, u.shape[1] + 1):
        rows = (t == 0) | (t == arm)
        results[arm] = metric(y[rows], u[rows, arm - 1], (t[rows] == arm).astype(int), **kwargs)
    return results


def per_arm_scores(
    metric: Callable[..., float],
    y_true: Any,
    uplift: Any,
    treatment: Any,
    **kwargs: Any,
) -> dict[int, float]:
    """Score every treated arm against control with a two-group ``metric``.

    ``uplift`` has shape ``(n,)`` (one arm) or ``(n, K)``; arm ``k`` is
    scored on the rows with ``treatment in {0, k}`` using column ``k - 1``.
    Returns ``{k: score}``; the mean over arms is a one-number summary.
    """
    return {
        arm: float(value)
        for arm, value in _per_arm(metric, y_true, uplift, treatment, **kwargs).items()
    }


def per_arm_curves(
    curve: Callable[..., tuple[np.ndarray, np.ndarray]],
    y_true: Any,
    uplift: Any,
    treatment: Any,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per-arm curves (e.g. :func:`qini_curve`), arm ``k`` against control as in
    :func:`per_arm_scores`. Returns ``{k: (x, y)}``."""
    return _per_arm(curve, y_true, uplift, treatment)
