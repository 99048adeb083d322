"""The data migrations turn stored clear idempotency keys and erased CRM ids into pseudonyms."""

from importlib import import_module

import pytest
from django.apps import apps
from django.utils import timezone

from core.pseudonyms import idempotency_key_pseudonym
from experiments.assignment import assign_customer
from experiments.models import Experiment, Exposure
from experiments.services import experiment_transition
from marketing.crm_ids import erased_external_id
from marketing.models import Customer, Event
from tests.factories import T0, customer_make, event_make, experiment_make

pytestmark = pytest.mark.django_db

marketing_forwards = import_module(
    "marketing.migrations.0009_idempotency_keys_and_erased_ids_pseudonymised").forwards
exposures_forwards = import_module(
    "experiments.migrations.0010_exposure_idempotency_keys_pseudonymised").forwards


def test_stored_keys_and_erased_ids_are_pseudonymised():
    experiment = experiment_transition(experiment=experiment_make(), to=Experiment.Status.RUNNING)
    customer = customer_make()
    decision = assign_customer(experiment=experiment, customer=customer, now=T0)
    Exposure.objects.create(assignment=decision.assignment, exposed_at=T0,
                            idempotency_key="send-ann@x.test")
    event_make(customer, "visit", T0, idempotency_key="order-ann@x.test")
    event_make(customer, "visit", T0)  # no key: stays without one
    erased = customer_make()
    Customer.objects.filter(pk=erased.pk).update(external_id="ann@x.test",
                                                 erased_at=timezone.now())

    marketing_forwards(apps, None)
    exposures_forwards(apps, None)

    assert sorted(Event.objects.values_list("idempotency_key", flat=True),
                  key=str) == sorted([idempotency_key_pseudonym("order-ann@x.test"), None], key=str)
    assert Exposure.objects.get().idempotency_key == idempotency_key_pseudonym("send-ann@x.test")
    assert Customer.objects.get(pk=erased.pk).external_id == erased_external_id("ann@x.test")
    assert Customer.objects.get(pk=customer.pk).external_id == customer.external_id
