"""experiment_analyse: SQL sums through the statistics engine into a snapshot."""

import gzip
from datetime import timedelta

import numpy as np
import pytest
from scipy import stats

from core.models import TaskRun
from experiments.analysis import experiment_analyse
from experiments.minethatdata_import import hillstrom_import
from experiments.models import AnalysisResult, Assignment, Experiment
from experiments.services import ArmSpec
from jobs.requests import experiment_analyse_request
from marketing.services import segment_create
from tests.experiments.test_hillstrom_import import REAL
from tests.factories import T0, attributes_declare, customer_make, event_make, experiment_make
from tests.missing import require_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment():
    """120 customers in two arms with seeded revenue; returns the raw per-arm arrays too."""
    attributes_declare()
    rng = np.random.default_rng(3)
    segment = segment_create(key="web", name="Web", rule={"attr": "channel", "op": "eq",
                                                          "value": "web"})
    exp = experiment_make(
        arms=[ArmSpec("control", 1, is_control=True, contacts_customer=False),
              ArmSpec("email", 1)],
        breakdown_attributes=["channel"], breakdown_segments=[segment], sequential_testing=False)
    Experiment.objects.filter(pk=exp.pk).update(status="stopped", started_at=T0)
    exp.refresh_from_db()
    control, email = exp.arms.order_by("id")
    revenue = {control.name: [], email.name: []}
    for i in range(120):
        arm = control if i % 2 else email
        customer = customer_make(channel=["web", "phone", "store"][i % 3])
        Assignment.objects.create(experiment=exp, customer=customer, arm=arm, assigned_at=T0)
        value = float(rng.exponential(30)) if rng.random() < (0.3 if arm == email else 0.2) else 0.0
        if value:
            event_make(customer, "purchase", T0 + timedelta(days=2), round(value, 2))
        revenue[arm.name].append(round(value, 2))
    return exp, revenue


def comparison(result, metric, arm="email"):
    (m,) = [m for m in result.payload["metrics"] if m["metric"] == metric]
    (c,) = [c for c in m["comparisons"] if c["arm"] == arm]
    return c


def test_the_effect_matches_welch_on_the_raw_rows(experiment):
    exp, revenue = experiment
    result = experiment_analyse(experiment=exp)
    c = comparison(result, "revenue")["unadjusted"]
    control, email = np.array(revenue["control"]), np.array(revenue["email"])
    assert c["absolute_effect"] == pytest.approx(email.mean() - control.mean(), abs=1e-9)
    welch = stats.ttest_ind(email, control, equal_var=False)
    assert c["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
    converted = comparison(result, "purchase")["unadjusted"]
    assert converted["treatment_mean"] == pytest.approx((email > 0).mean(), abs=1e-12)
    assert result.customers == 120
    # 120 customers cannot show a 10-point lift at alpha 0.05: no decision yet.
    assert result.decision == "keep_running"


def test_it_breaks_down_by_segment_and_attribute_value(experiment):
    exp, _ = experiment
    payload = experiment_analyse(experiment=exp).payload
    names = {s["segment"] for s in payload["segments"]}
    assert names == {"segment:web", "channel=web", "channel=phone", "channel=store"}
    by_name = {s["segment"]: s for s in payload["segments"]}
    web_arms = by_name["segment:web"]["metrics"][0]["arms"]
    assert sum(a["n"] for a in web_arms) == 40
    # The declared segment and the attribute value describe the same customers here.
    for a, b in zip(by_name["segment:web"]["metrics"], by_name["channel=web"]["metrics"],
                    strict=True):
        assert [x["n"] for x in a["arms"]] == [x["n"] for x in b["arms"]]
        assert [x["mean"] for x in a["arms"]] == pytest.approx([x["mean"] for x in b["arms"]])


def test_snapshots_accumulate_and_the_task_records_its_run(experiment,
                                                          django_capture_on_commit_callbacks):
    exp, _ = experiment
    with django_capture_on_commit_callbacks(execute=True):
        run = experiment_analyse_request(experiment=exp)  # runs eagerly on commit
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED and run.progress == 1.0
    experiment_analyse(experiment=exp)
    assert AnalysisResult.objects.filter(experiment=exp).count() == 2
    assert run.result["analysis_result_id"] == AnalysisResult.objects.earliest().id


def test_hillstrom_visit_effects_equal_the_raw_proportions(tmp_path):
    require_file(REAL)
    hillstrom_import(REAL)
    result = experiment_analyse(experiment=Experiment.objects.get(key="hillstrom"))
    import csv
    with gzip.open(REAL, "rt") as f:
        rows = list(csv.DictReader(f))
    visits = {arm: np.array([float(r["visit"]) for r in rows if r["segment"] == arm])
              for arm in ("No E-Mail", "Mens E-Mail", "Womens E-Mail")}
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        c = comparison(result, "visit", arm)["unadjusted"]
        assert c["absolute_effect"] == pytest.approx(
            visits[arm].mean() - visits["No E-Mail"].mean(), abs=1e-12)
    assert result.srm_p_value > 0.001
