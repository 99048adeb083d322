"""Targeting lists: create from scores and economics, read, page entries, stream CSV."""

import csv
import io
from datetime import timedelta
from unittest import mock

import pytest

from marketing.models import Segment
from marketing.segment_rules import segment_members
from modelling.models import CustomerScore, ModelVersion, TargetingList
from tests.api.conftest import DEMO_ANCHOR
from tests.factories import campaign_make

pytestmark = pytest.mark.django_db


def new_parameters(cost: float) -> dict:
    return {"cost_per_contact_by_arm": {"email": cost, "email_discount": cost},
            "cost_per_conversion_by_arm": {"email": 0.0, "email_discount": 0.0},
            "arm_capacity": None, "harm_prices": {"unsubscribes": 0.0},
            "harm_caps": {"unsubscribes": None}}


def lists_path(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.key}/target-lists/"


def test_a_list_within_budget_reads_back_in_summary_entries_and_csv(api, champion):
    campaign = champion.campaign
    # Unpriced unsubscribes (the demo campaign prices them): profit is uplift * 45 - 0.05.
    response = api.post(lists_path(campaign), {"cost_per_contact": 0.05,
                                               "value_per_conversion": 45, "budget": 1.0,
                                               "harm_prices": {"unsubscribe": 0.0}},
                        format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    # budget / cost = 20 contacts at most; each costs 0.05.
    assert 0 < body["size"] <= 20
    assert body["total_cost"] == pytest.approx(0.05 * body["size"])
    assert body["model_version"] == champion.id and body["segment"] is None
    assert body["parameters"] == {"cost_per_contact": 0.05, "value_per_conversion": 45.0,
                                  "budget": 1.0, "max_contacts": None, "eligible": 600,
                                  **new_parameters(0.05)}
    curve = body["profit_curve"]
    assert len(curve["contacts"]) == len(curve["profit"]) > 1

    assert api.get(f"/api/v1/target-lists/{body['id']}/").json() == body
    listed = api.get(lists_path(campaign)).json()["results"]
    assert [t["id"] for t in listed] == [body["id"]] and "profit_curve" not in listed[0]

    entries, path = [], f"/api/v1/target-lists/{body['id']}/entries/?page_size=7"
    while path:
        page = api.get(path).json()
        entries += page["results"]
        path = page["next"]
    assert [e["rank"] for e in entries] == list(range(1, body["size"] + 1))
    for entry in entries:
        assert entry["expected_profit"] == pytest.approx(entry["uplift"] * 45 - 0.05)
    assert sum(e["expected_profit"] for e in entries) == pytest.approx(body["expected_profit"])
    scores = dict(CustomerScore.objects.filter(model_version=champion).values_list(
        "customer__external_id", "best_arm"))
    assert all(e["arm"] == scores[e["customer"]] for e in entries)

    download = api.get(f"/api/v1/target-lists/{body['id']}/csv/", HTTP_ACCEPT="text/csv")
    assert download.status_code == 200
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == (
        f'attachment; filename="targeting-list-{body["id"]}.csv"')
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0] == ["rank", "customer_external_id", "arm", "predicted_uplift",
                       "expected_profit", "uplift_email", "uplift_email_discount"]
    assert [(int(r[0]), r[1], r[2]) for r in rows[1:]] == [
        (e["rank"], e["customer"], e["arm"]) for e in entries]


def test_omitted_economics_come_from_the_campaign_and_a_segment_narrows_the_list(
        api, champion):
    campaign = champion.campaign
    campaign.harm_prices = {"unsubscribe": 0.0}  # the unpriced economics asserted below
    campaign.save(update_fields=["harm_prices"])
    # Segment membership is evaluated as of "now"; the demo data sit at a fixed
    # anchor, so the clock is fixed too (else purchases age out of the 90-day
    # window day by day and the list shrinks with the calendar).
    with mock.patch("django.utils.timezone.now", return_value=DEMO_ANCHOR + timedelta(days=7)):
        response = api.post(lists_path(campaign), {"model_version": champion.id,
                                                   "segment": "recent_buyers",
                                                   "cost_per_contact": 0.0,
                                                   "max_contacts": 40}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    members = segment_members(Segment.objects.get(key="recent_buyers").rule,
                              as_of=TargetingList.objects.get().created_at)
    assert body["segment"] == "recent_buyers"
    assert body["parameters"] == {"cost_per_contact": 0.0, "value_per_conversion": 45.0,
                                  "budget": 5000.0, "max_contacts": 40,
                                  "eligible": members.count(), **new_parameters(0.0)}
    assert body["size"] == 40 and body["total_cost"] == 0.0
    entries = api.get(f"/api/v1/target-lists/{body['id']}/entries/?page_size=100").json()
    chosen = {e["customer"] for e in entries["results"]}
    assert chosen <= set(members.values_list("external_id", flat=True)) and len(chosen) == 40


@pytest.mark.parametrize("body, field", [
    ({"budget": -1}, "budget"),
    ({"max_contacts": -1}, "max_contacts"),
    ({"max_contacts": 2.5}, "max_contacts"),
    ({"cost_per_contact": "cheap"}, "cost_per_contact"),
    ({"value_per_conversion": -40}, "value_per_conversion"),
    ({"segment": "nope"}, "segment"),
    ({"model_version": 0}, "model_version"),
    ({"model_version": 10**12}, "model_version"),
])
def test_a_bad_list_request_is_a_400_naming_the_field(api, body, field):
    # Refused before the service looks for a model, so no champion is needed.
    response = api.post(lists_path(campaign_make()), body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field], response.json()
    assert not TargetingList.objects.exists()


def test_a_model_of_another_campaign_or_kind_is_refused(api, champion):
    response_model = ModelVersion.objects.create(
        campaign=champion.campaign, kind="response", estimator="propensity_to_buy",
        target_metric="purchase_30d", status="ready")
    response = api.post(lists_path(champion.campaign), {"model_version": response_model.id},
                        format="json")
    assert response.json()["error"]["fields"] == {
        "model_version": ["must be an uplift model of this campaign"]}
    other = campaign_make()
    response = api.post(lists_path(other), {"model_version": champion.id}, format="json")
    assert response.status_code == 400 and "model_version" in response.json()["error"]["fields"]
    assert not TargetingList.objects.exists()


def test_a_campaign_without_a_champion_gets_a_400(api):
    campaign = campaign_make(key="winter")
    response = api.post(lists_path(campaign), {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"model_version": [
        "campaign winter has no champion uplift model; train one first"]}


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/campaigns/nope/target-lists/"),
    ("post", "/api/v1/campaigns/nope/target-lists/"),
    ("get", "/api/v1/target-lists/999/"),
    ("get", "/api/v1/target-lists/999/entries/"),
    ("get", "/api/v1/target-lists/999/csv/"),
])
def test_unknown_campaigns_and_lists_are_json_404s(api, method, path):
    # The CSV download answers errors in JSON even to a client that asked for CSV.
    accept = "text/csv" if path.endswith("/csv/") else "application/json"
    response = getattr(api, method)(path, HTTP_ACCEPT=accept)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_a_read_key_may_download_but_not_create(reader, api, champion):
    created = api.post(lists_path(champion.campaign), {"max_contacts": 5}, format="json").json()
    download = reader.get(f"/api/v1/target-lists/{created['id']}/csv/")
    assert download.status_code == 200
    assert len(b"".join(download.streaming_content).decode().splitlines()) == 6
    assert reader.post(lists_path(champion.campaign), {}, format="json").status_code == 403
