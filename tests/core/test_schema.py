"""The OpenAPI schema: valid, warning-free, with the contract's paths and the error shape."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings_and_validates() -> None:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    assert schema["openapi"].startswith("3.")


def test_schema_documents_contract_paths_and_the_error_body(client: Client) -> None:
    schema = yaml.safe_load(client.get("/api/schema/").content)
    for path in ("/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/me", "/health"):
        assert path in schema["paths"], path
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert operation["responses"]["4XX"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }


def test_nested_serializers_get_distinct_component_names(client: Client) -> None:
    names = set(yaml.safe_load(client.get("/api/schema/").content)["components"]["schemas"])
    assert {"TokenInputRequest", "RegisterInputRequest", "TokenOutput", "HealthOutput"} <= names


def test_api_docs_page_loads_swagger_from_our_static_files(client: Client) -> None:
    html = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
