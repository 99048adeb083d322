"""A learned segmentation run as a campaign manager sees it, in Chromium: map, profiles, save."""

from datetime import UTC, datetime, timedelta

import pytest

from experiments.demo_behaviour import behaviour_demo_seed
from experiments.models import Experiment
from marketing.models import Segment
from modelling.segmentation import segmentation_run_create, segmentation_run_execute
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser
ANCHOR = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def segmentation(transactional_db, settings, tmp_path):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    settings.PRIVACY_MIN_CELL = 5
    result = behaviour_demo_seed(customers=600, seed=5, anchor=ANCHOR)
    experiment = Experiment.objects.get(id=result.experiment_id)
    created = segmentation_run_create(campaign=experiment.campaign, experiment=experiment,
                                      cutoff=ANCHOR - timedelta(days=90), k_min=3, k_max=4)
    return segmentation_run_execute(created, params={"autoencoder": {"max_epochs": 10},
                                                     "sequence": {"max_epochs": 2}})


def test_the_manager_reads_the_clusters_and_saves_one_as_a_segment(manager_page, segmentation):
    run = segmentation
    assert run.status == "ready", run.status_reason
    page = manager_page
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/admin/modelling/segmentationrun/{run.id}/change/")
    assert page.locator("#embedding-comparison").is_visible()
    # The map: one plotly chart drawn with a point per sampled customer.
    page.locator(".plotly-chart .scatterlayer").first.wait_for()
    assert page.locator(".plotly-chart .scatterlayer .point").count() > 50
    assert page.locator("div[id^=cluster-]").count() == run.k
    screenshot(page, "segmentation-run")
    cluster = page.locator("#cluster-0")
    cluster.locator("input[name=key]").fill("learned_0")
    cluster.locator("input[name=name]").fill("Learned cluster 0")
    cluster.locator("input[type=submit]").click()
    page.wait_for_load_state()
    assert "Saved cluster 0 as the segment" in page.locator(".messagelist").inner_text()
    assert Segment.objects.get(key="learned_0").rule == {"cluster": {"run": run.id, "index": 0}}


def test_an_analyst_reads_the_run_but_has_nothing_to_save(analyst_page, segmentation):
    page = analyst_page
    page.goto(f"/admin/modelling/segmentationrun/{segmentation.id}/change/")
    assert page.locator("div[id^=cluster-]").count() == segmentation.k
    assert page.locator("div[id^=cluster-] input[type=submit]").count() == 0
    assert page.locator("form[id^=save-cluster-]").count() == 0
