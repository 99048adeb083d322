"""API keys in the admin: listed without their secret, revoked by the service."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from core.api_keys import api_key_create
from core.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-123456"))
    return client


def test_the_list_shows_name_prefix_and_scope_but_no_secret(admin_client):
    key, raw = api_key_create(name="shop", scope="write")
    html = admin_client.get(reverse("admin:core_apikey_changelist")).content.decode()
    assert "shop" in html and key.prefix in html and "Read and write" in html
    assert raw.split(".")[1] not in html and key.secret_hash not in html
    page = admin_client.get(reverse("admin:core_apikey_change", args=[key.id]))
    assert page.status_code == 200 and key.secret_hash not in page.content.decode()
    assert admin_client.get(reverse("admin:core_apikey_add")).status_code == 403


def test_deactivate_revokes_the_selected_keys_at_once(admin_client):
    shop, raw = api_key_create(name="shop", scope="write")
    crm, _ = api_key_create(name="crm")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get("/api/v1/customers/").status_code == 200  # now cached
    admin_client.post(reverse("admin:core_apikey_changelist"),
                      {"action": "deactivate", "_selected_action": [shop.id]})
    assert dict(ApiKey.objects.values_list("name", "is_active")) == {"shop": False, "crm": True}
    assert client.get("/api/v1/customers/").status_code == 401
