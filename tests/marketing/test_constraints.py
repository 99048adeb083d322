"""Invariants the database itself refuses to break."""

import pytest
from django.db import IntegrityError, transaction

from experiments.models import Arm, Assignment
from marketing.models import Campaign, Customer, Event
from tests.factories import T0, campaign_make, customer_make, event_make, experiment_make

pytestmark = pytest.mark.django_db


def test_it_rejects_a_second_assignment_for_the_same_experiment():
    experiment = experiment_make()
    customer = customer_make()
    control, email = experiment.arms.order_by("id")
    Assignment.objects.create(experiment=experiment, customer=customer, arm=control, assigned_at=T0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(experiment=experiment, customer=customer, arm=email,
                                  assigned_at=T0)
    assert Assignment.objects.filter(customer=customer).count() == 1


def test_it_allows_the_same_customer_in_two_experiments():
    customer = customer_make()
    for experiment in (experiment_make(), experiment_make()):
        Assignment.objects.create(experiment=experiment, customer=customer,
                                  arm=experiment.arms.first(), assigned_at=T0)
    assert Assignment.objects.filter(customer=customer).count() == 2


def test_it_rejects_a_duplicate_idempotency_key_from_one_source():
    customer = customer_make()
    event_make(customer, "purchase", T0, 10.0, source="shop", idempotency_key="order-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        event_make(customer, "purchase", T0, 10.0, source="shop", idempotency_key="order-1")
    assert Event.objects.count() == 1


def test_it_accepts_the_same_key_from_another_source_and_many_keyless_events():
    customer = customer_make()
    event_make(customer, "purchase", T0, source="shop", idempotency_key="k")
    event_make(customer, "purchase", T0, source="pos", idempotency_key="k")
    event_make(customer, "visit", T0)
    event_make(customer, "visit", T0)
    assert Event.objects.count() == 4


def test_it_rejects_a_duplicate_external_id():
    Customer.objects.create(external_id="crm-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(external_id="crm-1")


def test_it_rejects_a_second_control_arm():
    experiment = experiment_make()
    with pytest.raises(IntegrityError), transaction.atomic():
        Arm.objects.create(experiment=experiment, name="control2", weight=1, is_control=True)


def test_it_rejects_negative_campaign_costs():
    with pytest.raises(IntegrityError), transaction.atomic():
        campaign_make(cost_per_contact="-1")
    assert not Campaign.objects.exists()
