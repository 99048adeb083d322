"""The campaign manager's admin pages render the analysis, models and lists."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import escape

from core.models import TaskRun
from experiments.analysis import experiment_analyse
from experiments.demo import demo_seed
from experiments.models import Experiment
from jobs.models import CampaignSchedule
from modelling.scoring import score_chunk, score_plan
from modelling.targeting import targeting_list_create
from modelling.training import uplift_model_train

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456")
    client.force_login(user)
    return client


@pytest.fixture
def world(settings, tmp_path):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    demo_seed(customers=700, seed=8, anchor=datetime(2026, 10, 1, tzinfo=UTC))
    experiment = Experiment.objects.get(key="demo_spring")
    first = experiment_analyse(experiment=experiment)
    second = experiment_analyse(experiment=experiment)
    (version,) = uplift_model_train(experiment=experiment, estimators=["tarnet"], baselines=["T"],
                                    estimator_params={"tarnet": {"max_epochs": 3}})
    for chunk in score_plan(chunk_size=1_000):
        score_chunk(version=version, chunk=chunk, cutoff=datetime(2026, 10, 1, tzinfo=UTC))
    target = targeting_list_create(campaign=experiment.campaign, model_version=version,
                                   cost_per_contact=0.01)
    return experiment, (first, second), version, target


def test_the_analysis_page_shows_the_decision_effects_segments_and_history(admin_client, world):
    from core.templatetags.humanize_extra import pp

    _, (_, second), _, _ = world
    url = reverse("admin:experiments_analysisresult_change", args=[second.id])
    html = admin_client.get(url + "?view=fixed&segments=all").content.decode()
    decision = second.payload["decision"]
    assert f"Decision: {decision['action'].replace('_', ' ')}" in html
    assert 'id="metric-conversion"' in html and "(primary)" in html
    primary = next(m for m in second.payload["metrics"] if m["role"] == "primary")
    for comparison in primary["comparisons"]:
        # The fixed-horizon effect (CUPED when present), in percentage points.
        effect = (comparison.get("cuped") or {}).get("effect") or comparison["unadjusted"]
        assert f'<td class="num effect">{pp(effect["absolute_effect"])}</td>' in html
    assert "recent_buyers" in html and "Per-segment effects" in html
    # One effect-over-time chart per treated arm of the primary metric.
    assert html.count("Primary effect over time: effect of") == len(primary["comparisons"])


def test_the_model_page_shows_quality_baselines_curves_and_calibration(admin_client, world):
    _, _, version, _ = world
    html = admin_client.get(reverse("admin:modelling_modelversion_change",
                                    args=[version.id])).content.decode()
    assert "Held-out quality" in html and "causalml_T" in html
    assert "Qini curve: email" in html and "Qini curve: email_discount" in html
    assert "Predicted against observed uplift per decile: email_discount" in html
    assert html.count('class="plotly-chart"') >= 4  # two Qini curves, two calibrations


def test_the_targeting_list_page_and_csv_export(admin_client, world):
    _, _, _, target = world
    html = admin_client.get(reverse("admin:modelling_targetinglist_change",
                                    args=[target.id])).content.decode()
    assert "Profit curve" in html and 'class="plotly-chart"' in html
    response = admin_client.get(reverse("admin:modelling_targetinglist_csv", args=[target.id]))
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("rank,customer_external_id") and len(lines) == target.size + 1


def test_admin_actions_queue_the_same_services(admin_client, world,
                                               django_capture_on_commit_callbacks):
    experiment, _, version, _ = world
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:experiments_experiment_changelist"),
                          {"action": "analyse", "_selected_action": [experiment.id]})
    run = TaskRun.objects.get(name="experiment_analyse", status="succeeded")
    assert run.params == {"experiment_id": experiment.id}
    assert experiment.analyses.filter(task_run=run).count() == 1
    # The bulk action queues the build (never builds in the request) and goes to its progress.
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = admin_client.post(reverse("admin:modelling_modelversion_changelist"),
                                     {"action": "target", "_selected_action": [version.id]})
    build = TaskRun.objects.get(name="targeting_list_build")
    assert build.status == "queued" and version.target_lists.count() == 1
    assert response.status_code == 302 and response["Location"] == reverse(
        "admin:modelling_modelversion_target_run", args=[version.id, build.id])
    for callback in queued:  # the worker's turn (eager Celery in tests)
        callback()
    build.refresh_from_db()
    assert build.status == "succeeded" and version.target_lists.count() == 2
    assert build.result["targeting_list_id"] == version.target_lists.latest("id").id
    progress = admin_client.get(response["Location"]).content.decode()
    assert reverse("admin:modelling_targetinglist_change",
                   args=[build.result["targeting_list_id"]]) in progress
    changelists = ["experiments_experiment", "experiments_analysisresult",
                   "modelling_modelversion", "modelling_targetinglist", "core_taskrun",
                   "jobs_campaignschedule"]
    for name in changelists:
        assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200


def test_a_schedule_saved_in_the_admin_creates_its_beat_task(admin_client, world):
    experiment, *_ = world
    response = admin_client.post(reverse("admin:jobs_campaignschedule_add"), {
        "campaign": experiment.campaign_id, "action": "rescore", "every_hours": 8,
        "enabled": "on", "psi_threshold": 0.2})
    assert response.status_code == 302
    schedule = CampaignSchedule.objects.get()
    assert schedule.periodic_task.interval.every == 8


def test_snapshot_pages_render_read_only(admin_client, world):
    experiment, (first, _), version, target = world
    run = TaskRun.objects.create(name="experiment_analyse", status="succeeded")
    pages = {
        "experiments_analysisresult": (first.id, "Primary effect over time"),
        "modelling_modelversion": (version.id, "Held-out quality"),
        "modelling_targetinglist": (target.id, "Profit curve"),
        "core_taskrun": (run.id, "experiment_analyse"),
    }
    for name, (pk, content) in pages.items():
        url = reverse(f"admin:{name}_change", args=[pk])
        page = admin_client.get(url)
        html = page.content.decode()
        assert page.status_code == 200 and content in html, name
        assert 'name="_save"' not in html and "deletelink" not in html, name
        assert admin_client.post(url, {}).status_code == 403, name
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 403, name
        assert admin_client.post(reverse(f"admin:{name}_delete", args=[pk]),
                                 {"post": "yes"}).status_code == 403, name
    assert first.__class__.objects.filter(pk=first.pk).exists()


def test_model_version_actions_need_the_run_tasks_permission(client, world):
    from django.contrib.auth.models import Permission

    _, _, version, _ = world
    user = get_user_model().objects.create_user("analyst", password="pw-123456", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    client.force_login(user)
    changelist = reverse("admin:modelling_modelversion_changelist")
    html = client.get(changelist).content.decode()
    assert 'value="target"' not in html and 'value="score"' not in html
    client.post(changelist, {"action": "target", "_selected_action": [version.id]})
    assert not TaskRun.objects.filter(name="targeting_list_build").exists()
    user.user_permissions.add(Permission.objects.get(codename="run_tasks"))
    user = get_user_model().objects.get(pk=user.pk)  # a fresh permission cache
    client.force_login(user)
    html = client.get(changelist).content.decode()
    assert 'value="target"' in html and 'value="score"' in html
    client.post(changelist, {"action": "target", "_selected_action": [version.id]})
    assert TaskRun.objects.filter(name="targeting_list_build").count() == 1


def test_the_model_page_shows_the_drivers_and_the_rules_in_words(admin_client, world):
    _, _, version, _ = world
    html = admin_client.get(reverse("admin:modelling_modelversion_change",
                                    args=[version.id])).content.decode()
    assert "What drives the predicted uplift (140 held-out customers)" in html
    assert "integrated gradients" in html
    assert "Targeting rules at cost 0.15 per contact, value 45.00 per conversion" in html
    for line in version.explanations["rules"]["text"]:
        assert f"<li>{escape(line)}</li>" in html


def test_the_customer_page_explains_the_champions_choice(admin_client, world):
    from marketing.models import Customer
    from marketing.privacy import customer_erase
    from modelling.models import CustomerScore

    _, _, version, _ = world
    score = CustomerScore.objects.filter(model_version=version).order_by("-uplift").first()
    page = admin_client.get(reverse("admin:marketing_customer_change",
                                    args=[score.customer_id]))
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Why the model chooses this for Spring reactivation e-mail (model #{version.id})" in html
    assert "Chosen: " in html and " pp</td>" in html  # uplift in percentage points
    assert "at cost 0.15 per contact and value 45.00 per conversion" in html
    # no score, no panel; an erased customer is not explained
    unscored = Customer.objects.create(external_id="new-one")
    html = admin_client.get(reverse("admin:marketing_customer_change",
                                    args=[unscored.id])).content.decode()
    assert "Why the model chooses" not in html
    customer_erase(customer=score.customer)
    html = admin_client.get(reverse("admin:marketing_customer_change",
                                    args=[score.customer_id])).content.decode()
    assert "Why the model chooses" not in html


def test_revenue_reads_in_money_and_a_falling_harm_as_fewer(admin_client, world):
    from core.templatetags.humanize_extra import effect

    _, (_, second), _, target = world
    html = admin_client.get(reverse("admin:experiments_analysisresult_change",
                                    args=[second.id]) + "?view=fixed").content.decode()
    revenue = next(m for m in second.payload["metrics"] if m["metric"] == "revenue")
    for comparison in revenue["comparisons"]:
        value = ((comparison.get("cuped") or {}).get("effect")
                 or comparison["unadjusted"])["absolute_effect"]
        assert f'<td class="num effect">{effect(value, "money")}</td>' in html
        assert "€" in effect(value, "money")
    target.guardrail_harm = {"unsubscribes": -3.4}
    target.save(update_fields=["guardrail_harm"])
    html = admin_client.get(reverse("admin:modelling_targetinglist_change",
                                    args=[target.id])).content.decode()
    assert "3.40 fewer unsubscribes" in html and "-3.4" not in html
