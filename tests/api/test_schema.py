"""The OpenAPI schema: valid, warning-free, every operation with examples and auth."""

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    # --validate checks it against the OpenAPI 3 meta-schema; --fail-on-warn makes
    # any view spectacular had to guess about a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_has_a_response_example_and_writes_a_request_example(schema):
    missing = []
    for name, operation in operations(schema):
        success = [r for code, r in operation["responses"].items() if code.startswith("2")]
        # Any media type: the targeting list's CSV download documents a text/csv example.
        if not any(media.get("examples") for r in success
                   for media in r.get("content", {}).values()):
            missing.append(f"{name}: response")
        body = operation.get("requestBody")
        if body and not body["content"]["application/json"].get("examples"):
            missing.append(f"{name}: request")
    assert missing == []


def test_the_csv_download_documents_its_media_type_and_json_errors(schema):
    responses = schema["paths"]["/api/v1/target-lists/{id}/csv/"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["text/csv"]
    assert list(responses["404"]["content"]) == ["application/json"]


def test_every_operation_needs_credentials_and_documents_the_error_format(schema):
    for name, operation in operations(schema):
        assert operation["security"] == [{"ApiKeyAuth": []}, {"cookieAuth": []}], name
        for code in ("401", "403", "429"):
            ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/Error"), name


def test_the_schema_lists_the_endpoints_of_the_issue(schema):
    paths = set(schema["paths"])
    for path in ["/api/v1/customers/bulk/", "/api/v1/events/bulk/", "/api/v1/segments/",
                 "/api/v1/campaigns/", "/api/v1/experiments/{key}/start/",
                 "/api/v1/experiments/{key}/stop/", "/api/v1/experiments/{key}/assignments/",
                 "/api/v1/experiments/{key}/assignments/bulk/",
                 "/api/v1/experiments/{key}/exposures/", "/api/v1/experiments/{key}/conversions/",
                 "/api/v1/tasks/{id}/", "/api/v1/customers/{external_id}/erase/",
                 "/api/v1/customers/{external_id}/export/",
                 "/api/v1/experiments/{key}/analyse/", "/api/v1/experiments/{key}/results/",
                 "/api/v1/experiments/{key}/results/latest/",
                 "/api/v1/experiments/{key}/results/{id}/", "/api/v1/experiments/{key}/train/",
                 "/api/v1/campaigns/{key}/train-response/",
                 "/api/v1/campaigns/{key}/target-lists/", "/api/v1/model-versions/",
                 "/api/v1/model-versions/{id}/", "/api/v1/model-versions/{id}/score/",
                 "/api/v1/model-versions/{id}/scores/",
                 "/api/v1/customers/{external_id}/scores/", "/api/v1/target-lists/{id}/",
                 "/api/v1/target-lists/{id}/entries/", "/api/v1/target-lists/{id}/csv/"]:
        assert path in paths


def test_the_schema_and_swagger_ui_are_served_without_a_cdn():
    client = APIClient()
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200 and response.json()["openapi"].startswith("3.")
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr.net" not in html
