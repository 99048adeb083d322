"""Sufficient statistics per arm, as the database hands them over.

The Django side computes, with one GROUP BY per metric, the sums below; nothing
in this package ever sees a customer row. Every field may be a Python number
or a numpy array of one common shape: an array describes a batch of independent
experiments (the simulation tests run 2,000 experiments through one call).

Sample moments used everywhere (``ddof=1``)::

    mean_y = sum_y / n
    S_yy   = sum_y2 - sum_y**2 / n            (centred sum of squares)
    var_y  = S_yy / (n - 1)
    S_xy   = sum_xy - sum_x * sum_y / n
    cov_xy = S_xy / (n - 1)

Computing ``S_yy`` from raw sums loses digits when the mean is large compared
with the spread; rounding can then push it slightly below zero. Validation
accepts a negative ``S_yy`` down to ``-RELATIVE_TOLERANCE * sum_y2`` and the
moments clip it to zero; anything more negative means the sums are wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Numeric = float | int | FloatArray

# Relative slack for identities that rounding can break (S_yy >= 0,
# Cauchy-Schwarz). Sums of ~1e7 double-precision terms stay well inside it.
RELATIVE_TOLERANCE = 1e-8


class InvalidStatistics(ValueError):
    """Sufficient statistics that no set of customer rows could produce."""


def _as_float(name: str, value: Any) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise InvalidStatistics(f"{name} must be finite, got {value!r}")
    return array


def _check_shapes(*arrays: FloatArray) -> None:
    try:
        np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError as error:
        raise InvalidStatistics("fields have incompatible shapes") from error


def _validate_count(n: Any) -> FloatArray:
    counts = _as_float("n", n)
    if np.any(counts < 0):
        raise InvalidStatistics(f"n must be >= 0, got {n!r}")
    if np.any(counts != np.floor(counts)):
        raise InvalidStatistics(f"n must be a whole number, got {n!r}")
    return counts


def centred_sum_of_products(
    n: Numeric, sum_a: Numeric, sum_b: Numeric, sum_ab: Numeric
) -> FloatArray:
    """``S_ab = sum_ab - sum_a * sum_b / n``, defined as 0 when ``n == 0``."""
    n = np.asarray(n, dtype=np.float64)
    safe_n = np.where(n > 0, n, 1.0)
    return np.where(n > 0, np.asarray(sum_ab) - np.asarray(sum_a) * np.asarray(sum_b) / safe_n, 0.0)


def _check_sum_of_squares(
    name: str, n: FloatArray, total: FloatArray, total_sq: FloatArray
) -> None:
    centred = centred_sum_of_products(n, total, total, total_sq)
    slack = RELATIVE_TOLERANCE * np.maximum(np.abs(total_sq), 1.0)
    if np.any(centred < -slack):
        raise InvalidStatistics(
            f"{name}: sum of squares is smaller than (sum)^2 / n, i.e. a negative variance"
        )


def _check_empty_arm(n: FloatArray, **sums: FloatArray) -> None:
    for name, total in sums.items():
        if np.any((n == 0) & (total != 0)):
            raise InvalidStatistics(f"{name} must be 0 when n == 0")


def _check_cauchy_schwarz(
    name: str, s_aa: FloatArray, s_bb: FloatArray, s_ab: FloatArray, scale: FloatArray
) -> None:
    # |S_ab| <= sqrt(S_aa * S_bb) holds for any real rows; beyond rounding,
    # a violation means the cross sum belongs to other rows.
    bound = np.sqrt(np.clip(s_aa, 0.0, None) * np.clip(s_bb, 0.0, None))
    if np.any(np.abs(s_ab) > bound * (1 + RELATIVE_TOLERANCE) + RELATIVE_TOLERANCE * scale):
        raise InvalidStatistics(f"{name}: cross sum violates Cauchy-Schwarz (|cov| > sd * sd)")


def _ddof1(centred: FloatArray, n: FloatArray) -> FloatArray:
    """``centred / (n - 1)``, NaN where ``n < 2`` (no variance from one row)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n >= 2, np.clip(centred, 0.0, None) / (n - 1), np.nan)


def _mean(total: FloatArray, n: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, total / np.where(n > 0, n, 1.0), np.nan)


def scalar_or_array(value: npt.ArrayLike) -> Numeric:
    """A 0-d result as a Python float (JSON-friendly), a batch as an array."""
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else value


@dataclass(frozen=True)
class ArmStatistics:
    """Sums over the customers of one arm for an outcome ``y``.

    ``y`` is the outcome in the attribution window after assignment (0/1 for a
    proportion metric). The optional ``x`` is the same metric over a window of
    the same length before assignment, for CUPED; give all three of
    ``sum_x``, ``sum_x2``, ``sum_xy`` or none.
    """

    n: Numeric
    sum_y: Numeric
    sum_y2: Numeric
    sum_x: Numeric | None = None
    sum_x2: Numeric | None = None
    sum_xy: Numeric | None = None

    def __post_init__(self) -> None:
        n = _validate_count(self.n)
        sum_y = _as_float("sum_y", self.sum_y)
        sum_y2 = _as_float("sum_y2", self.sum_y2)
        _check_shapes(n, sum_y, sum_y2)
        if np.any(sum_y2 < 0):
            raise InvalidStatistics("sum_y2 must be >= 0")
        _check_empty_arm(n, sum_y=sum_y, sum_y2=sum_y2)
        _check_sum_of_squares("y", n, sum_y, sum_y2)

        covariate = (self.sum_x, self.sum_x2, self.sum_xy)
        if any(v is None for v in covariate) and not all(v is None for v in covariate):
            raise InvalidStatistics("give all of sum_x, sum_x2, sum_xy or none of them")
        if self.sum_x is not None:
            sum_x = _as_float("sum_x", self.sum_x)
            sum_x2 = _as_float("sum_x2", self.sum_x2)
            sum_xy = _as_float("sum_xy", self.sum_xy)
            _check_shapes(n, sum_y, sum_x, sum_x2, sum_xy)
            if np.any(sum_x2 < 0):
                raise InvalidStatistics("sum_x2 must be >= 0")
            _check_empty_arm(n, sum_x=sum_x, sum_x2=sum_x2, sum_xy=sum_xy)
            _check_sum_of_squares("x", n, sum_x, sum_x2)
            _check_cauchy_schwarz(
                "x, y",
                centred_sum_of_products(n, sum_x, sum_x, sum_x2),
                centred_sum_of_products(n, sum_y, sum_y, sum_y2),
                centred_sum_of_products(n, sum_x, sum_y, sum_xy),
                np.sqrt(np.maximum(sum_x2 * sum_y2, 1.0)),
            )

    @classmethod
    def from_values(cls, y: npt.ArrayLike, x: npt.ArrayLike | None = None) -> ArmStatistics:
        """Sums of raw rows; for tests, benchmarks and small in-memory data."""
        y = np.asarray(y, dtype=np.float64)
        if x is None:
            return cls(n=y.size, sum_y=float(y.sum()), sum_y2=float(y @ y))
        x = np.asarray(x, dtype=np.float64)
        if x.shape != y.shape:
            raise InvalidStatistics("x and y must have one value per customer")
        return cls(
            n=y.size,
            sum_y=float(y.sum()),
            sum_y2=float(y @ y),
            sum_x=float(x.sum()),
            sum_x2=float(x @ x),
            sum_xy=float(x @ y),
        )

    @property
    def has_covariate(self) -> bool:
        return self.sum_x is not None

    def check_binary(self) -> None:
        """Raise unless the sums could come from 0/1 outcomes (``y**2 == y``)."""
        sum_y = np.asarray(self.sum_y, dtype=np.float64)
        sum_y2 = np.asarray(self.sum_y2, dtype=np.float64)
        # With sum_y2 == sum_y, the checks of __post_init__ (sum_y2 >= 0 and
        # sum_y2 >= sum_y**2 / n) already force 0 <= sum_y <= n.
        if np.any(np.abs(sum_y - sum_y2) > RELATIVE_TOLERANCE * np.maximum(sum_y, 1.0)):
            raise InvalidStatistics("a proportion metric needs y in {0, 1}, so sum_y2 == sum_y")

    @property
    def mean_y(self) -> Numeric:
        return scalar_or_array(
            _mean(np.asarray(self.sum_y, np.float64), np.asarray(self.n, np.float64))
        )

    @property
    def var_y(self) -> Numeric:
        """Sample variance of y, ``S_yy / (n - 1)``."""
        centred = centred_sum_of_products(self.n, self.sum_y, self.sum_y, self.sum_y2)
        return scalar_or_array(_ddof1(centred, np.asarray(self.n, np.float64)))

    def _require_covariate(self) -> None:
        if not self.has_covariate:
            raise InvalidStatistics("this arm has no pre-period covariate sums")

    @property
    def mean_x(self) -> Numeric:
        self._require_covariate()
        return scalar_or_array(
            _mean(np.asarray(self.sum_x, np.float64), np.asarray(self.n, np.float64))
        )

    @property
    def centred_xx(self) -> Numeric:
        """``S_xx = sum_x2 - sum_x**2 / n``."""
        self._require_covariate()
        return scalar_or_array(centred_sum_of_products(self.n, self.sum_x, self.sum_x, self.sum_x2))

    @property
    def centred_xy(self) -> Numeric:
        """``S_xy = sum_xy - sum_x * sum_y / n``."""
        self._require_covariate()
        return scalar_or_array(centred_sum_of_products(self.n, self.sum_x, self.sum_y, self.sum_xy))

    @property
    def centred_yy(self) -> Numeric:
        """``S_yy = sum_y2 - sum_y**2 / n``."""
        return scalar_or_array(centred_sum_of_products(self.n, self.sum_y, self.sum_y, self.sum_y2))


@dataclass(frozen=True)
class RatioArmStatistics:
    """Sums over the customers of one arm for a ratio metric ``sum(num) / sum(den)``.

    Each customer contributes a numerator (e.g. revenue) and a denominator
    (e.g. visits); the customer, not the visit, is the randomisation unit, so
    the variance comes from the delta method on per-customer sums.
    """

    n: Numeric
    sum_num: Numeric
    sum_den: Numeric
    sum_num2: Numeric
    sum_den2: Numeric
    sum_num_den: Numeric

    def __post_init__(self) -> None:
        n = _validate_count(self.n)
        sum_num = _as_float("sum_num", self.sum_num)
        sum_den = _as_float("sum_den", self.sum_den)
        sum_num2 = _as_float("sum_num2", self.sum_num2)
        sum_den2 = _as_float("sum_den2", self.sum_den2)
        sum_num_den = _as_float("sum_num_den", self.sum_num_den)
        _check_shapes(n, sum_num, sum_den, sum_num2, sum_den2, sum_num_den)
        if np.any(sum_num2 < 0) or np.any(sum_den2 < 0):
            raise InvalidStatistics("sums of squares must be >= 0")
        _check_empty_arm(
            n,
            sum_num=sum_num,
            sum_den=sum_den,
            sum_num2=sum_num2,
            sum_den2=sum_den2,
            sum_num_den=sum_num_den,
        )
        _check_sum_of_squares("numerator", n, sum_num, sum_num2)
        _check_sum_of_squares("denominator", n, sum_den, sum_den2)
        _check_cauchy_schwarz(
            "numerator, denominator",
            centred_sum_of_products(n, sum_num, sum_num, sum_num2),
            centred_sum_of_products(n, sum_den, sum_den, sum_den2),
            centred_sum_of_products(n, sum_num, sum_den, sum_num_den),
            np.sqrt(np.maximum(sum_num2 * sum_den2, 1.0)),
        )

    @classmethod
    def from_values(
        cls, numerator: npt.ArrayLike, denominator: npt.ArrayLike
    ) -> RatioArmStatistics:
        """Sums of raw per-customer rows; for tests, benchmarks and small data."""
        num = np.asarray(numerator, dtype=np.float64)
        den = np.asarray(denominator, dtype=np.float64)
        if num.shape != den.shape:
            raise InvalidStatistics("numerator and denominator need one value per customer")
        return cls(
            n=num.size,
            sum_num=float(num.sum()),
            sum_den=float(den.sum()),
            sum_num2=float(num @ num),
            sum_den2=float(den @ den),
            sum_num_den=float(num @ den),
        )
