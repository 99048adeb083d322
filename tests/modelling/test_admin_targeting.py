"""The targeting page, a list's summary and the customer page, without training a model.

A model version with stored scores stands in for a trained one (the list is
built by the real service); the held-out evaluation is a stored document of
the shape modelling.targeting_evaluation writes.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.groups import ANALYST, CAMPAIGN_MANAGER
from core.models import TaskRun
from experiments.models import Assignment
from experiments.services import ArmSpec
from jobs.requests import targeting_list_request
from marketing.models import Customer, Event
from modelling.models import CustomerScore, ModelVersion, TargetingList
from modelling.targeting import targeting_list_create
from modelling.tasks import targeting_list_build_task
from tests.factories import T0, campaign_make, experiment_make

pytestmark = pytest.mark.django_db

EVALUATION = {
    "available": True, "method": "dr", "level": 0.95, "rows": 200, "eligible": 1000,
    "share": 0.2, "response_baseline": "the uplift model's predicted control outcome",
    "policies": {
        name: {"contacts": contacts, "contacts_by_arm": {"email": contacts, "coupon": 0},
               "spend": 10.0, "profit": {"value": value, "se": 50.0, "low": value - 98,
                                         "high": value + 98},
               "predicted": {"profit": predicted}, "true": {"profit": value + 7},
               "guardrail_harm": {}}
        for name, contacts, value, predicted in [
            ("uplift_policy", 60, 1234.5, 1500.0), ("everyone_email", 200, 300.0, 320.0),
            ("everyone_coupon", 200, -40.0, 10.0), ("random", 60, 150.0, 160.0),
            ("response_top", 60, 400.0, 410.0), ("no_one", 0, 0.0, 0.0)]},
    "curves": {"overall": {"contacts": [0, 100, 200], "profit": [0, 1200, 900],
                           "low": [0, 1000, 600], "high": [0, 1400, 1200]},
               "arms": {"email": {"contacts": [0, 100, 200], "profit": [0, 500, 300],
                                  "low": [0, 300, 0], "high": [0, 700, 600]}}},
}


def _login(client, group):
    user = get_user_model().objects.create_user(group.replace(" ", ""), password="x",
                                                is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return client


def _world(customers: int):
    """``customers`` consenting customers scored by an uplift version (email / coupon)."""
    campaign = campaign_make(cost_per_contact="0.50", value_per_conversion="40.00")
    experiment = experiment_make(campaign=campaign, arms=[
        ArmSpec("control", 1, is_control=True, contacts_customer=False),
        ArmSpec("email", 1), ArmSpec("coupon", 1)])
    version = ModelVersion.objects.create(
        campaign=campaign, experiment=experiment, kind="uplift", estimator="tarnet",
        target_metric="purchase", status="ready",
        metrics={"arm_names": ["control", "email", "coupon"]})
    Customer.objects.bulk_create([
        Customer(external_id=f"q-{i:05d}", marketing_consent=True,
                 attributes={"age": 20 + i % 50, "channel": "web"}) for i in range(customers)])
    people = list(Customer.objects.filter(external_id__startswith="q-").order_by("id"))
    # Uplift 0.1% .. 5% for email, half that for coupon: at 0.50 per contact and
    # 40 per conversion, email pays from 1.25% up.
    CustomerScore.objects.bulk_create([
        CustomerScore(model_version=version, customer=c, response=0.05,
                      uplift=0.001 + 0.049 * i / customers, best_arm="email",
                      uplift_by_arm={"email": 0.001 + 0.049 * i / customers,
                                     "coupon": (0.001 + 0.049 * i / customers) / 2},
                      guardrail_by_arm={}, scored_at=T0) for i, c in enumerate(people)])
    arm = experiment.arms.get(name="email")
    Assignment.objects.bulk_create([Assignment(experiment=experiment, customer=c, arm=arm,
                                               assigned_at=T0) for c in people])
    Event.objects.bulk_create([Event(customer=c, kind="purchase", occurred_at=T0, value=12.5)
                               for c in people for _ in range(3)])
    return campaign, version, people


def test_the_manager_builds_a_list_from_the_form_through_the_service(
        client, django_capture_on_commit_callbacks):
    campaign, version, people = _world(100)
    manager = _login(client, CAMPAIGN_MANAGER)
    url = reverse("admin:modelling_modelversion_target", args=[version.id])
    html = manager.get(url).content.decode()
    for field in ["id_budget", "id_max_contacts", "id_cost_email", "id_conversion_cost_coupon",
                  "id_capacity_email", "id_segment"]:
        assert f'id="{field}"' in html, field
    # The build is queued when the request's transaction commits (eager in tests).
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = manager.post(url, {"budget": "10", "cost_email": "0.5", "cost_coupon": "0.5",
                                      "conversion_cost_email": "0",
                                      "conversion_cost_coupon": "0", "capacity_coupon": "0"})
    assert len(queued) == 1
    run = TaskRun.objects.get(name="targeting_list_build")
    target = TargetingList.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:modelling_modelversion_target_run",
                                           args=[version.id, run.id])
    assert run.status == "succeeded" and run.result == {"targeting_list_id": target.id,
                                                        "size": 20}
    # The run is already done when its page loads: the link is there without polling.
    progress = manager.get(response["Location"]).content.decode()
    list_url = reverse("admin:modelling_targetinglist_change", args=[target.id])
    assert f'<a id="run-result" href="{list_url}">' in progress
    assert '<span id="run-status">done</span>' in progress and 'data-done="1"' in progress
    # 10 / 0.50 = 20 contacts, all email (coupon capacity 0), the 20 best of 100.
    assert target.size == 20 and target.contacts_by_arm == {"email": 20, "coupon": 0}
    assert target.parameters["budget"] == 10 and target.parameters["arm_capacity"] == {
        "email": None, "coupon": 0}
    same = targeting_list_create(campaign=campaign, model_version=version, budget=10,
                                 arm_capacity={"coupon": 0}, evaluate=False)
    assert same.digest == target.digest


def test_the_progress_page_polls_an_unfinished_run_and_shows_a_failed_ones_reason(client):
    _, version, _ = _world(20)
    manager = _login(client, CAMPAIGN_MANAGER)
    run = TaskRun.objects.create(name="targeting_list_build",
                                 params={"model_version_id": version.id}, status="running",
                                 progress=0.0, step="reading scores")
    url = reverse("admin:modelling_modelversion_target_run", args=[version.id, run.id])
    html = manager.get(url).content.decode()
    progress_url = reverse("admin:experiments_experiment_progress", args=[run.id])
    assert f'data-url="{progress_url}" data-done=""' in html and 'id="run-result"' not in html
    TaskRun.objects.filter(pk=run.pk).update(
        status="failed", error="ValidationError: {'parameters': ['no room']}\nTraceback ...")
    html = manager.get(url).content.decode()
    assert "failed: ValidationError: {&#x27;parameters&#x27;: [&#x27;no room&#x27;]}" in html
    assert "Traceback" not in html and 'id="run-result"' not in html
    other = ModelVersion.objects.create(campaign=version.campaign, kind="uplift",
                                        estimator="tarnet", status="ready")
    assert manager.get(reverse("admin:modelling_modelversion_target_run",
                               args=[other.id, run.id])).status_code == 404


def test_the_request_refuses_a_bad_per_arm_cost_naming_the_field_and_queues_nothing():
    campaign, version, _ = _world(20)
    before = TaskRun.objects.count()
    for field, value, words in [
            ("cost_per_contact_by_arm", {"email": -1.0}, "email: must be a number from 0 to 1e+09"),
            ("cost_per_conversion_by_arm", {"sms": 1.0}, "unknown arm 'sms'")]:
        with pytest.raises(ValidationError) as refused:
            targeting_list_request(campaign=campaign, model_version=version, **{field: value})
        assert refused.value.message_dict == {field: [words]}
    other = campaign_make()
    with pytest.raises(ValidationError) as refused:
        targeting_list_request(campaign=other, model_version=version)
    assert list(refused.value.message_dict) == ["model_version"]
    assert TaskRun.objects.count() == before and not TargetingList.objects.exists()


def test_the_task_builds_the_list_and_records_its_id(django_capture_on_commit_callbacks):
    campaign, version, _ = _world(100)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        run = targeting_list_request(campaign=campaign, model_version=version, budget=10,
                                     arm_capacity={"coupon": 0},
                                     cost_per_contact_by_arm={"email": 0.5, "coupon": None})
    assert len(queued) == 1 and not TargetingList.objects.exists()
    assert run.params["budget"] == 10.0 and run.params["cost_per_contact_by_arm"] == {
        "email": 0.5, "coupon": None}
    targeting_list_build_task(run.id)
    run.refresh_from_db()
    target = TargetingList.objects.get()
    # 10 / 0.50 = 20 contacts, all email (coupon capacity 0).
    assert run.status == "succeeded" and run.progress == 1.0
    assert run.result == {"targeting_list_id": target.id, "size": 20}
    assert target.contacts_by_arm == {"email": 20, "coupon": 0}
    assert target.model_version_id == version.id and target.segment_id is None


def test_a_refused_build_fails_the_run_with_its_reason(django_capture_on_commit_callbacks):
    campaign, version, _ = _world(20)
    run = TaskRun.objects.create(name="targeting_list_build", params={
        "campaign_id": campaign.id, "model_version_id": version.id, "segment_id": None,
        "cost_per_contact_by_arm": {"email": -1.0}})
    targeting_list_build_task(run.id)  # returns: the refusal is the run's, not the worker's
    run.refresh_from_db()
    assert run.status == "failed" and "cost_per_contact_by_arm" in run.error
    assert not TargetingList.objects.exists()


def test_per_arm_costs_replace_the_arms_own(client):
    campaign, version, _ = _world(100)
    # Email at 2.00 per contact pays from 5% uplift: nobody; coupon at 0.10 pays from 0.25%.
    target = targeting_list_create(campaign=campaign, model_version=version, evaluate=False,
                                   cost_per_contact_by_arm={"email": 2.0, "coupon": 0.1})
    assert target.contacts_by_arm["email"] == 0 and target.contacts_by_arm["coupon"] > 0
    assert target.parameters["cost_per_contact_by_arm"] == {"email": 2.0, "coupon": 0.1}


def test_the_analyst_sees_the_form_read_only_and_a_forged_post_is_refused(client):
    _, version, _ = _world(50)
    analyst = _login(client, ANALYST)
    url = reverse("admin:modelling_modelversion_target", args=[version.id])
    html = analyst.get(url).content.decode()
    assert 'id="read-only-note"' in html and 'id="build-list"' not in html
    before = TaskRun.objects.count()
    assert analyst.post(url, {"budget": "10"}).status_code == 403
    assert not TargetingList.objects.exists() and TaskRun.objects.count() == before


def test_the_list_page_reads_at_a_glance(client):
    campaign, version, _ = _world(100)
    target = targeting_list_create(campaign=campaign, model_version=version, budget=10,
                                   evaluate=False)
    TargetingList.objects.filter(pk=target.pk).update(evaluation=EVALUATION,
                                                      expected_profit=24_800.0)
    html = _login(client, CAMPAIGN_MANAGER).get(
        reverse("admin:modelling_targetinglist_change", args=[target.id])).content.decode()
    assert "Contact <strong>20 customers</strong>, 20.0% of the 100 eligible" in html
    assert "The model expects <strong>€24,800.00</strong>" in html
    assert ("the policy earned <strong>€1,234.50</strong> (95%: €1,136.50 to €1,332.50) where "
            "the model predicted €1,500.00") in html
    # Best alternative: the response model at 400, below the policy's lower bound 1,136.5.
    assert "beats the best alternative (Response model (most likely to convert), €400.00)" in html
    for label in ["Everyone in email", "Everyone in coupon", "Random (same size and arm mix)",
                  "No one"]:
        assert label in html
    assert "True profit" in html and "€1,241.50" in html
    assert 'class="plotly-chart"' in html and 'id="csv-download"' in html
    assert 'id="follow-up"' in html
    assert "<th>Budget</th><td class=\"num\">€10.00</td>" in html
    assert '"cost_per_contact_by_arm"' not in html  # a table, not the JSON


def test_the_analyst_gets_no_csv_link_and_no_follow_up(client):
    campaign, version, _ = _world(50)
    target = targeting_list_create(campaign=campaign, model_version=version, evaluate=False)
    html = _login(client, ANALYST).get(
        reverse("admin:modelling_targetinglist_change", args=[target.id])).content.decode()
    assert "At a glance" in html
    assert 'id="csv-download"' not in html and 'id="follow-up"' not in html
    changelist = client.get(reverse("admin:modelling_targetinglist_changelist")).content.decode()
    assert f"{target.id}/csv/" not in changelist


def test_the_customer_page_shows_attributes_events_assignments_and_scores(client):
    _, version, people = _world(50)
    html = _login(client, CAMPAIGN_MANAGER).get(
        reverse("admin:marketing_customer_change", args=[people[7].id])).content.decode()
    assert "<th title=\"age\">age</th><td>27</td>" in html
    assert html.count("€12.50") == 3  # three purchases
    assert 'id="customer-assignments"' in html and "email" in html
    assert f"#{version.id} tarnet" in html and "email: +0.8 pp<br>coupon: +0.4 pp" in html  # 0.1% + 4.9% * 7/50, half
    assert "Marketing consent" in html


@pytest.mark.parametrize("page", ["targeting_list", "customer"])
def test_page_queries_do_not_grow_with_customers(client, page):
    manager = _login(client, CAMPAIGN_MANAGER)
    counts = []
    for customers in (50, 500):
        with transaction.atomic():
            campaign, version, people = _world(customers)
            if page == "targeting_list":
                target = targeting_list_create(campaign=campaign, model_version=version,
                                               evaluate=False)
                TargetingList.objects.filter(pk=target.pk).update(evaluation=EVALUATION)
                url = reverse("admin:modelling_targetinglist_change", args=[target.id])
            else:
                Event.objects.bulk_create([Event(customer=people[0], kind="visit",
                                                 occurred_at=T0) for _ in range(customers)])
                url = reverse("admin:marketing_customer_change", args=[people[0].id])
            manager.get(url)  # warms process-wide caches (content types) once
            with CaptureQueriesContext(connection) as queries:
                assert manager.get(url).status_code == 200
            counts.append(len(queries))
            transaction.set_rollback(True)
    assert counts[0] == counts[1], counts
