"""API keys, scopes, staff sessions with role permissions, throttling."""

from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.core.management import call_command
from django.test import override_settings
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from core.api_keys import api_key_create, api_key_deactivate, api_key_verify
from core.models import ApiKey, AuditEntry
from marketing.models import Customer

pytestmark = pytest.mark.django_db


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_it_refuses_a_request_without_credentials_with_401():
    response = APIClient().get("/api/v1/customers/")
    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize("header", [
    "Api-Key nonsense", "Api-Key abc.def", "Api-Key .", "Api-Key ", "Api-Key \u00e9t\u00e9.x",
])
def test_it_refuses_an_invalid_key_with_401(header):
    api_key_create(name="crm", scope="write")
    response = APIClient().get("/api/v1/customers/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert error_code(response) == "authentication_failed"


def test_it_stores_only_a_hash_and_checks_the_secret():
    key, raw = api_key_create(name="crm", scope="read")
    prefix, secret = raw.split(".")
    assert key.prefix == prefix and secret not in key.secret_hash and len(key.secret_hash) == 64
    assert api_key_verify(raw) == key
    assert api_key_verify(f"{prefix}.{secret[:-1]}x") is None


def test_a_deactivated_key_is_refused_at_once():
    key, raw = api_key_create(name="crm", scope="write")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get("/api/v1/customers/").status_code == 200  # now cached
    api_key_deactivate(key=key)
    assert client.get("/api/v1/customers/").status_code == 401


def test_a_key_deactivated_elsewhere_is_refused_once_the_cache_expires():
    key, raw = api_key_create(name="crm", scope="write")
    assert api_key_verify(raw) == key
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)  # e.g. in the admin
    assert api_key_verify(raw) == key  # still cached, for up to API_KEY_CACHE_SECONDS
    with override_settings(API_KEY_CACHE_SECONDS=0):
        cache.clear()
        assert api_key_verify(raw) is None


def test_a_read_key_may_read_but_not_write(reader):
    assert reader.get("/api/v1/customers/").status_code == 200
    response = reader.post("/api/v1/customers/", {"external_id": "c1"}, format="json")
    assert response.status_code == 403
    assert "write scope" in response.json()["error"]["message"]
    assert not Customer.objects.exists()


def test_a_write_key_may_write_and_its_use_is_recorded(api):
    assert api.post("/api/v1/customers/", {"external_id": "c1"}, format="json").status_code == 201
    assert ApiKey.objects.get(name="crm-write").last_used_at is not None


def test_the_command_prints_a_working_key_once():
    out = StringIO()
    call_command("create_api_key", "shop", "--scope", "write", stdout=out)
    raw = next(line.split()[-1] for line in out.getvalue().splitlines() if "." in line.split()[-1])
    key = api_key_verify(raw)
    assert key is not None and key.name == "shop" and key.scope == "write"
    assert raw not in str(ApiKey.objects.values_list())
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target, entry.actor) == (
        "create", f"core.apikey {key.id}", "system:manage.py create_api_key")
    assert raw not in str(entry.detail)


def test_the_command_refuses_a_duplicate_name():
    api_key_create(name="shop")
    with pytest.raises(Exception, match="already exists"):
        call_command("create_api_key", "shop", stdout=StringIO())


def staff(*perms: str, is_staff: bool = True) -> APIClient:
    user = User.objects.create_user("ann", password="pw", is_staff=is_staff)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app,
                                                         codename=codename))
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def test_a_staff_session_needs_the_model_permission_for_each_method():
    viewer = staff("marketing.view_customer")
    assert viewer.get("/api/v1/customers/").status_code == 200
    response = viewer.post("/api/v1/customers/", {"external_id": "c1"}, format="json")
    assert response.status_code == 403
    assert "marketing.change_customer" in response.json()["error"]["message"]
    assert viewer.get("/api/v1/campaigns/").status_code == 403


def test_erasure_needs_the_delete_permission():
    Customer.objects.create(external_id="c1")
    editor = staff("marketing.view_customer", "marketing.change_customer")
    assert editor.post("/api/v1/customers/c1/erase/").status_code == 403


def test_a_session_of_a_non_staff_user_is_refused():
    client = staff("marketing.view_customer", is_staff=False)
    assert client.get("/api/v1/customers/").status_code == 403


def test_a_session_post_needs_a_csrf_token():
    user = User.objects.create_superuser("root", password="pw")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/v1/customers/", {"external_id": "c1"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def throttled(read: str):
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "read": read}
    return override_settings(REST_FRAMEWORK={**_rest_settings(), "DEFAULT_THROTTLE_RATES": rates})


def _rest_settings():
    from django.conf import settings
    return settings.REST_FRAMEWORK


def test_it_throttles_each_key_separately(reader):
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(name='other')[1]}")
    with throttled("3/min"):
        assert [reader.get("/api/v1/segments/").status_code for _ in range(4)] == [200] * 3 + [429]
        response = reader.get("/api/v1/segments/")
        assert error_code(response) == "throttled" and int(response["Retry-After"]) > 0
        assert other.get("/api/v1/segments/").status_code == 200


def schema_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, path parameters filled with their examples."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    example = next(iter(parameter["examples"].values()))["value"]
                    path = path.replace("{" + parameter["name"] + "}", str(example))
            operations.append((method.upper(), path))
    return operations


OPERATIONS = schema_operations()


@pytest.mark.parametrize("method, path", OPERATIONS)
def test_every_operation_needs_credentials(method, path):
    response = APIClient().generic(method, path, "{}", content_type="application/json")
    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


@pytest.mark.parametrize("method, path", [op for op in OPERATIONS if op[0] != "GET"])
def test_every_write_operation_refuses_a_read_key(reader, method, path):
    response = reader.generic(method, path, "{}", content_type="application/json")
    assert response.status_code == 403
    assert error_code(response) == "permission_denied"
