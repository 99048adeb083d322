"""Learned segments: embed, cluster, profile, save as a segment and use it everywhere."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from core.models import TaskRun
from experiments.analysis import experiment_analyse
from experiments.assignment import assign_segment
from experiments.demo_behaviour import behaviour_demo_seed
from experiments.models import Assignment, Experiment
from experiments.services import ArmSpec, MetricSpec, experiment_create
from marketing.models import Campaign, ClusterMembership, Customer, Event
from marketing.segment_rules import segment_members, segment_rule_validate
from modelling.models import SegmentCluster
from modelling.segmentation import (
    cluster_memberships_extend,
    segment_cluster_save,
    segmentation_run_create,
    segmentation_run_execute,
)
from modelling.tasks import saved_cluster_memberships_extend_task

pytestmark = pytest.mark.django_db
ANCHOR = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
FAST = {"autoencoder": {"max_epochs": 15}, "sequence": {"max_epochs": 3}}


@pytest.fixture
def run(settings, tmp_path):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    result = behaviour_demo_seed(customers=600, seed=5, anchor=ANCHOR)
    experiment = Experiment.objects.get(id=result.experiment_id)
    created = segmentation_run_create(
        campaign=experiment.campaign, experiment=experiment,
        cutoff=ANCHOR - timedelta(days=90), k_min=3, k_max=5)
    return segmentation_run_execute(created, params=FAST)


def test_a_run_embeds_compares_clusters_and_profiles(run):
    assert run.status == "ready", run.status_reason
    assert 3 <= run.k <= 5 and set(run.k_scores) == {"3", "4", "5"}
    assert run.k_scores[str(run.k)] == max(run.k_scores.values())  # the stated criterion
    comparison = run.comparison
    assert set(comparison["candidates"]) == {"autoencoder", "sequence"}
    # the clusterings are compared in one common space: the standardised features
    assert comparison["criterion"] == "common_silhouette"
    chosen = comparison["candidates"][run.embedding]
    assert all(chosen["common_silhouette"] >= c["common_silhouette"]
               for c in comparison["candidates"].values())
    # the horizon after the cutoff has passed: the churn probe is reported too
    assert all(0.5 < c["churn_probe_auc"] <= 1 for c in comparison["candidates"].values())
    members = ClusterMembership.objects.filter(run_id=run.id)
    assert members.count() == run.customers > 400  # newcomers who joined later are not in
    clusters = list(run.clusters.all())
    assert len(clusters) == run.k and sum(c.size for c in clusters) == run.customers
    profile = clusters[0].profile
    assert profile["size"] == clusters[0].size and profile["distinguishing"]
    top = profile["distinguishing"][0]
    assert {"feature", "cluster", "rest", "difference"} <= set(top)
    arms = {a["arm"]: a for a in profile["arms"]}
    assert set(arms) == {"control", "email", "email_discount"}
    assert arms["email"]["low"] <= arms["email"]["effect"] <= arms["email"]["high"]
    assert len(run.map_points["x"]) == len(run.map_points["cluster"]) == run.customers


def test_a_saved_cluster_is_a_segment_for_eligibility_and_breakdowns(run):
    cluster = SegmentCluster.objects.filter(run=run).order_by("-size").first()
    segment = segment_cluster_save(cluster=cluster, key="learned_one", name="Learned one")
    segment_rule_validate(segment.rule)
    expected = set(ClusterMembership.objects.filter(run_id=run.id, cluster=cluster.index)
                   .values_list("customer_id", flat=True))
    assert set(segment_members(segment.rule).values_list("id", flat=True)) == expected
    with pytest.raises(ValueError, match="already saved"):
        segment_cluster_save(cluster=cluster, key="again", name="Again")

    # customers the run never saw join by the nearest saved centre
    saved_cluster_memberships_extend_task()  # what beat sends daily
    result = TaskRun.objects.get(name="saved_cluster_memberships_extend").result
    assert result["customers_added"] == {str(run.id): Customer.objects.count() - run.customers}
    assert Customer.objects.count() > run.customers
    assert cluster_memberships_extend(run, at=ANCHOR) == 0  # everyone placed already
    assert ClusterMembership.objects.filter(run_id=run.id).count() == Customer.objects.count()

    # eligibility: only the segment's members are assigned
    members = set(segment_members(segment.rule).values_list("id", flat=True))
    experiment = experiment_create(
        campaign=Campaign.objects.get(id=run.campaign_id), key="learned_follow_up",
        name="For the learned segment", eligibility_segment=segment,
        arms=[ArmSpec("control", 1.0, is_control=True), ArmSpec("email", 1.0)],
        metrics=[MetricSpec("conversion", Event.Kind.PURCHASE, "converted", role="primary")])
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING,
                                                       started_at=timezone.now())
    experiment.refresh_from_db()
    assign_segment(experiment=experiment)
    assigned = set(Assignment.objects.filter(experiment=experiment)
                   .values_list("customer_id", flat=True))
    assert assigned == members

    # breakdown: the demo experiment's results per the learned segment
    demo = run.experiment
    demo.breakdown_segments.add(segment)
    analysis = experiment_analyse(experiment=demo)
    in_segment = Assignment.objects.filter(experiment=demo, customer_id__in=members).count()
    (breakdown,) = [s for s in analysis.payload["segments"] if s["segment"] == "segment:learned_one"]
    conversion = next(m for m in breakdown["metrics"] if m["metric"] == "conversion")
    assert sum(arm["n"] for arm in conversion["arms"]) == in_segment > 0
