"""A list built before a customer withdrew consent or was erased never serves them again."""

from __future__ import annotations

import pytest

from experiments.models import Experiment
from experiments.services import experiment_transition
from marketing.models import Customer
from marketing.privacy import customer_erase
from marketing.services import customers_upsert_bulk
from modelling.models import CustomerScore, ModelVersion, TargetingEntry, TargetingList
from modelling.targeting import targeting_entries, targeting_list_csv
from tests.factories import T0, customer_make, experiment_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def target(api):
    experiment = experiment_transition(experiment=experiment_make(), to=Experiment.Status.RUNNING)
    version = ModelVersion.objects.create(
        campaign=experiment.campaign, experiment=experiment, kind="uplift", estimator="tarnet",
        target_metric="purchase", status="ready", metrics={"arm_names": ["control", "email"]})
    target = TargetingList.objects.create(campaign=experiment.campaign, model_version=version,
                                          size=3)
    for rank, name in enumerate(["stays", "withdraws", "erased"], start=1):
        customer = customer_make()
        Customer.objects.filter(pk=customer.pk).update(external_id=name)
        CustomerScore.objects.create(model_version=version, customer=customer, uplift=0.1,
                                     best_arm="email", uplift_by_arm={"email": 0.1},
                                     scored_at=T0)
        TargetingEntry.objects.create(targeting_list=target, customer=customer, rank=rank,
                                      arm="email", uplift=0.1, expected_profit=1.0)
    return target


def test_entries_and_csv_leave_out_who_withdrew_or_was_erased_since(api, target):
    customers_upsert_bulk([{"external_id": "withdraws", "marketing_consent": False}])
    customer_erase(customer=Customer.objects.get(external_id="erased"))
    assert [e.customer.external_id for e in targeting_entries(target)] == ["stays"]
    csv = "".join(targeting_list_csv(target)).splitlines()
    assert [line.split(",")[1] for line in csv[1:]] == ["stays"]
    body = api.get(f"/api/v1/target-lists/{target.id}/entries/").json()
    assert [e["customer"] for e in body["results"]] == ["stays"]
    response = api.get(f"/api/v1/target-lists/{target.id}/csv/")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [line.split(",")[1] for line in lines[1:]] == ["stays"]
