"""Numbers for people: ``{% load humanize_extra %}`` then ``{{ x|pp }}`` etc.

Rules (a missing or non-finite value shows as an em dash):

- ``pp``: a difference of two proportions, in percentage points, signed,
  1 decimal: 0.02248 -> "+2.2 pp", -0.005 -> "-0.5 pp".
- ``signed_pct``: a relative change, signed percent, 1 decimal:
  0.1234 -> "+12.3%". ``{{ x|signed_pct:0 }}`` for no decimals.
- ``money``: 2 decimals with thousands separators, optional symbol:
  1234.5 -> "1,234.50"; ``{{ x|money:"$" }}`` -> "$1,234.50", -3 -> "-$3.00".
- ``sig3``: counts stay exact, with separators (32031 -> "32,031"); other
  numbers keep 3 significant digits (0.012345 -> "0.0123", 12.345 -> "12.3")
  but never lose integer digits (1234.56 -> "1,235").
- ``pvalue``: "< 0.001" below 0.001, else 3 decimals (0.0456 -> "0.046").
- ``effect``: an effect in its unit (``core.units``), signed: ``{{ x|effect:"pp" }}``
  -> "+2.2 pp", ``{{ x|effect:"money" }}`` -> "+€0.35", ``{{ x|effect:"count" }}``
  -> "-0.0123" (3 significant digits).
- ``more_or_fewer``: a change in a count of events, in words, never with a minus
  sign: ``{{ 3.4|more_or_fewer:"unsubscribes" }}`` -> "3.4 extra unsubscribes",
  -3.4 -> "3.4 fewer unsubscribes", 0 -> "no change in unsubscribes".
"""

from __future__ import annotations

import math
from decimal import Decimal

from django import template

from core.units import CURRENCY

register = template.Library()
MISSING = "—"


def _number(value) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _signed(text: str, negative: bool, zero: bool) -> str:
    if zero:
        return text
    return f"-{text}" if negative else f"+{text}"


@register.filter
def pp(value) -> str:
    f = _number(value)
    if f is None:
        return MISSING
    text = f"{abs(f) * 100:.1f}"
    return f"{_signed(text, f < 0, text == '0.0')} pp"


@register.filter
def signed_pct(value, decimals=1) -> str:
    f = _number(value)
    if f is None:
        return MISSING
    text = f"{abs(f) * 100:.{int(decimals)}f}"
    return f"{_signed(text, f < 0, float(text) == 0)}%"


@register.filter
def money(value, symbol="") -> str:
    f = _number(value)
    if f is None:
        return MISSING
    text = f"{symbol}{abs(f):,.2f}"
    return f"-{text}" if f < 0 and f"{abs(f):.2f}" != "0.00" else text


@register.filter
def sig3(value) -> str:
    if isinstance(value, int | Decimal) and not isinstance(value, bool) and value == int(value):
        return f"{int(value):,}"
    f = _number(value)
    if f is None:
        return MISSING
    if f.is_integer():
        return f"{int(f):,}"
    if abs(f) >= 100:
        return f"{round(f):,}"
    # 3 significant digits: the exponent of the leading digit decides the decimals.
    decimals = max(0, 2 - math.floor(math.log10(abs(f))))
    text = f"{f:,.{decimals}f}"
    # 99.96 rounds up to "100.0": one decimal too many for 3 significant digits.
    if abs(round(f, decimals)) >= 10 ** (3 - decimals) and decimals > 0:
        text = f"{f:,.{decimals - 1}f}"
    return text


@register.filter
def pvalue(value) -> str:
    f = _number(value)
    if f is None:
        return MISSING
    if f < 0.001:
        return "< 0.001"
    return f"{f:.3f}"


@register.filter
def words(value) -> str:
    """A stored code as words: ``keep_running`` -> ``keep running`` (badges, labels)."""
    return MISSING if value is None or value == "" else str(value).replace("_", " ")


@register.filter
def effect(value, unit="count") -> str:
    f = _number(value)
    if f is None:
        return MISSING
    if unit == "pp":
        return pp(f)
    if unit == "money":
        text = money(f, CURRENCY)
        return text if text.startswith("-") or text == money(0.0, CURRENCY) else f"+{text}"
    text = sig3(abs(f))
    return _signed(text, f < 0, text == "0")


@register.filter
def more_or_fewer(value, noun="") -> str:
    f = _number(value)
    if f is None:
        return MISSING
    text = sig3(abs(f))
    if text == "0":
        return f"no change in {noun}".strip()
    return f"{text} {'fewer' if f < 0 else 'extra'} {noun}".strip()
