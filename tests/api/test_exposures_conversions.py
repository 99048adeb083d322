"""Exposures and conversions of an experiment's assigned customers."""

import pytest

from core.pseudonyms import idempotency_key_pseudonym
from experiments.assignment import assign_customer
from experiments.models import Experiment, Exposure
from experiments.services import experiment_transition
from marketing.models import Event
from tests.api.conftest import rows_of
from tests.factories import T0, customer_make, experiment_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def assigned(db):
    experiment = experiment_transition(experiment=experiment_make(), to=Experiment.Status.RUNNING)
    customer = customer_make()
    assign_customer(experiment=experiment, customer=customer, now=T0)
    return experiment, customer


def test_it_records_exposures_idempotently_and_lists_them(api, assigned):
    experiment, customer = assigned
    path = f"/api/v1/experiments/{experiment.key}/exposures/"
    row = {"customer": customer.external_id, "exposed_at": "2026-06-01T13:00:00+02:00",
           "idempotency_key": "send-1"}
    assert api.post(path, {"exposures": [row]}, format="json").json() == {
        "created": 1, "duplicates": 0}
    assert api.post(path, {"exposures": [row]}, format="json").json() == {
        "created": 0, "duplicates": 1}
    listed = api.get(path).json()["results"]
    assert [(e["customer"], e["idempotency_key"]) for e in listed] == [
        (customer.external_id, idempotency_key_pseudonym("send-1"))]
    assert api.get(path, {"exposed_after": "2026-06-01T12:00:00Z"}).json()["results"] == []


def test_exposures_of_unassigned_customers_or_bad_times_are_rejected(api, assigned):
    experiment, customer = assigned
    path = f"/api/v1/experiments/{experiment.key}/exposures/"
    stranger = customer_make()
    rows = [{"customer": customer.external_id, "exposed_at": "2026-06-01T13:00:00Z",
             "idempotency_key": "a"},
            {"customer": stranger.external_id, "exposed_at": "2026-06-01T13:00:00Z",
             "idempotency_key": "b"},
            {"customer": customer.external_id, "exposed_at": "soon", "idempotency_key": "c"},
            {"customer": customer.external_id, "exposed_at": "2026-06-01T13:00:00Z"}]
    errors = rows_of(api.post(path, {"exposures": rows}, format="json"))
    assert {i: list(e) for i, e in errors.items()} == {
        1: ["customer"], 2: ["exposed_at"], 3: ["idempotency_key"]}
    assert not Exposure.objects.exists()


def test_conversions_are_purchase_events_of_assigned_customers(api, assigned):
    experiment, customer = assigned
    path = f"/api/v1/experiments/{experiment.key}/conversions/"
    row = {"customer": customer.external_id, "occurred_at": "2026-06-02T10:00:00Z",
           "value": 25.0, "idempotency_key": "order-1"}
    body = {"source": "shop", "conversions": [row]}
    assert api.post(path, body, format="json").json() == {"created": 1, "duplicates": 0}
    assert api.post(path, body, format="json").json() == {"created": 0, "duplicates": 1}
    event = Event.objects.get()
    assert (event.kind, event.value, event.source) == ("purchase", 25.0, "shop")


def test_conversions_of_strangers_or_unmeasured_kinds_are_rejected(api, assigned):
    experiment, customer = assigned
    stranger = customer_make()
    path = f"/api/v1/experiments/{experiment.key}/conversions/"
    rows = [{"customer": stranger.external_id, "occurred_at": "2026-06-02T10:00:00Z"},
            {"customer": customer.external_id, "occurred_at": "2026-06-02T10:00:00Z",
             "kind": "visit"},
            {"customer": "ghost", "occurred_at": "2026-06-02T10:00:00Z"}]
    errors = rows_of(api.post(path, {"conversions": rows}, format="json"))
    assert "not assigned" in errors[0]["customer"][0]
    assert list(errors[1]) == ["kind"]
    assert errors[2]["customer"] == ["no customer with external_id 'ghost'"]
    assert not Event.objects.exists()
