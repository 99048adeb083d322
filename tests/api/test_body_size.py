"""Bodies up to API_MAX_BODY_BYTES reach the API; larger ones get its JSON 413."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings

from marketing.models import Event
from tests.factories import T0, customer_make

pytestmark = pytest.mark.django_db


def realistic_events(customers: list[str], n: int) -> list[dict]:
    return [{"customer": customers[i % len(customers)], "kind": "purchase", "value": 20.5 + i % 7,
             "idempotency_key": f"order-{i:08d}",
             "occurred_at": (T0 + timedelta(minutes=i)).isoformat(),
             "properties": {"sku": f"SKU-{i % 977:06d}", "channel": "web",
                            "basket": [f"item-{j}" for j in range(5)],
                            "page": "/checkout/confirm?step=3&ref=newsletter-2026"}}
            for i in range(n)]


def test_a_10000_event_bulk_over_djangos_default_limit_is_accepted(api):
    customers = [customer_make().external_id for _ in range(20)]
    body = json.dumps({"source": "shop", "events": realistic_events(customers, 10_000)})
    assert len(body) > 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE default
    response = api.generic("POST", "/api/v1/events/bulk/", body, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert response.json() == {"created": 10_000, "duplicates": 0}
    assert Event.objects.count() == 10_000


def test_a_body_over_the_api_limit_is_a_json_413_naming_the_limit(api):
    with override_settings(API_MAX_BODY_BYTES=100_000):
        body = json.dumps({"customers": [{"external_id": f"c{i}"} for i in range(10_000)]})
        response = api.generic("POST", "/api/v1/customers/bulk/", body,
                               content_type="application/json")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert "100000 bytes" in error["message"] and "API_MAX_BODY_BYTES" in error["message"]


def test_the_admin_keeps_djangos_limit(admin_client):
    body = "x=" + "a" * (settings.FORM_MAX_BODY_BYTES + 1)
    response = admin_client.generic("POST", "/admin/login/", body,
                                    content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
