"""Charts from core.plots draw with the bundled plotly.js, without console errors."""

import pytest

from core.units import CURRENCY
from tests.browser.conftest import screenshot

TEXTS = "els => els.map(e => e.textContent)"
pytestmark = [pytest.mark.browser, pytest.mark.urls("tests.browser.urls")]


def test_a_page_with_two_plotly_charts_draws_them(manager_page):
    page = manager_page
    page.goto("/test-charts/")
    page.wait_for_selector("#plotly-chart-1 .main-svg, .plotly-chart .main-svg")
    charts = page.locator(".plotly-chart")
    assert charts.count() == 2
    for i in range(2):
        charts.nth(i).locator(".main-svg").first.wait_for()
    # plotly.js is loaded once, from our static files, not a CDN.
    scripts = page.locator("script[src]").evaluate_all("els => els.map(e => e.src)")
    assert [s for s in scripts if "plotly" in s] == [f"{page.url.split('/test-charts')[0]}"
                                                     "/static/plotly/plotly.min.js"]
    # The forest plot has its two rows, one label carrying the escaped "</script>".
    ticks = page.locator(".plotly-chart").nth(1).locator(".ytick text").evaluate_all(TEXTS)
    assert sorted(ticks) == ["old", "young </script>"]
    # Human tick labels: money with a currency prefix.
    yticks = page.locator(".plotly-chart").nth(0).locator(".ytick text").evaluate_all(TEXTS)
    assert yticks and all(t.startswith((CURRENCY, f"−{CURRENCY}", f"-{CURRENCY}"))
                          for t in yticks)
    screenshot(page, "charts")
