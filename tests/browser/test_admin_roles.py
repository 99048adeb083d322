"""The two roles in a real browser: what each sees, and what the Analyst cannot do."""

import pytest

from core.models import TaskRun
from experiments.models import AnalysisResult, Experiment
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("username", ["manager", "analyst"])
def test_each_role_logs_in_and_sees_the_admin_index(open_page, demo, username):
    page = open_page(username)
    assert page.locator("#site-name").inner_text() == "Django administration"
    assert page.get_by_role("link", name="Experiments").count() >= 1
    path = screenshot(page, f"admin-index-{username}")
    assert path.stat().st_size > 10_000


def test_the_analyst_sees_no_actions_and_no_add_link_on_experiments(analyst_page, manager_page,
                                                                      demo):
    analyst_page.goto("/admin/experiments/experiment/")
    assert analyst_page.get_by_text("demo_spring").count() >= 1
    assert analyst_page.locator("select[name=action]").count() == 0
    assert analyst_page.locator("a.addlink").count() == 0  # nor in the side navigation
    screenshot(analyst_page, "experiments-analyst")
    # The same page for a Campaign manager has both (so the checks above can fail).
    manager_page.goto("/admin/experiments/experiment/")
    options = manager_page.locator("select[name=action] option").all_inner_texts()
    assert "Analyse now (background task)" in options
    assert manager_page.locator(".object-tools a.addlink").count() == 1
    screenshot(manager_page, "experiments-manager")


def test_a_forged_action_post_by_the_analyst_changes_nothing(analyst_page, demo):
    experiment = Experiment.objects.get(key="demo_spring")
    before = (TaskRun.objects.count(), AnalysisResult.objects.count())
    analyst_page.goto("/admin/experiments/experiment/")
    csrf = next(c["value"] for c in analyst_page.context.cookies() if c["name"] == "csrftoken")
    response = analyst_page.request.post(
        "/admin/experiments/experiment/",
        form={"csrfmiddlewaretoken": csrf, "action": "analyse", "index": "0",
              "_selected_action": str(experiment.id)},
        headers={"Referer": analyst_page.url})
    assert response.status in (200, 302, 403)
    assert (TaskRun.objects.count(), AnalysisResult.objects.count()) == before == (0, 0)
