"""Assignment over the API: one customer (arm or reason), many customers, stored rows."""

import pytest

from experiments.assignment import assign_customer, assign_customers
from experiments.hashing import choose_arm, in_traffic
from experiments.models import Assignment, Experiment
from experiments.services import ArmSpec, experiment_transition
from marketing.services import segment_create
from tests.api.conftest import rows_of
from tests.factories import T0, attributes_declare, customer_make, experiment_make

pytestmark = pytest.mark.django_db


def running(**kwargs) -> Experiment:
    return experiment_transition(experiment=experiment_make(**kwargs),
                                 to=Experiment.Status.RUNNING)


def test_it_assigns_one_customer_and_then_returns_the_stored_arm(api):
    experiment = running()
    customer = customer_make()
    path = f"/api/v1/experiments/{experiment.key}/assignments/"
    first = api.post(path, {"customer": customer.external_id}, format="json").json()
    assert first["reason"] == "assigned" and first["created"] is True
    arms = list(experiment.arms.order_by("id"))
    expected = arms[choose_arm(experiment.salt, customer.external_id, [a.weight for a in arms])]
    assert first["arm"] == expected.name
    second = api.post(path, {"customer": customer.external_id}, format="json").json()
    assert (second["arm"], second["reason"], second["created"]) == (
        first["arm"], "already assigned", False)
    stored = api.get(f"{path}{customer.external_id}/").json()
    assert stored["arm"] == first["arm"]


def test_it_gives_the_reason_when_there_is_no_arm(api):
    experiment = experiment_make()
    customer = customer_make()
    path = f"/api/v1/experiments/{experiment.key}/assignments/"
    body = api.post(path, {"customer": customer.external_id}, format="json").json()
    assert body == {"customer": customer.external_id, "arm": None, "created": False,
                    "contacts_customer": None, "reason": "experiment is draft, not running"}
    experiment_transition(experiment=experiment, to=Experiment.Status.RUNNING)
    no_consent = customer_make(consent=False)
    body = api.post(path, {"customer": no_consent.external_id}, format="json").json()
    assert (body["arm"], body["reason"]) == (None, "no marketing consent")
    assert api.get(f"{path}{no_consent.external_id}/").status_code == 404


def test_an_unknown_customer_or_experiment_is_a_4xx(api):
    experiment = running()
    path = f"/api/v1/experiments/{experiment.key}/assignments/"
    response = api.post(path, {"customer": "ghost"}, format="json")
    assert response.status_code == 400 and "customer" in response.json()["error"]["fields"]
    customer = customer_make()
    response = api.post("/api/v1/experiments/nope/assignments/",
                        {"customer": customer.external_id}, format="json")
    assert response.status_code == 404


def test_bulk_gives_each_customer_the_reason_of_the_first_rule_it_fails():
    attributes_declare()
    web = segment_create(key="web", name="Web", rule={"attr": "channel", "op": "eq",
                                                      "value": "web"})
    other = running(layer="homepage")
    experiment = running(arms=[ArmSpec("control", 2.0, is_control=True, contacts_customer=False),
                               ArmSpec("a", 1.0), ArmSpec("b", 1.0)],
                         layer="homepage", traffic_fraction=0.8, eligibility_segment=web,
                         salt="bulk")
    control, a, b = experiment.arms.order_by("id")
    # Customer i: in the segment unless i % 5 == 0, consent unless i % 7 == 0,
    # in the other experiment of the layer when i < 20 with consent (its email arm needs
    # it), stored in arm b when i == 35
    # (outside the segment and without consent: the stored row still wins).
    customers = [customer_make(channel="web" if i % 5 else "store", consent=i % 7 != 0)
                 for i in range(300)]
    rivals = {i for i, c in enumerate(customers[:20])
              if assign_customer(experiment=other, customer=c, now=T0).created}
    assert rivals == {i for i in range(20) if i % 7 != 0}
    Assignment.objects.create(experiment=experiment, customer=customers[35], arm=b, assigned_at=T0)

    def expected(i, c):
        if i == 35:
            return "b", "already assigned"
        if i % 5 == 0:
            return None, "not in eligibility segment web"
        if not in_traffic("bulk", c.external_id, 0.8):
            return None, "outside the experiment's traffic sample"
        if i in rivals:
            return None, f"already in experiment {other.key} of layer homepage"
        if i % 7 == 0:
            return None, "no marketing consent"
        return [control, a, b][choose_arm("bulk", c.external_id, [2, 1, 1])].name, "assigned"

    result = assign_customers(experiment=experiment, external_ids=[c.external_id for c in customers])
    got = [(arm.name if arm else None, reason) for _, arm, reason, _ in result.decisions]
    assert got == [expected(i, c) for i, c in enumerate(customers)]
    assert {reason for _, reason in got} == {
        "assigned", "already assigned", "not in eligibility segment web", "no marketing consent",
        "outside the experiment's traffic sample",
        f"already in experiment {other.key} of layer homepage"}
    created = sum(1 for *_, new in result.decisions if new)
    assert created == sum(1 for _, reason in got if reason == "assigned") > 100
    assert Assignment.objects.filter(experiment=experiment).count() == created + 1


def test_bulk_answers_stored_arms_after_the_experiment_stops():
    experiment = running()
    customers = [customer_make() for _ in range(3)]
    first = assign_customer(experiment=experiment, customer=customers[0], now=T0)
    experiment = experiment_transition(experiment=experiment, to=Experiment.Status.STOPPED)
    result = assign_customers(experiment=experiment,
                              external_ids=[c.external_id for c in customers])
    assert [(arm, reason, new) for _, arm, reason, new in result.decisions] == [
        (first.arm, "already assigned", False),
        (None, "experiment is stopped, not running", False),
        (None, "experiment is stopped, not running", False)]


def test_bulk_assigns_many_answers_in_order_and_repeats_nothing(api, django_assert_max_num_queries):
    experiment = running()
    customers = [customer_make() for _ in range(500)]
    ids = [c.external_id for c in customers]
    path = f"/api/v1/experiments/{experiment.key}/assignments/bulk/"
    with django_assert_max_num_queries(12):
        body = api.post(path, {"customers": ids}, format="json").json()
    assert [d["customer"] for d in body["decisions"]] == ids
    assert body["assigned"] == body["created"] == 500
    assert Assignment.objects.filter(experiment=experiment).count() == 500
    again = api.post(path, {"customers": ids[:3] + ids[:1]}, format="json").json()
    assert again["created"] == 0
    assert [d["reason"] for d in again["decisions"]] == ["already assigned"] * 4
    assert [d["arm"] for d in again["decisions"][:3]] == [d["arm"] for d in body["decisions"][:3]]


def test_bulk_rejects_unknown_customers_and_assigns_nobody(api):
    experiment = running()
    known = customer_make().external_id
    path = f"/api/v1/experiments/{experiment.key}/assignments/bulk/"
    response = api.post(path, {"customers": [known, "ghost", 7]}, format="json")
    assert set(rows_of(response)) == {1, 2}
    assert not Assignment.objects.exists()


def test_the_list_filters_by_arm_and_time(api):
    experiment = running()
    control, email = experiment.arms.order_by("id")
    for i in range(4):
        Assignment.objects.create(experiment=experiment, customer=customer_make(),
                                  arm=control if i % 2 else email, assigned_at=T0)
    path = f"/api/v1/experiments/{experiment.key}/assignments/"
    assert len(api.get(path, {"arm": "email"}).json()["results"]) == 2
    assert api.get(path, {"assigned_after": "2030-01-01T00:00:00Z"}).json()["results"] == []
    assert len(api.get(path).json()["results"]) == 4
