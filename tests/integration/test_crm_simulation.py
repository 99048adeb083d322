"""A CRM integrating from the outside: HTTP against gunicorn, tasks on a real worker.

The CRM creates an experiment, pushes 10,000 customers, assigns all of
them, reports exposures and purchases, runs a background task and reads
the per-arm outcomes back, and checks them against what it sent.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.conf import settings

from core.api_keys import api_key_create
from tests.factories import attributes_declare
from tests.integration.conftest import BROKER, gunicorn_serving, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CUSTOMERS = 10_000


@pytest.fixture
def live_api(celery_worker_process):
    """gunicorn (2 workers) serving the test database, queuing tasks to the test worker."""
    with gunicorn_serving(log_name="test-gunicorn.log", workers=2, request_timeout=120,
                          ready_timeout=60, CELERY_BROKER_URL=BROKER,
                          CELERY_RESULT_BACKEND=BROKER,
                          # the test process's pseudonyms
                          PRIVACY_ID_KEY=settings.PRIVACY_ID_KEY) as base:
        yield base


class Crm:
    """The CRM side: a requests session holding its API key."""

    def __init__(self, base: str, key: str):
        self.base = f"{base}/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Api-Key {key}"

    def call(self, method: str, path: str, expect: int = 200, **kwargs) -> dict:
        response = self.http.request(method, f"{self.base}{path}", timeout=120, **kwargs)
        assert response.status_code == expect, (method, path, response.text[:2000])
        return response.json()


def test_a_crm_runs_an_experiment_through_the_api(live_api):
    attributes_declare()
    crm = Crm(live_api, api_key_create(name="crm", scope="write")[1])
    rng = random.Random(7)

    # Customers: 10,000 in one request, about 80 % with marketing consent.
    customers = [{"external_id": f"crm-{i:05d}", "marketing_consent": rng.random() < 0.8,
                  "attributes": {"age": rng.randint(18, 80),
                                 "channel": rng.choice(["web", "phone", "store"])}}
                 for i in range(CUSTOMERS)]
    assert crm.call("POST", "/customers/bulk/", json={"customers": customers}) == {
        "created": CUSTOMERS, "updated": 0, "unchanged": 0}

    # Campaign, segment and a running experiment.
    crm.call("POST", "/campaigns/", 201, json={
        "key": "autumn", "name": "Autumn", "channel": "email", "cost_per_contact": "0.05",
        "value_per_conversion": "40"})
    crm.call("POST", "/segments/", 201, json={
        "key": "web", "name": "Web", "rule": {"attr": "channel", "op": "eq", "value": "web"}})
    crm.call("POST", "/experiments/", 201, json={
        "campaign": "autumn", "key": "autumn_ab", "name": "Autumn A/B",
        "arms": [{"name": "control", "weight": 1, "is_control": True,
                  "contacts_customer": False}, {"name": "email", "weight": 1}],
        "metrics": [{"name": "purchase", "event_kind": "purchase", "aggregation": "converted",
                     "role": "primary"},
                    {"name": "revenue", "event_kind": "purchase", "aggregation": "sum"}]})
    assert crm.call("POST", "/experiments/autumn_ab/start/")["status"] == "running"

    # Assign all 10,000 in one request: consenting customers get an arm.
    ids = [c["external_id"] for c in customers]
    result = crm.call("POST", "/experiments/autumn_ab/assignments/bulk/", json={"customers": ids})
    consenting = sum(c["marketing_consent"] for c in customers)
    assert result["assigned"] == result["created"] == consenting
    arm_of = {d["customer"]: d["arm"] for d in result["decisions"] if d["arm"]}
    refused = {d["reason"] for d in result["decisions"] if not d["arm"]}
    assert refused == {"no marketing consent"}
    # The single-customer call agrees with the bulk one.
    one = crm.call("POST", "/experiments/autumn_ab/assignments/", json={"customer": ids[0]})
    assert one["arm"] == arm_of.get(ids[0]) and one["created"] is False
    assert abs(sum(a == "email" for a in arm_of.values()) / len(arm_of) - 0.5) < 0.03

    # The e-mail arm is sent the e-mail (exposures); purchases follow.
    now = datetime.now(UTC)
    sent = [{"customer": c, "exposed_at": (now + timedelta(minutes=1)).isoformat(),
             "idempotency_key": f"send-{c}"} for c, arm in arm_of.items() if arm == "email"]
    assert crm.call("POST", "/experiments/autumn_ab/exposures/",
                    json={"exposures": sent})["created"] == len(sent)
    rate = {"control": 0.10, "email": 0.15}
    buyers = {c: round(rng.uniform(10, 90), 2) for c, arm in arm_of.items()
              if rng.random() < rate[arm]}
    events = [{"customer": c, "kind": "purchase", "value": value,
               "occurred_at": (now + timedelta(hours=2)).isoformat(),
               "idempotency_key": f"order-{c}", "properties": {"sku": "A-12"}}
              for c, value in buyers.items()]
    events += [{"customer": c, "kind": "visit", "occurred_at": (now + timedelta(hours=1)).isoformat()}
               for c in ids[:2_000]]
    half = len(events) // 2
    first = crm.call("POST", "/events/bulk/", json={"source": "shop", "events": events[:half]})
    assert first == {"created": half, "duplicates": 0}
    # A retried delivery of the whole batch only adds the missing half.
    again = crm.call("POST", "/events/bulk/", json={"source": "shop", "events": events})
    keyed_first_half = sum(1 for e in events[:half] if "idempotency_key" in e)
    assert again["duplicates"] == keyed_first_half
    # A bad batch is refused whole, naming the row.
    bad = crm.call("POST", "/events/bulk/", 400, json={"events": [
        events[0], {**events[1], "customer": "nobody"}]})
    assert [r["index"] for r in bad["error"]["rows"]] == [1]

    # A background task on the real worker, followed through the task endpoint.
    run = crm.call("POST", "/segments/web/count/", 202)

    def finished(task_id: int):
        task = crm.call("GET", f"/tasks/{task_id}/")
        return task if task["status"] in {"succeeded", "failed"} else None

    task = wait_for(lambda: finished(run["id"]), timeout=120)
    assert task["status"] == "succeeded", task["error"]
    assert task["result"]["members"] == sum(c["attributes"]["channel"] == "web" for c in customers)

    # Per-arm outcomes, computed by the database, match what the CRM sent.
    outcomes = {a["arm"]: a for a in crm.call("GET", "/experiments/autumn_ab/outcomes/")["arms"]}
    for arm in ("control", "email"):
        members = [c for c, a in arm_of.items() if a == arm]
        assert outcomes[arm]["n"] == len(members)
        purchase = outcomes[arm]["metrics"]["purchase"]
        assert purchase["sum_y"] == sum(1 for c in members if c in buyers)
        revenue = outcomes[arm]["metrics"]["revenue"]
        assert revenue["sum_y"] == pytest.approx(sum(buyers.get(c, 0.0) for c in members))

    # The analysis, run on the worker: its sample sizes are the assignments the CRM got.
    analysis = crm.call("POST", "/experiments/autumn_ab/analyse/", 202)
    task = wait_for(lambda: finished(analysis["id"]), timeout=120)
    assert task["status"] == "succeeded", task["error"]
    latest = crm.call("GET", "/experiments/autumn_ab/results/latest/")
    assert latest["id"] == task["result"]["analysis_result_id"]
    assert latest["payload"]["sample_sizes"] == dict(Counter(arm_of.values()))
    assert latest["customers"] == consenting
    # 15% against 10% on about 4,000 customers an arm is a z of about 7: ship the e-mail.
    assert latest["decision"] == "ship" and latest["payload"]["decision"]["arm"] == "email"

    # Reading every assignment back through the cursor pages.
    seen, path = 0, "/experiments/autumn_ab/assignments/?page_size=1000"
    while path:
        page = crm.call("GET", path)
        seen += len(page["results"])
        path = page["next"] and page["next"].split("/api/v1", 1)[1]
    assert seen == consenting

    assert crm.call("POST", "/experiments/autumn_ab/stop/")["status"] == "stopped"
