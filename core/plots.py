"""Chart figures for the admin, built with plotly and drawn by plotly.js.

Each function returns a plotly figure as a plain dict (``{"data", "layout"}``)
that ``{% plotly_chart figure %}`` (core.templatetags.plots) embeds safely.
Values are converted to plain floats (numpy scalars and arrays included) and
NaN/inf become gaps (None), because JSON has no NaN and ``JSON.parse`` would
reject the page's data.

Axis ``kind`` picks a human tick format (d3-format, read by plotly.js):

- ``"number"``: thousands separators, at most 3 significant digits (32,000)
- ``"count"``: whole numbers with separators (32,031)
- ``"percent"``: a proportion shown as a percentage (0.125 -> 12.5%)
- ``"pp"``: a difference of proportions in percentage points (0.022 -> +2.2 pp)
- ``"money"``: currency with separators (``currency`` symbol as prefix)
- ``"date"``: ISO date-time strings on a date axis (``line_chart``'s x only)
- ``"category"``: labels as given (``line_chart``'s x only)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from core.units import CURRENCY

BLUE, ORANGE, GREY = "#2b6cb0", "#c05621", "#718096"
BAND = "rgba(43,108,176,0.18)"


@dataclass(frozen=True)
class _Axis:
    scale: float  # data are multiplied by this before plotting (pp: x100)
    layout: dict
    hover: str  # d3 format for hover labels


def _axis(kind: str, title: str, currency: str = CURRENCY) -> _Axis:
    if kind == "number":
        return _Axis(1.0, {"tickformat": ",.3~g"}, ",.3~g")
    if kind == "category":
        return _Axis(1.0, {"type": "category"}, "")
    if kind == "date":  # ISO date-time strings
        return _Axis(1.0, {"type": "date", "tickformat": "%d %b %Y"}, "%d %b %Y %H:%M")
    if kind == "count":
        return _Axis(1.0, {"tickformat": ",d"}, ",d")
    if kind == "percent":
        return _Axis(1.0, {"tickformat": ".1~%"}, ".1%")
    if kind == "pp":
        return _Axis(100.0, {"tickformat": "+.1~f", "ticksuffix": " pp"}, "+.1f")
    if kind == "money":
        return _Axis(1.0, {"tickformat": ",.2~f", "tickprefix": currency}, ",.2f")
    raise ValueError(f"unknown axis kind {kind!r} (number, count, percent, pp, money)")


def _clean(values: Sequence | None, scale: float = 1.0) -> list[float | None] | None:
    if values is None:
        return None
    out = []
    for v in values:
        f = None if v is None else float(v)
        out.append(f * scale if f is not None and math.isfinite(f) else None)
    return out


def _labels(values: Sequence) -> list:
    return [v if isinstance(v, int | float | str) or v is None else str(v) for v in values]


def _layout(*, height: int, x: dict, y: dict, **extra) -> dict:
    base = dict(automargin=True, zeroline=False, showgrid=True, gridcolor="#edf2f7")
    return dict(
        template="none", height=height, margin=dict(l=70, r=20, t=20, b=50),
        font=dict(family="system-ui, sans-serif", size=12), hovermode="closest",
        xaxis={**base, **x}, yaxis={**base, **y},
        legend=dict(orientation="h", y=-0.2), **extra)


def _to_dict(fig: go.Figure) -> dict:
    return fig.to_plotly_json()


def line_chart(
    *, x: Sequence, y: Sequence, lower: Sequence | None = None, upper: Sequence | None = None,
    x_title: str, y_title: str, x_kind: str = "number", y_kind: str = "number",
    name: str = "", band_name: str = "95% interval", currency: str = CURRENCY, height: int = 320,
) -> dict:
    """A line of ``y`` against ``x``, with a shaded ``lower``..``upper`` band when given."""
    xa, ya = _axis(x_kind, x_title, currency), _axis(y_kind, y_title, currency)
    xs = _labels(x) if x_kind in ("category", "date") else _clean(x, xa.scale)
    traces = []
    if (lower is None) != (upper is None):
        raise ValueError("give both lower and upper, or neither")
    if lower is not None:
        # The band is the area between two invisible lines (fill="tonexty").
        traces.append(go.Scatter(x=xs, y=_clean(lower, ya.scale), mode="lines",
                                 line=dict(width=0), hoverinfo="skip", showlegend=False))
        traces.append(go.Scatter(x=xs, y=_clean(upper, ya.scale), mode="lines",
                                 line=dict(width=0), fill="tonexty", fillcolor=BAND,
                                 name=band_name, hoverinfo="skip"))
    traces.append(go.Scatter(
        x=xs, y=_clean(y, ya.scale), mode="lines", name=name or y_title,
        line=dict(color=BLUE, width=2),
        hovertemplate=f"{x_title}: %{{x:{xa.hover}}}<br>{y_title}: "
                      f"{ya.layout.get('tickprefix', '')}%{{y:{ya.hover}}}"
                      f"{ya.layout.get('ticksuffix', '')}<extra></extra>"))
    layout = _layout(height=height, x=dict(title=dict(text=x_title), **xa.layout),
                     y=dict(title=dict(text=y_title), **ya.layout),
                     showlegend=lower is not None)
    return _to_dict(go.Figure(traces, layout))


@dataclass(frozen=True)
class ForestRow:
    """One row of a forest plot: an estimate, its interval, and an optional second value
    (e.g. the model's predicted uplift beside the observed effect)."""

    label: str
    estimate: float
    lower: float
    upper: float
    second: float | None = None


def forest_plot(
    rows: Sequence[ForestRow], *, x_title: str, x_kind: str = "pp",
    estimate_name: str = "Observed effect (95% interval)", second_name: str = "Model's uplift",
    sort: bool = True, currency: str = CURRENCY,
) -> dict:
    """Horizontal intervals per row, sorted by estimate (largest on top), with a zero line.

    Error bars are the distances ``upper - estimate`` and ``estimate - lower``.
    """
    ax = _axis(x_kind, x_title, currency)
    ordered = sorted(rows, key=lambda r: r.estimate) if sort else list(rows)
    labels = [r.label for r in ordered]
    est = _clean([r.estimate for r in ordered], ax.scale)
    lo = _clean([r.lower for r in ordered], ax.scale)
    hi = _clean([r.upper for r in ordered], ax.scale)
    plus = [None if h is None or e is None else h - e for e, h in zip(est, hi, strict=True)]
    minus = [None if lw is None or e is None else e - lw for e, lw in zip(est, lo, strict=True)]
    fmt = f"{ax.layout.get('tickprefix', '')}%{{x:{ax.hover}}}{ax.layout.get('ticksuffix', '')}"
    traces = [go.Scatter(
        x=est, y=labels, mode="markers", name=estimate_name,
        marker=dict(color=BLUE, size=9),
        error_x=dict(type="data", symmetric=False, array=plus, arrayminus=minus,
                     color=BLUE, thickness=2, width=4),
        customdata=list(zip(lo, hi, strict=True)),
        hovertemplate=f"%{{y}}: {fmt} [%{{customdata[0]:{ax.hover}}}, "
                      f"%{{customdata[1]:{ax.hover}}}]<extra></extra>")]
    if any(r.second is not None for r in ordered):
        traces.append(go.Scatter(
            x=_clean([r.second for r in ordered], ax.scale), y=labels, mode="markers",
            name=second_name, marker=dict(color=ORANGE, size=10, symbol="diamond-open",
                                          line=dict(width=2)),
            hovertemplate=f"%{{y}}: {fmt}<extra>{second_name}</extra>"))
    layout = _layout(
        height=max(180, 60 + 32 * len(ordered)),
        x=dict(title=dict(text=x_title), **ax.layout),
        y=dict(type="category", automargin=True),
        shapes=[dict(type="line", xref="x", yref="paper", x0=0, x1=0, y0=0, y1=1,
                     line=dict(color=GREY, width=1, dash="dash"))],
        showlegend=True)
    return _to_dict(go.Figure(traces, layout))


def interval_bars(
    *, labels: Sequence[str], values: Sequence[float], lower: Sequence[float] | None = None,
    upper: Sequence[float] | None = None, y_title: str, y_kind: str = "pp",
    name: str = "", currency: str = CURRENCY, height: int = 320,
) -> dict:
    """Bars (one per label) with optional interval whiskers, e.g. each arm's effect."""
    ax = _axis(y_kind, y_title, currency)
    vals = _clean(values, ax.scale)
    error_y = None
    if (lower is None) != (upper is None):
        raise ValueError("give both lower and upper, or neither")
    if lower is not None:
        lo, hi = _clean(lower, ax.scale), _clean(upper, ax.scale)
        error_y = dict(
            type="data", symmetric=False, color="#2d3748", thickness=1.5, width=6,
            array=[None if h is None or v is None else h - v for v, h in zip(vals, hi, strict=True)],
            arrayminus=[None if lw is None or v is None else v - lw
                        for v, lw in zip(vals, lo, strict=True)])
    trace = go.Bar(
        x=[str(lbl) for lbl in labels], y=vals, name=name or y_title, marker_color=BLUE,
        error_y=error_y,
        hovertemplate=f"%{{x}}: {ax.layout.get('tickprefix', '')}%{{y:{ax.hover}}}"
                      f"{ax.layout.get('ticksuffix', '')}<extra></extra>")
    layout = _layout(height=height, x=dict(type="category"),
                     y=dict(title=dict(text=y_title), zeroline=True, zerolinecolor=GREY,
                            **ax.layout),
                     showlegend=False)
    return _to_dict(go.Figure([trace], layout))


def cluster_map(*, x: Sequence, y: Sequence, cluster: Sequence[int], names: dict | None = None,
                x_title: str = "first component", y_title: str = "second component",
                height: int = 460) -> dict:
    """A scatter of points coloured by cluster (one trace each, so the legend names them).

    SVG, not WebGL: the map holds a sample (at most a few thousand points),
    which SVG draws at once in any browser, including ones without a GPU.
    """
    names = names or {}
    traces = []
    for k in sorted(set(int(c) for c in cluster)):
        keep = [i for i, c in enumerate(cluster) if int(c) == k]
        traces.append(go.Scatter(
            x=_clean([x[i] for i in keep]), y=_clean([y[i] for i in keep]), mode="markers",
            name=str(names.get(k, f"cluster {k}")), marker=dict(size=5, opacity=0.65),
            hovertemplate=f"{names.get(k, f'cluster {k}')}<extra></extra>"))
    layout = _layout(height=height, x=dict(title=dict(text=x_title), tickformat=",.2~f"),
                     y=dict(title=dict(text=y_title), tickformat=",.2~f"), showlegend=True)
    return _to_dict(go.Figure(traces, layout))
