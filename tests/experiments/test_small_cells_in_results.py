"""Breakdowns over fewer than PRIVACY_MIN_CELL customers are suppressed wherever results are shown.

100 customers in two arms: 50 from the store, 44 from the web, 6 by phone
(3 per arm), and a segment rule that picks the phone customers. The phone
breakdown and the segment are hidden (3 < 20 per arm); the web breakdown
is hidden too, or the experiment's total minus store would give phone
back; the experiment's own totals stay exact.
"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from core.groups import ANALYST
from experiments.analysis import experiment_analyse
from experiments.models import Assignment, Experiment
from experiments.results import analysis_payload_public
from experiments.services import ArmSpec
from marketing.services import segment_create
from tests.api.conftest import client_with_key
from tests.factories import T0, attributes_declare, customer_make, event_make, experiment_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def result():
    attributes_declare()
    phone = segment_create(key="phone_users", name="Phone",
                           rule={"attr": "channel", "op": "eq", "value": "phone"})
    experiment = experiment_make(
        arms=[ArmSpec("control", 1, is_control=True, contacts_customer=False),
              ArmSpec("email", 1)],
        breakdown_attributes=["channel"], breakdown_segments=[phone], sequential_testing=False)
    Experiment.objects.filter(pk=experiment.pk).update(status="stopped", started_at=T0)
    experiment.refresh_from_db()
    control, email = experiment.arms.order_by("id")
    channels = ["store"] * 50 + ["web"] * 44 + ["phone"] * 6
    for i, channel in enumerate(channels):
        customer = customer_make(channel=channel)
        Assignment.objects.create(experiment=experiment, customer=customer,
                                  arm=control if i % 2 else email, assigned_at=T0)
        if i % 3 == 0:
            event_make(customer, "purchase", T0 + timedelta(days=1), 10.0 + i)
    return experiment_analyse(experiment=experiment)


def test_a_small_breakdown_is_suppressed_and_the_total_is_unchanged(result):
    public = analysis_payload_public(result.payload)
    shown = {s["segment"]: s["suppressed"] for s in public["segments"]}
    assert shown == {"segment:phone_users": True, "channel=phone": True, "channel=web": True,
                     "channel=store": False}
    (phone,) = [s for s in public["segments"] if s["segment"] == "channel=phone"]
    assert phone == {"segment": "channel=phone", "suppressed": True,
                     "suppressed_reason": "fewer than 20 customers: suppressed to protect "
                                          "their privacy"}
    # The parent's figures are the stored ones, over all 100 customers.
    assert public["metrics"] == result.payload["metrics"]
    assert public["sample_sizes"] == result.payload["sample_sizes"] == {"control": 50,
                                                                         "email": 50}
    assert result.customers == 100


def test_the_api_and_the_admin_show_the_suppression_with_its_reason(result, client):
    api = client_with_key("read")
    body = api.get(f"/api/v1/experiments/{result.experiment.key}/results/latest/").json()
    (phone,) = [s for s in body["payload"]["segments"] if s["segment"] == "channel=phone"]
    assert phone["suppressed"] is True and "metrics" not in phone
    assert body["payload"]["metrics"] == result.payload["metrics"]

    user = get_user_model().objects.create_user("analyst", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=ANALYST))
    client.force_login(user)
    html = client.get(reverse("admin:experiments_experiment_overview",
                              args=[result.experiment.id]) + "?segments=all").content.decode()
    assert "3 segments not shown (segment:phone_users, channel=phone, channel=web)" in html
    assert "fewer than 20 customers" in html
