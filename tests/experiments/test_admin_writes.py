"""The experiment admin writes through the services and their rules."""

import pytest
from django.urls import reverse

from experiments.models import Arm, Experiment, Metric
from tests.factories import campaign_make, experiment_make

pytestmark = pytest.mark.django_db


def _inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def _add_form(campaign, arms: list[dict], metrics: list[dict], **fields) -> dict:
    data = {"campaign": campaign.id, "key": "spring", "name": "Spring", "hypothesis": "",
            "layer": "", "traffic_fraction": "1.0", "attribution_window_days": "14",
            "sequential_testing": "on", "alpha": "0.05", "breakdown_attributes": "[]", **fields}
    return {**data, **_inline("arms", arms), **_inline("metrics", metrics)}


CONTROL = {"name": "control", "weight": "1", "is_control": "on"}
EMAIL = {"name": "email", "weight": "1", "contacts_customer": "on"}
PRIMARY = {"name": "purchase", "event_kind": "purchase", "aggregation": "converted",
           "role": "primary", "higher_is_better": "on"}


def test_the_add_form_has_no_status_field_and_creates_a_draft(admin_client):
    campaign = campaign_make()
    page = admin_client.get(reverse("admin:experiments_experiment_add")).content.decode()
    assert 'name="status"' not in page and 'name="salt"' not in page
    response = admin_client.post(reverse("admin:experiments_experiment_add"),
                                 _add_form(campaign, [CONTROL, EMAIL], [PRIMARY],
                                           status="running"))
    assert response.status_code == 302
    experiment = Experiment.objects.get(key="spring")
    assert experiment.status == "draft" and experiment.started_at is None
    assert sorted(experiment.arms.values_list("name", flat=True)) == ["control", "email"]
    assert list(experiment.metrics.values_list("role", flat=True)) == ["primary"]


@pytest.mark.parametrize("arms, metrics, message", [
    ([CONTROL], [PRIMARY], "arms: an experiment needs at least two arms"),
    ([{**CONTROL, "is_control": ""}, EMAIL], [PRIMARY], "arms: exactly one arm must be the control"),
    ([{**CONTROL, "weight": "0"}, {**EMAIL, "weight": "0"}], [PRIMARY],
     "arms: arm weights must have a positive sum"),
    ([CONTROL, EMAIL], [{**PRIMARY, "role": "secondary"}],
     "metrics: exactly one metric must be primary"),
])
def test_the_add_form_refuses_a_design_the_service_refuses_and_saves_nothing(
        admin_client, arms, metrics, message):
    response = admin_client.post(reverse("admin:experiments_experiment_add"),
                                 _add_form(campaign_make(), arms, metrics))
    assert response.status_code == 200
    html = response.content.decode()
    assert "The experiment was not saved." in html and message in html
    assert (Experiment.objects.count(), Arm.objects.count(), Metric.objects.count()) == (0, 0, 0)


def test_the_add_form_refuses_undeclared_breakdown_attributes(admin_client):
    response = admin_client.post(reverse("admin:experiments_experiment_add"), _add_form(
        campaign_make(), [CONTROL, EMAIL], [PRIMARY], breakdown_attributes='["shoe_size"]'))
    assert "breakdown attributes[0]: &#x27;shoe_size&#x27; is not a declared" in \
        response.content.decode()
    assert Experiment.objects.count() == 0


def test_start_and_stop_actions_run_the_transition(admin_client):
    experiment = experiment_make()
    changelist = reverse("admin:experiments_experiment_changelist")
    admin_client.post(changelist, {"action": "start", "_selected_action": [experiment.id]})
    experiment.refresh_from_db()
    assert experiment.status == "running" and experiment.started_at is not None
    assert experiment.ended_at is None
    response = admin_client.post(changelist, {"action": "start",
                                              "_selected_action": [experiment.id]}, follow=True)
    assert "cannot move from running to running" in response.content.decode()
    admin_client.post(changelist, {"action": "stop", "_selected_action": [experiment.id]})
    experiment.refresh_from_db()
    assert experiment.status == "stopped" and experiment.ended_at >= experiment.started_at


def test_a_running_experiments_arms_salt_and_traffic_cannot_be_edited(admin_client):
    experiment = experiment_make()
    experiment.arms.filter(name="email").update(weight=1.0)
    admin_client.post(reverse("admin:experiments_experiment_changelist"),
                      {"action": "start", "_selected_action": [experiment.id]})
    experiment.refresh_from_db()
    url = reverse("admin:experiments_experiment_change", args=[experiment.id])
    page = admin_client.get(url).content.decode()
    assert 'name="arms-0-weight"' not in page and 'name="traffic_fraction"' not in page
    assert 'name="name"' in page  # the name stays editable
    email = experiment.arms.get(name="email")
    response = admin_client.post(url, {
        "name": "Renamed", "hypothesis": "", "sequential_testing": "on", "alpha": "0.05",
        "breakdown_attributes": "[]", "traffic_fraction": "0.1", "salt": "changed",
        **_inline("arms", [{"id": email.id, "experiment": experiment.id, "name": "email",
                            "weight": "9"}], initial=2),
        **_inline("metrics", [], initial=2)})
    assert response.status_code == 302
    after = Experiment.objects.get(pk=experiment.pk)
    assert after.name == "Renamed"
    assert (after.salt, after.traffic_fraction, after.status) == (experiment.salt, 1.0, "running")
    assert sorted(after.arms.values_list("name", "weight")) == [("control", 1.0), ("email", 1.0)]
    assert after.metrics.count() == 2
