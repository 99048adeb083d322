"""API test clients: one per credential kind, and a clean throttle cache."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from marketing.models import ApiKey
from marketing.services import api_key_create
from tests.factories import attributes_declare


@pytest.fixture(autouse=True)
def _clean_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def client_with_key(scope: str) -> APIClient:
    _, raw = api_key_create(name=f"crm-{scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


@pytest.fixture
def api(db) -> APIClient:
    """A client holding a write-scope API key, with the test attributes declared."""
    attributes_declare()
    return client_with_key(ApiKey.Scope.WRITE)


@pytest.fixture
def reader(db) -> APIClient:
    return client_with_key(ApiKey.Scope.READ)


def rows_of(response) -> dict[int, dict]:
    """{index: errors} of a rows_rejected response."""
    body = response.json()["error"]
    assert body["code"] == "rows_rejected", body
    return {row["index"]: row["errors"] for row in body["rows"]}
