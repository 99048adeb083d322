"""The ranges every number the platform accepts must lie in.

"A finite number" is not enough: ``1e308`` is finite, and then an arm
weight of 1e308 takes every customer (the other weights vanish beside it),
two conversions of 1.7e308 overflow their sum and make an experiment
unanalysable, and an attribute of 1e308 becomes NaN once a feature is
standardised, so scoring fails. Every door (API serializers, services the
admin calls too) checks numbers against these bounds, which are far beyond
any real value and far below where float64 arithmetic on millions of rows
overflows (1e9 × 10 million rows × squares stays under 1e33).

- AMOUNT_MAX: money for one item (a cost per contact or per conversion, a
  value per conversion, a harm price, an event's or a conversion's value).
- BUDGET_MAX: money for a whole campaign or targeting list.
- WEIGHT_MAX: an arm's weight (weights are relative; 0 closes an arm).
- ATTRIBUTE_NUMBER_MAX: the magnitude of a numeric customer attribute or of
  a number in an event's properties.
- COUNT_MAX: a count a person sets (a cap of guardrail events).
- HYPERPARAMETER_MAX: the magnitude of a number among a model's
  hyperparameters (each estimator checks its own sense further).

Numbers in an event's ``properties`` are stored, never computed with: no
bound beyond the JSON parser's (finite, 64-bit integers).
"""

from __future__ import annotations

import math
from decimal import Decimal

AMOUNT_MAX = 1e9
BUDGET_MAX = 1e12
WEIGHT_MAX = 1e6
ATTRIBUTE_NUMBER_MAX = 1e9
COUNT_MAX = 1e9
HYPERPARAMETER_MAX = 1e6


def number_in_range(value: object, low: float, high: float) -> float | None:
    """``value`` as a float when it is a number (not a bool) in ``[low, high]``, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number) or not low <= number <= high:
        return None
    return number


def range_text(low: float, high: float) -> str:
    """'a number from 0 to 1e+09', for error messages."""
    return f"a number from {low:g} to {high:g}"
