"""GET /api/rest/admin/openapi.json and `accounts-api openapi` (issue 8): served without a
token, and real answers validate against the schemas it gives."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from accounts_api import cli
from accounts_api.resources import REGISTRY
from tests.conftest import Api

OPENAPI = "/api/rest/admin/openapi.json"


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    response = api.client.get(OPENAPI)
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


@pytest.fixture
def account(make_account: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_account()


def conforms(document: dict[str, Any], schema_name: str, instance: Any) -> None:
    """`instance` is valid against components/schemas/<schema_name> of the document."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "$ref": f"#/components/schemas/{schema_name}",
    }
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(instance)


def test_served_without_a_token_and_cacheable(app_client: TestClient) -> None:
    response = app_client.get(OPENAPI)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.json()["openapi"] == "3.1.0"
    again = app_client.get(OPENAPI, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


def test_an_account_and_its_list_conform(
    api: Api, document: dict[str, Any], account: dict[str, Any]
) -> None:
    key = account["id"]
    shown = api.get(f"/api/rest/admin/accounts/{key}?include=contractor")
    assert shown.status_code == 200
    conforms(document, "accounts.document", shown.json())
    listed = api.get("/api/rest/admin/accounts?include=contractor,invoice-template")
    conforms(document, "accounts.collection", listed.json())
    sparse = api.get(f"/api/rest/admin/accounts/{key}?fields[accounts]=name,balance")
    conforms(document, "accounts.document", sparse.json())


def test_every_list_conforms(api: Api, document: dict[str, Any], account: dict[str, Any]) -> None:
    for resource in REGISTRY.values():
        response = api.get(f"/api/rest/admin/{resource.path}")
        assert response.status_code == 200, resource.path
        conforms(document, f"{resource.type}.collection", response.json())


def test_writes_and_errors_conform(api: Api, document: dict[str, Any], contractor_id: int) -> None:
    body = {
        "data": {
            "type": "accounts",
            "attributes": {"name": "openapi", "currency": "USD", "vat": "20"},
            "relationships": {"contractor": {"data": {"type": "contractors", "id": contractor_id}}},
        }
    }
    conforms(document, "accounts.create", body)
    created = api.post("/api/rest/admin/accounts", body)
    assert created.status_code == 201
    conforms(document, "accounts.document", created.json())
    missing = api.get("/api/rest/admin/accounts/999999")
    assert missing.status_code == 404
    conforms(document, "errors", missing.json())
    invalid = api.post("/api/rest/admin/accounts", {"data": {"type": "accounts"}})
    assert invalid.status_code == 422
    conforms(document, "errors", invalid.json())
    unauthenticated = api.get("/api/rest/admin/accounts", auth=False)
    conforms(document, "errors", unauthenticated.json())


def test_the_cli_writes_the_served_document(
    app_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    output = tmp_path / "openapi.json"
    assert cli.main(["openapi", "--output", str(output)]) == 0
    assert json.loads(output.read_text()) == app_client.get(OPENAPI).json()


@pytest.mark.parametrize(
    "resource_type", ["contractors", "contacts", "smtp-connections", "invoice-templates"]
)
def test_an_empty_create_is_refused_for_the_required_members(
    api: Api, document: dict[str, Any], resource_type: str
) -> None:
    data = document["components"]["schemas"][f"{resource_type}.create"]["properties"]["data"]
    required = {
        f"/data/attributes/{key}" for key in data["properties"]["attributes"].get("required", [])
    } | {
        f"/data/relationships/{key}"
        for key in data["properties"].get("relationships", {}).get("required", [])
    }
    path = REGISTRY[resource_type].path
    refused = api.post(f"/api/rest/admin/{path}", {"data": {"type": resource_type}})
    assert refused.status_code == 422
    pointers = {error["source"]["pointer"] for error in refused.json()["errors"]}
    assert pointers == required
