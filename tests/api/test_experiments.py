"""Experiments: create with arms and metrics, start, stop, list, per-arm outcomes."""

from datetime import timedelta

import pytest

from experiments.models import Assignment, Experiment
from experiments.services import experiment_transition
from marketing.models import Segment
from tests.factories import T0, campaign_make, customer_make, event_make, experiment_make

pytestmark = pytest.mark.django_db


def experiment_body(**changes) -> dict:
    body = {
        "campaign": "summer", "key": "summer_ab", "name": "Summer A/B",
        "arms": [{"name": "control", "weight": 1, "is_control": True, "contacts_customer": False},
                 {"name": "email", "weight": 1}],
        "metrics": [{"name": "purchase", "event_kind": "purchase", "aggregation": "converted",
                     "role": "primary"}],
    }
    body.update(changes)
    return body


@pytest.fixture
def summer(db):
    return campaign_make(key="summer")


def test_it_creates_a_draft_then_starts_and_stops_it(api, summer):
    response = api.post("/api/v1/experiments/", experiment_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["campaign"], [a["name"] for a in body["arms"]]) == (
        "draft", "summer", ["control", "email"])
    assert body["arms"][1]["contacts_customer"] is True and len(body["salt"]) == 16
    started = api.post("/api/v1/experiments/summer_ab/start/").json()
    assert started["status"] == "running" and started["started_at"]
    assert api.post("/api/v1/experiments/summer_ab/stop/").json()["status"] == "stopped"
    again = api.post("/api/v1/experiments/summer_ab/start/")
    assert again.status_code == 400
    assert again.json()["error"]["fields"] == {"status": ["cannot move from stopped to running"]}


def test_it_uses_an_eligibility_segment_by_key(api, summer):
    Segment.objects.create(key="web", name="Web", rule={"attr": "channel", "op": "eq",
                                                        "value": "web"})
    response = api.post("/api/v1/experiments/", experiment_body(eligibility_segment="web"),
                        format="json")
    assert response.json()["eligibility_segment"] == "web"


@pytest.mark.parametrize("changes, field", [
    ({"arms": [{"name": "control", "weight": 1, "is_control": True}]}, "arms"),
    ({"arms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]}, "arms"),
    ({"arms": [{"name": "control", "weight": -1, "is_control": True},
               {"name": "b", "weight": 1}]}, "arms[0].weight"),
    ({"arms": [{"name": "x", "weight": 1, "is_control": True}, {"name": "x", "weight": 1}]},
     "arms"),
    ({"metrics": [{"name": "m", "event_kind": "purchase", "aggregation": "sum"}]}, "metrics"),
    ({"metrics": [{"name": "Bad Name", "event_kind": "purchase", "aggregation": "sum",
                   "role": "primary"}]}, "metrics[0].name"),
    ({"campaign": "winter"}, "campaign"),
    ({"eligibility_segment": "nobody"}, "eligibility_segment"),
    ({"traffic_fraction": 1.5}, "traffic_fraction"),
    ({"attribution_window_days": 0}, "attribution_window_days"),
])
def test_it_rejects_a_bad_experiment_naming_the_path(api, summer, changes, field):
    response = api.post("/api/v1/experiments/", experiment_body(**changes), format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"], response.json()
    assert not Experiment.objects.exists()


def test_a_duplicate_key_is_a_400(api, summer):
    api.post("/api/v1/experiments/", experiment_body(), format="json")
    response = api.post("/api/v1/experiments/", experiment_body(), format="json")
    assert response.status_code == 400 and "key" in response.json()["error"]["fields"]


def test_the_list_filters_by_campaign_and_status(api, summer):
    a = experiment_make(campaign=summer)
    b = experiment_transition(experiment=experiment_make(), to=Experiment.Status.RUNNING)

    def keys(**params):
        return [e["key"] for e in api.get("/api/v1/experiments/", params).json()["results"]]

    assert keys(campaign="summer") == [a.key]
    assert keys(status="running") == [b.key]
    assert keys() == [a.key, b.key]
    assert api.get("/api/v1/experiments/", {"status": "paused"}).status_code == 400
    assert api.get(f"/api/v1/experiments/{a.key}/").json()["key"] == a.key
    assert api.get("/api/v1/experiments/nope/").status_code == 404


def test_outcomes_give_per_arm_sums_computed_in_the_database(api):
    experiment = experiment_make()
    control, email = experiment.arms.order_by("id")
    buyers = []
    for i in range(4):
        customer = customer_make()
        arm = control if i < 2 else email
        Assignment.objects.create(experiment=experiment, customer=customer, arm=arm,
                                  assigned_at=T0)
        buyers.append(customer)
    event_make(buyers[2], "purchase", T0 + timedelta(days=1), 30.0)
    event_make(buyers[3], "purchase", T0 + timedelta(days=2), 10.0)
    event_make(buyers[3], "purchase", T0 + timedelta(days=30), 99.0)  # outside the window
    body = api.get(f"/api/v1/experiments/{experiment.key}/outcomes/").json()
    by_arm = {a["arm"]: a for a in body["arms"]}
    assert by_arm["control"]["n"] == 2 and by_arm["control"]["metrics"]["purchase"]["sum_y"] == 0
    assert by_arm["email"]["metrics"]["purchase"]["sum_y"] == 2
    assert by_arm["email"]["metrics"]["revenue"]["sum_y"] == 40.0
    assert by_arm["email"]["metrics"]["revenue"]["sum_y2"] == 30.0**2 + 10.0**2
