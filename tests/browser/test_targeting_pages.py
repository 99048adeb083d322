"""Building a target list, reading it and downloading it; the customer page, in Chromium."""

from datetime import UTC, datetime

import pytest

from experiments.analysis import experiment_analyse
from experiments.models import Experiment
from marketing.models import Customer
from modelling.models import CustomerScore, ModelVersion, TargetingFollowUp, TargetingList
from modelling.scoring import score_chunk, score_plan
from modelling.targeting import targeting_list_create
from modelling.training import uplift_model_train
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def scored(demo):
    """The demo analysed, a small TARNet trained (the champion) and every customer scored."""
    experiment = Experiment.objects.get(key="demo_spring")
    experiment_analyse(experiment=experiment)
    (version,) = uplift_model_train(experiment=experiment, estimators=["tarnet"], baselines=[],
                                    estimator_params={"tarnet": {"max_epochs": 3}})
    for chunk in score_plan(chunk_size=1_000):
        score_chunk(version=version, chunk=chunk, cutoff=datetime(2026, 10, 1, tzinfo=UTC))
    return experiment, ModelVersion.objects.get(pk=version.pk)


def test_the_manager_builds_reads_and_downloads_a_target_list(manager_page, scored):
    experiment, version = scored
    page = manager_page
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/admin/experiments/experiment/{experiment.id}/overview/")
    decision = experiment.analyses.latest("created_at", "id").decision
    assert page.locator("p.decision .badge").inner_text() == decision.replace("_", " ")
    assert page.locator("td.num").first.evaluate("e => getComputedStyle(e).whiteSpace") \
        == "nowrap"
    page.click("#build-target-list")
    page.wait_for_url(f"**/modelversion/{version.id}/target/")
    assert page.locator("#id_budget").is_visible()
    assert page.locator("[id^=id_cost_]").count() == version.experiment.arms.count() - 1
    page.fill("#id_budget", "20")
    screenshot(page, "targeting-form")
    page.click("#build-list")
    # The POST only queues the build and shows its progress (eager here: done at once).
    page.wait_for_url(f"**/modelversion/{version.id}/target/run/*/")
    page.locator("#run-result").wait_for(timeout=30_000)
    assert page.locator("#run-status").inner_text() == "done"
    target = TargetingList.objects.get()
    assert page.locator("#run-result").get_attribute("href").endswith(
        f"/targetinglist/{target.id}/change/")
    screenshot(page, "targeting-progress")
    page.click("#run-result")
    page.wait_for_url("**/targetinglist/*/change/")
    assert target.parameters["budget"] == 20.0 and target.size > 0
    glance = page.locator("#at-a-glance").inner_text()
    assert f"Contact {target.size:,} customers" in glance
    assert "The model expects €" in glance
    if target.evaluation.get("available"):
        assert "never saw, the policy earned" in glance and "(95%: " in glance
        table = page.locator("#comparison").inner_text()
        for label in ["This list's policy", "Random", "Response model", "No one"]:
            assert label in table
        page.locator("#profit-curve .plotly-chart .main-svg").first.wait_for()
    else:
        pytest.fail(f"the list has no held-out evaluation: {target.evaluation}")
    screenshot(page, "targeting-list")
    with page.expect_download() as download_info:
        page.click("#csv-download")
    lines = open(download_info.value.path(), encoding="utf-8").read().strip().splitlines()
    assert lines[0].startswith("rank,customer_external_id,arm,predicted_uplift,expected_profit")
    assert len(lines) == target.size + 1
    # The follow-up experiment from the list's page (its form sits outside the admin's).
    page.click("#follow-up")
    page.wait_for_load_state()
    assert TargetingFollowUp.objects.filter(targeting_list=target).exists(), \
        page.locator(".messagelist").inner_text()


def test_the_analyst_cannot_build_or_download(analyst_page, scored):
    _, version = scored
    page = analyst_page
    page.goto(f"/admin/modelling/modelversion/{version.id}/target/")
    assert page.locator("#read-only-note").is_visible()
    assert page.locator("#build-list").count() == 0
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(f"/admin/modelling/modelversion/{version.id}/target/",
                                 form={"csrfmiddlewaretoken": csrf, "budget": "20"},
                                 headers={"Referer": page.url})
    assert response.status == 403
    page.problems.ignore_status(403)
    assert not TargetingList.objects.exists()
    target = targeting_list_create(campaign=version.campaign, model_version=version,
                                   evaluate=False)
    page.goto(f"/admin/modelling/targetinglist/{target.id}/change/")
    assert f"Contact {target.size:,} customers" in page.locator("#at-a-glance").inner_text()
    assert page.locator("#csv-download").count() == 0
    page.goto("/admin/modelling/targetinglist/")
    assert page.get_by_role("link", name="CSV").count() == 0


def test_the_customer_page_shows_attributes_events_assignments_and_the_explanation(
        manager_page, scored):
    _, version = scored
    customer = Customer.objects.filter(
        id__in=CustomerScore.objects.filter(model_version=version).values("customer_id"),
        events__isnull=False, erased_at__isnull=True).order_by("id").first()
    page = manager_page
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/admin/marketing/customer/{customer.id}/change/")
    attributes = page.locator("#customer-attributes").inner_text()
    key = sorted(customer.attributes)[0]
    assert key.replace("_", " ") in attributes
    assert page.locator("#customer-events tbody tr").count() == min(
        20, customer.events.count())
    assert "Spring reactivation" in page.locator("#customer-assignments").inner_text()
    assert "pp" in page.locator("#customer-scores").inner_text()
    assert "Why the model chooses this" in page.locator("#customer-explanation").inner_text()
    assert not page.locator("#customer-edit").evaluate("e => e.open")
    screenshot(page, "customer")
