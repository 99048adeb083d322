"""``{% plotly_chart figure %}``: draw a core.plots figure with the bundled plotly.js.

The figure goes into the page with ``json_script`` (a ``<script
type="application/json">`` whose ``<``, ``>`` and ``&`` are escaped), so labels
such as a segment named ``</script>`` cannot break out of it. The first chart
of a request also emits the ``<script src>`` for plotly.min.js; later charts
reuse it.
"""

from __future__ import annotations

import itertools

from django import template
from django.templatetags.static import static
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString, mark_safe

from core.staticfiles import PLOTLY_STATIC_PATH

register = template.Library()
_ids = itertools.count(1)
_FLAG = "_plotly_js_included"


def _script_needed(context) -> bool:
    # Per request when there is one (several templates may render charts),
    # else per top-level render.
    holder = getattr(context, "request", None)
    if holder is not None:
        if getattr(holder, _FLAG, False):
            return False
        setattr(holder, _FLAG, True)
        return True
    root = context.render_context.dicts[0]
    if root.get(_FLAG):
        return False
    root[_FLAG] = True
    return True


@register.simple_tag(takes_context=True)
def plotly_js(context) -> SafeString:
    """The ``<script src>`` for plotly.min.js, once per page (no-op afterwards)."""
    if not _script_needed(context):
        return mark_safe("")
    return format_html('<script src="{}"></script>', static(PLOTLY_STATIC_PATH))


@register.simple_tag(takes_context=True)
def plotly_chart(context, figure: dict | None, label: str = "chart") -> SafeString:
    if not figure:
        return mark_safe('<p class="help">No data to plot.</p>')
    n = next(_ids)
    div_id, data_id = f"plotly-chart-{n}", f"plotly-figure-{n}"
    return format_html(
        '{}<div id="{}" class="plotly-chart" role="img" aria-label="{}"></div>{}'
        "<script>(function () {{"
        " var fig = JSON.parse(document.getElementById('{}').textContent);"
        " Plotly.newPlot('{}', fig.data, fig.layout,"
        " {{responsive: true, displaylogo: false}});"
        " }})();</script>",
        plotly_js(context), div_id, label, json_script(figure, data_id), data_id, div_id)
