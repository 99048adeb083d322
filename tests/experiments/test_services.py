"""Experiment services: creation rules, status transitions, exposures."""

import pytest
from django.core.exceptions import ValidationError

from experiments.models import Exposure, Metric
from experiments.services import (
    ArmSpec,
    MetricSpec,
    experiment_create,
    experiment_transition,
    exposures_record,
)
from tests.factories import T0, campaign_make, customer_make, experiment_make

pytestmark = pytest.mark.django_db


def test_it_walks_the_status_path_and_refuses_shortcuts():
    experiment = experiment_make()
    with pytest.raises(ValidationError, match="cannot move from draft to stopped"):
        experiment_transition(experiment=experiment, to="stopped")
    experiment_transition(experiment=experiment, to="running")
    assert experiment.status == "running" and experiment.started_at is not None
    with pytest.raises(ValidationError, match="cannot move from running to draft"):
        experiment_transition(experiment=experiment, to="draft")
    experiment_transition(experiment=experiment, to="stopped")
    assert experiment.ended_at is not None
    experiment_transition(experiment=experiment, to="archived")
    with pytest.raises(ValidationError):
        experiment_transition(experiment=experiment, to="running")


def test_a_stale_copy_cannot_start_an_experiment_twice():
    experiment = experiment_make()
    stale = type(experiment).objects.get(pk=experiment.pk)
    experiment_transition(experiment=experiment, to="running")
    with pytest.raises(ValidationError, match="changed meanwhile"):
        experiment_transition(experiment=stale, to="running")


@pytest.mark.parametrize("arms, metrics, field", [
    ([ArmSpec("a", 1, is_control=True)], None, "arms"),
    ([ArmSpec("a", 1), ArmSpec("b", 1)], None, "arms"),
    ([ArmSpec("a", 1, is_control=True), ArmSpec("b", 1)], [], "metrics"),
    ([ArmSpec("a", 3, is_control=True), ArmSpec("b", -2)], None, "arms[1].weight"),
])
def test_experiment_create_names_the_bad_field(arms, metrics, field):
    if metrics is None:
        metrics = [MetricSpec("m", "purchase", Metric.Aggregation.CONVERTED, role="primary")]
    with pytest.raises(ValidationError) as caught:
        experiment_create(campaign=campaign_make(), key="x", name="X", arms=arms,
                          metrics=metrics)
    assert field in caught.value.message_dict


def test_exposures_are_idempotent_and_all_or_nothing():
    experiment = experiment_transition(experiment=experiment_make(), to="running")
    from experiments.assignment import assign_customer
    customer = customer_make()
    assign_customer(experiment=experiment, customer=customer)
    rows = [{"customer": customer.external_id, "exposed_at": T0, "idempotency_key": "send-1"}]
    assert exposures_record(experiment=experiment, rows=rows).created == 1
    again = exposures_record(experiment=experiment, rows=rows)
    assert (again.created, again.duplicates) == (0, 1)
    bad = exposures_record(experiment=experiment, rows=[
        {"customer": customer.external_id, "exposed_at": T0, "idempotency_key": "send-2"},
        {"customer": "ghost", "exposed_at": T0, "idempotency_key": "send-3"},
    ])
    assert bad.rejected == [{"index": 1, "errors": {
        "customer": f"'ghost' is not assigned in {experiment.key}"}}]
    assert Exposure.objects.count() == 1


def test_breakdowns_must_be_declared_categorical_or_boolean_attributes():
    from tests.factories import attributes_declare
    attributes_declare()
    with pytest.raises(ValidationError) as caught:
        experiment_make(breakdown_attributes=["channel", "age"])
    assert "breakdown_attributes[1]" in caught.value.message_dict
    assert experiment_make(breakdown_attributes=["channel", "vip"]).breakdown_attributes == [
        "channel", "vip"]


def test_experiment_create_keeps_the_key_it_was_given():
    from tests.factories import attributes_declare
    attributes_declare()
    experiment = experiment_make(key="spring_test", breakdown_attributes=["channel"])
    assert experiment.key == "spring_test"
