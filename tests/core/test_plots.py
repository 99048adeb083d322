"""The plotly chart kit: figure dicts with the right numbers, and the template tag."""

import json
import math
import re

import numpy as np
import pytest
from django.contrib.staticfiles import finders
from django.template import Context, Template
from django.test import RequestFactory

from core.plots import ForestRow, forest_plot, interval_bars, line_chart


def test_line_chart_with_a_band_scales_pp_and_turns_nan_into_gaps():
    fig = line_chart(x=np.array([1, 2, 3]), y=[0.01, 0.02, math.nan], lower=[0.0, 0.01, 0.0],
                     upper=[0.02, 0.03, 0.04], x_title="Day", y_title="Effect", y_kind="pp")
    lower, upper, line = fig["data"]
    assert line["y"] == [1.0, 2.0, None]  # percentage points, NaN is a gap
    assert (lower["y"], upper["y"], upper["fill"]) == ([0.0, 1.0, 0.0], [2.0, 3.0, 4.0], "tonexty")
    assert fig["layout"]["yaxis"]["ticksuffix"] == " pp"
    assert fig["layout"]["yaxis"]["title"]["text"] == "Effect"
    json.dumps(fig, allow_nan=False)  # plain JSON: no numpy, no NaN


def test_axis_kinds_have_human_tick_formats():
    fmt = {kind: line_chart(x=[1], y=[1], x_title="x", y_title="y", y_kind=kind)["layout"]["yaxis"]
           for kind in ["count", "percent", "money", "number"]}
    assert fmt["count"]["tickformat"] == ",d"
    assert fmt["percent"]["tickformat"] == ".1~%"
    assert (fmt["money"]["tickprefix"], fmt["money"]["tickformat"]) == ("€", ",.2~f")  # core.units.CURRENCY
    assert fmt["number"]["tickformat"] == ",.3~g"
    with pytest.raises(ValueError, match="unknown axis kind"):
        line_chart(x=[1], y=[1], x_title="x", y_title="y", y_kind="furlongs")


def test_forest_plot_sorts_rows_and_draws_asymmetric_intervals_and_the_second_value():
    rows = [ForestRow("young", 0.03, 0.01, 0.06, second=0.025),
            ForestRow("old", -0.01, -0.02, 0.005, second=None),
            ForestRow("mid", 0.01, 0.0, 0.02, second=0.012)]
    fig = forest_plot(rows, x_title="Uplift")
    observed, model = fig["data"]
    assert observed["y"] == ["old", "mid", "young"]  # sorted by estimate
    assert observed["x"] == pytest.approx([-1.0, 1.0, 3.0])
    assert observed["error_x"]["array"] == pytest.approx([1.5, 1.0, 3.0])       # upper - est
    assert observed["error_x"]["arrayminus"] == pytest.approx([1.0, 1.0, 2.0])  # est - lower
    assert model["x"][0] is None and model["x"][2] == pytest.approx(2.5)
    zero = fig["layout"]["shapes"][0]
    assert (zero["x0"], zero["x1"]) == (0, 0)


def test_interval_bars():
    fig = interval_bars(labels=["email", "coupon"], values=[0.02, 0.05], lower=[0.01, 0.03],
                        upper=[0.04, 0.06], y_title="Effect")
    bar = fig["data"][0]
    assert bar["x"] == ["email", "coupon"] and bar["y"] == pytest.approx([2.0, 5.0])
    assert bar["error_y"]["array"] == pytest.approx([2.0, 1.0])
    assert bar["error_y"]["arrayminus"] == pytest.approx([1.0, 2.0])


def test_plotly_js_is_served_from_the_package():
    path = finders.find("plotly/plotly.min.js")
    assert path and path.endswith("plotly/package_data/plotly.min.js")


def test_the_tag_embeds_the_figure_safely_and_includes_plotly_js_once():
    fig = interval_bars(labels=["</script><b>x"], values=[0.1], y_title="Effect")
    request = RequestFactory().get("/")
    html = Template("{% load plots %}{% plotly_chart a %}{% plotly_chart b %}").render(
        Context({"a": fig, "b": fig, "request": request}))
    assert html.count("plotly/plotly.min.js") == 1
    assert html.count("Plotly.newPlot") == 2
    assert "</script><b>" not in html  # the label stays inside the JSON
    data = re.search(r'<script id="(plotly-figure-\d+)" type="application/json">(.*?)</script>',
                     html).group(2)
    assert json.loads(data)["data"][0]["x"] == ["</script><b>x"]
