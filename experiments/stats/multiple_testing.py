"""Adjusted p-values for families of tests (arms x metrics x segments).

With the ``m`` p-values of a family sorted ascending, ``p_(1) <= ... <= p_(m)``:

* Holm (1979), controls the family-wise error rate under any dependence::

      p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))

* Benjamini & Hochberg (1995), controls the false discovery rate for
  independent or positively dependent tests::

      p~_(i) = min_{j >= i} min(1, m p_(j) / j)

Both match ``statsmodels.stats.multitest.multipletests`` (methods ``"holm"``
and ``"fdr_bh"``). The family runs along ``axis`` (default: the last axis);
other axes index independent families, which lets a simulation adjust
thousands of experiments in one call. NaN p-values (a test that could not be
run) stay NaN and do not count towards ``m``.

The decision family (primary metric x treatment arms) uses Holm because a
"ship" must not be a false positive; exploratory segment cuts use BH.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

CorrectionMethod = Literal["holm", "bh"]


def _prepare(p_values: npt.ArrayLike, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.moveaxis(np.asarray(p_values, dtype=np.float64), axis, -1)
    finite = p[~np.isnan(p)]
    if np.any((finite < 0) | (finite > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(p, axis=-1)  # NaNs sort last
    sorted_p = np.take_along_axis(p, order, axis=-1)
    m = np.sum(~np.isnan(p), axis=-1, keepdims=True)
    return sorted_p, order, m


def _unsort(adjusted_sorted: np.ndarray, order: np.ndarray, axis: int) -> np.ndarray:
    adjusted = np.empty_like(adjusted_sorted)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=-1)
    return np.moveaxis(adjusted, -1, axis)


def holm_adjust(p_values: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """Holm step-down adjusted p-values; formula in the module docstring."""
    sorted_p, order, m = _prepare(p_values, axis)
    rank = np.arange(sorted_p.shape[-1])  # j - 1
    scaled = np.minimum(1.0, (m - rank) * sorted_p)
    # NaNs sit at the end, so they cannot disturb the running maximum before them.
    adjusted = np.maximum.accumulate(np.nan_to_num(scaled, nan=-np.inf), axis=-1)
    adjusted = np.where(np.isnan(sorted_p), np.nan, adjusted)
    return _unsort(adjusted, order, axis)


def benjamini_hochberg_adjust(p_values: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values; formula in the module docstring."""
    sorted_p, order, m = _prepare(p_values, axis)
    rank = np.arange(1, sorted_p.shape[-1] + 1)  # j
    scaled = np.minimum(1.0, m * sorted_p / rank)
    scaled = np.nan_to_num(scaled, nan=np.inf)
    adjusted = np.flip(np.minimum.accumulate(np.flip(scaled, axis=-1), axis=-1), axis=-1)
    adjusted = np.where(np.isnan(sorted_p), np.nan, adjusted)
    return _unsort(adjusted, order, axis)


def adjust_p_values(
    p_values: npt.ArrayLike, method: CorrectionMethod = "holm", axis: int = -1
) -> np.ndarray:
    """Dispatch to :func:`holm_adjust` or :func:`benjamini_hochberg_adjust`."""
    if method == "holm":
        return holm_adjust(p_values, axis=axis)
    if method == "bh":
        return benjamini_hochberg_adjust(p_values, axis=axis)
    raise ValueError(f"unknown correction {method!r}; expected 'holm' or 'bh'")
