"""The segmentation run's admin page: map, profiles, and Save as segment by role."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from core.groups import ANALYST, CAMPAIGN_MANAGER
from core.templatetags.humanize_extra import pp
from marketing.models import Campaign, ClusterMembership, Segment
from modelling.models import SegmentationRun, SegmentCluster
from tests.factories import customer_make

pytestmark = pytest.mark.django_db
AT = datetime(2026, 10, 1, tzinfo=UTC)


def _login(group: str) -> Client:
    user = get_user_model().objects.create_user(group.replace(" ", ""), password="x",
                                                is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def run():
    campaign = Campaign.objects.create(key="winter", name="Winter", channel="email",
                                       cost_per_contact="0.1", value_per_conversion="30")
    run = SegmentationRun.objects.create(
        campaign=campaign, cutoff=AT, status="ready", k=2, k_min=2, k_max=4,
        embedding="autoencoder", customers=4, k_scores={"2": 0.41, "3": 0.3},
        comparison={"criterion": "silhouette", "chosen": "autoencoder", "candidates": {
            "autoencoder": {"k": 2, "silhouette": 0.41, "common_silhouette": 0.2},
            "sequence": {"k": 3, "silhouette": 0.33}}},
        map_points={"x": [0.1, 0.2, -1.0, -1.1], "y": [1, 1.1, 0, 0.2], "cluster": [0, 0, 1, 1]})
    for index in (0, 1):
        SegmentCluster.objects.create(run=run, index=index, size=2, profile={
            "index": index, "size": 2, "share": 0.5, "conversion_90d": 0.25,
            "revenue_90d": 12.0, "churn_risk": 0.61,
            "distinguishing": [{"feature": "visits_30d", "cluster": 4.0 + index, "rest": 1.0,
                                "difference": 1.7}],
            "arms": [{"arm": "control", "n": 1, "rate": 0.0, "effect": None, "low": None,
                      "high": None},
                     {"arm": "email", "n": 1, "rate": 1.0, "effect": 1.0, "low": 0.2,
                      "high": 1.8}]})
    for i in range(4):
        ClusterMembership.objects.create(run_id=run.id, customer=customer_make(),
                                         cluster=i // 2, assigned_at=AT)
    return run


def test_the_page_shows_the_map_comparison_profiles_and_the_save_form(run):
    html = _login(CAMPAIGN_MANAGER).get(
        f"/admin/modelling/segmentationrun/{run.id}/change/").content.decode()
    assert 'id="embedding-comparison"' in html and "autoencoder <strong>(chosen)" in html
    assert "Customers by cluster" in html  # the plotly map
    assert "visits_30d" in html and "churn risk 61.0%" in html
    assert f"{pp(1.0)} ({pp(0.2)} to {pp(1.8)})" in html  # the email arm's effect, interval
    assert html.count('value="Save as segment"') == 2


def test_a_manager_saves_a_cluster_and_an_analyst_may_not(run):
    url = f"/admin/modelling/segmentationrun/{run.id}/clusters/1/save/"
    assert _login(ANALYST).post(url, {"key": "heavy", "name": "Heavy"}).status_code == 403
    manager = _login(CAMPAIGN_MANAGER)
    response = manager.post(url, {"key": "heavy", "name": "Heavy visitors"})
    assert response.status_code == 302
    segment = Segment.objects.get(key="heavy")
    assert segment.rule == {"cluster": {"run": run.id, "index": 1}}
    assert SegmentCluster.objects.get(run=run, index=1).segment == segment
    html = manager.get(f"/admin/modelling/segmentationrun/{run.id}/change/").content.decode()
    assert "Heavy visitors (segment <code>heavy</code>)" in html
    assert html.count('value="Save as segment"') == 1
    again = manager.post(url, {"key": "heavy2", "name": "Again"}, follow=True)
    assert "already saved" in again.content.decode()
    assert not Segment.objects.filter(key="heavy2").exists()


def test_a_churn_versions_page_shows_the_side_by_side_comparison():
    from modelling.models import ModelVersion

    campaign = Campaign.objects.create(key="spring", name="Spring", channel="email",
                                       cost_per_contact="0.1", value_per_conversion="30")
    comparison = {"candidates": {"lightgbm": {"auc": 0.861, "log_loss": 0.57, "ece": 0.11},
                                 "sequence_gru": {"auc": 0.87, "log_loss": 0.45, "ece": 0.06}},
                  "winner": "sequence_gru", "auc_margin": 0.009,
                  "note": "sequence_gru has the best held-out AUC (0.870), 0.009 above lightgbm"}
    version = ModelVersion.objects.create(
        campaign=campaign, kind="churn", estimator="sequence_gru", target_metric="churn",
        status="ready", metrics={"auc": 0.87, "base_rate": 0.5, "horizon_days": 90,
                                 "train_cutoff": "2026-04-01", "test_cutoff": "2026-07-01",
                                 "comparison": comparison})
    html = _login(ANALYST).get(
        f"/admin/modelling/modelversion/{version.id}/change/").content.decode()
    assert 'id="churn-comparison"' in html and "0.009 above lightgbm" in html
    assert "sequence_gru <strong>(best)</strong>" in html and "No held-out metrics" not in html


def test_a_manager_starts_a_run_with_a_range_of_k_and_an_analyst_may_not(
        django_capture_on_commit_callbacks):
    campaign = Campaign.objects.create(key="autumn", name="Autumn", channel="email",
                                       cost_per_contact="0.1", value_per_conversion="30")
    assert _login(ANALYST).get("/admin/modelling/segmentationrun/start/").status_code == 403
    manager = _login(CAMPAIGN_MANAGER)
    assert "Learn segments" in manager.get("/admin/modelling/segmentationrun/").content.decode()
    bad = manager.post("/admin/modelling/segmentationrun/start/",
                       {"campaign": campaign.id, "k_min": 6, "k_max": 3})
    assert bad.status_code == 200 and "the cluster range must satisfy" in bad.content.decode()
    assert not SegmentationRun.objects.filter(campaign=campaign).exists()
    response = manager.post("/admin/modelling/segmentationrun/start/",
                            {"campaign": campaign.id, "k_min": 3, "k_max": 6})
    run = SegmentationRun.objects.get(campaign=campaign)
    assert response.status_code == 302 and response["Location"].endswith(f"/{run.id}/change/")
    assert (run.k_min, run.k_max, run.status) == (3, 6, "running")
