"""One JSON error format; bad input is a 4xx, never a 500."""

import json
from unittest import mock

import pytest
from django.db import IntegrityError
from django.test import override_settings

from core.api.errors import flatten_errors

pytestmark = pytest.mark.django_db


def post_raw(client, path: str, body: bytes | str):
    return client.generic("POST", path, body, content_type="application/json")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields", "rows"}
    assert body["error"]["code"] == code
    return body["error"]


def test_flatten_names_nested_paths():
    detail = {"arms": [{}, {"weight": ["too small"]}], "name": ["required"],
              "metrics": {2: {"role": ["bad"]}}, "rule": {"all": [{"op": ["bad"]}]},
              "non_field_errors": ["whole"]}
    assert flatten_errors(detail) == {
        "arms[1].weight": ["too small"], "name": ["required"], "metrics[2].role": ["bad"],
        "rule.all[0].op": ["bad"], "non_field_errors": ["whole"]}


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "JSON parse error"),
    (b'{"external_id": "a\\u0000b"}', "NUL"),
    (b'{"external_id": "a\\ud800b"}', "surrogate"),
    (b'{"external_id": "c1", "x": NaN}', "NaN"),
    (b'{"external_id": "c1", "x": 1e999}', "out of range"),
    (b'{"external_id": "c1", "x": 123456789012345678901234567890}', "64-bit"),
    (b"\xff\xfe", "JSON parse error"),
    (("[" * 40 + "]" * 40).encode(), "nested"),
])
def test_it_rejects_bodies_the_database_could_not_store(api, body, fragment):
    error = assert_error(post_raw(api, "/api/v1/customers/", body), 400, "parse_error")
    assert fragment in error["message"]


def test_escaped_text_that_is_fine_passes(api):
    response = post_raw(api, "/api/v1/customers/", b'{"external_id": "Jos\\u00e9 \\ud83d\\ude00"}')
    assert response.status_code == 201
    assert response.json()["external_id"] == "Jos\u00e9 \U0001f600"


def test_it_refuses_a_body_over_the_limit_with_413(api):
    with override_settings(API_MAX_BODY_BYTES=1024):
        body = json.dumps({"customers": [{"external_id": f"c{i}"} for i in range(200)]})
        assert_error(post_raw(api, "/api/v1/customers/bulk/", body), 413, "too_large")


def test_a_wrong_content_type_is_415(api):
    response = api.generic("POST", "/api/v1/customers/", "external_id=c1",
                           content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_a_wrong_method_is_405(api):
    assert_error(api.delete("/api/v1/customers/"), 405, "method_not_allowed")


def test_an_unknown_api_path_is_a_json_404(api):
    assert_error(api.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert_error(api.get("/api/v1/tasks/99999999999999999999999/"), 404, "not_found")
    assert_error(api.get("/api/v1/customers/a%00b/"), 404, "not_found")


def test_a_service_validation_error_keeps_its_field_paths(api):
    response = api.post("/api/v1/segments/", {
        "key": "s", "name": "S", "rule": {"all": [{"attr": "age", "op": "between", "value": 1}]},
    }, format="json")
    error = assert_error(response, 400, "invalid")
    assert list(error["fields"]) == ["rule.all[0].op"]


def test_an_integrity_race_is_a_409(api):
    with mock.patch("marketing.api.views.customers_upsert_bulk",
                    side_effect=IntegrityError("duplicate key")):
        response = api.post("/api/v1/customers/", {"external_id": "c1"}, format="json")
    assert_error(response, 409, "conflict")


@pytest.mark.parametrize("query", [
    "updated_after=yesterday", "updated_after=0001-01-01T00:00:00%2B01:00", "erased=maybe",
])
def test_bad_filters_are_400_with_the_parameter_named(api, query):
    error = assert_error(api.get(f"/api/v1/customers/?{query}"), 400, "invalid")
    assert list(error["fields"]) == [query.split("=")[0]]


def test_a_bad_cursor_is_400_and_a_bad_page_size_falls_back(api):
    # More crafted cursors, on every paged list: tests/api/test_cursors.py.
    assert "cursor" in assert_error(api.get("/api/v1/customers/?cursor=zzz"), 400,
                                    "invalid")["fields"]
    assert api.get("/api/v1/customers/?page_size=-3").status_code == 200
