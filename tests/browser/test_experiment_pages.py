"""The experiment's overview, results and segments in Chromium, as each role sees them."""

import pytest

from core.models import TaskRun
from experiments.analysis import experiment_analyse
from experiments.models import AnalysisResult, Experiment
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def analysed(demo):
    experiment = Experiment.objects.get(key="demo_spring")
    experiment_analyse(experiment=experiment)
    return experiment


@pytest.mark.parametrize("username", ["manager", "analyst"])
def test_each_role_reads_the_results_and_the_segments(open_page, analysed, username):
    page = open_page(username)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/admin/experiments/experiment/")
    page.get_by_role("link", name="Results and next step").first.click()
    assert "What to do next" in page.locator("#next-step").inner_text()
    results = page.locator("#results").inner_text()
    for arm in analysed.arms.values_list("name", flat=True):
        assert arm in results
    assert " pp" in results and "+" in results
    page.locator(".plotly-chart .main-svg").first.wait_for()
    page.click("#show-all-segments")
    page.locator("#segments .plotly-chart .main-svg").first.wait_for()
    assert page.locator("#segments .plotly-chart").count() >= 1
    buttons = page.locator("#actions button").all_inner_texts()
    if username == "manager":
        assert "Analyse now" in buttons and "Train now" in buttons
    else:
        assert page.locator("#actions").count() == 0
    screenshot(page, f"experiment-overview-{username}")


def test_analyse_now_shows_progress_until_done_and_links_the_result(manager_page, analysed):
    page = manager_page
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/admin/experiments/experiment/{analysed.id}/overview/")
    page.get_by_role("button", name="Analyse now").click()
    page.locator("#run-result").wait_for(timeout=30_000)
    assert page.locator("#run-status").inner_text() == "done"
    newest = AnalysisResult.objects.filter(experiment=analysed).latest("created_at", "id")
    assert page.locator("#run-result").get_attribute("href").endswith(
        f"/analysisresult/{newest.id}/change/")
    screenshot(page, "experiment-analyse-done")
    page.click("#run-result")
    assert "Results" in page.locator("#results").inner_text()
    screenshot(page, "analysis-result")


def test_forged_posts_by_the_analyst_to_each_new_view_are_refused(analyst_page, analysed):
    page = analyst_page
    page.goto(f"/admin/experiments/experiment/{analysed.id}/overview/")
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    before = TaskRun.objects.count()
    for url in [f"/admin/experiments/experiment/{analysed.id}/run/analyse/",
                f"/admin/experiments/experiment/{analysed.id}/run/train/",
                f"/admin/experiments/experiment/{analysed.id}/transition/stop/"]:
        response = page.request.post(url, form={"csrfmiddlewaretoken": csrf},
                                     headers={"Referer": page.url})
        assert response.status == 403, url
    page.problems.ignore_status(403)
    assert TaskRun.objects.count() == before
    assert Experiment.objects.get(id=analysed.id).status == analysed.status
