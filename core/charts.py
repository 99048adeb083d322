"""Small server-side SVG line charts for the admin (no JavaScript, works offline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLOURS = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280"]


def svg_line_chart(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, x_label: str,
    y_label: str, width: int = 640, height: int = 280, diagonal: bool = False,
) -> SafeString:
    """Lines for each named (xs, ys) series, with axes, zero line and a legend."""
    points = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys, strict=True)
              if x is not None and y is not None]
    if not points:
        return mark_safe("<p>No data to plot.</p>")
    left, right, top, bottom = 60, 16, 16, 40
    x_min, x_max = min(p[0] for p in points), max(p[0] for p in points)
    y_min, y_max = min(0.0, min(p[1] for p in points)), max(0.0, max(p[1] for p in points))
    x_span, y_span = (x_max - x_min) or 1.0, (y_max - y_min) or 1.0

    def sx(x: float) -> float:
        return left + (x - x_min) / x_span * (width - left - right)

    def sy(y: float) -> float:
        return top + (y_max - y) / y_span * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(y_label)} by {escape(x_label)}" '
             f'style="font:11px sans-serif;background:#fff">',
             f'<line x1="{left}" y1="{sy(0):.1f}" x2="{width - right}" y2="{sy(0):.1f}" '
             f'stroke="#999" stroke-dasharray="3,3"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
             f'y2="{height - bottom}" stroke="#333"/>',
             f'<text x="{left}" y="{height - 8}">{x_min:,.4g}</text>',
             f'<text x="{width - right}" y="{height - 8}" text-anchor="end">{x_max:,.4g}</text>',
             f'<text x="{(width + left) / 2:.0f}" y="{height - 8}" text-anchor="middle">'
             f'{escape(x_label)}</text>',
             f'<text x="4" y="{top + 8}">{y_max:,.4g}</text>',
             f'<text x="4" y="{height - bottom}">{y_min:,.4g}</text>',
             f'<text x="4" y="{(top + height - bottom) / 2:.0f}">{escape(y_label)}</text>']
    for i, (name, (xs, ys)) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True)
                        if x is not None and y is not None)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{path}"/>')
        if diagonal and xs:
            parts.append(f'<line x1="{sx(xs[0]):.1f}" y1="{sy(ys[0]):.1f}" '
                         f'x2="{sx(xs[-1]):.1f}" y2="{sy(ys[-1]):.1f}" stroke="{colour}" '
                         f'stroke-dasharray="4,4" opacity="0.6"/>')
        parts.append(f'<text x="{width - right - 4}" y="{top + 14 + 14 * i}" '
                     f'text-anchor="end" fill="{colour}">{escape(name)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
