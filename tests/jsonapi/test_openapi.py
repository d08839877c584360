"""The OpenAPI document against what the app serves (issue 8): every route and method, every
filter the query parser takes, every sort field and include path, and a valid document.
No database: the app is built, not started."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route
from tests.conftest import settings_for

from accounts_api.app import create_app
from accounts_api.jsonapi.declaration import Resource, underscore
from accounts_api.jsonapi.errors import JsonApiError
from accounts_api.jsonapi.filters import accepted_names, resolve_filter
from accounts_api.jsonapi.openapi import UndescribedRoute, openapi_path
from accounts_api.jsonapi.query import QueryParser
from accounts_api.jsonapi.routing import ResourceRoute, RouteKind
from accounts_api.resources import REGISTRY


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app(settings_for("postgresql://unused/"))


@pytest.fixture(scope="module")
def document(app: Starlette) -> dict[str, Any]:
    built: dict[str, Any] = app.state.openapi.build(app.routes)
    return built


def _lists(app: Starlette) -> Iterator[tuple[ResourceRoute, str]]:
    for route in app.routes:
        if isinstance(route, ResourceRoute) and route.kind in (
            RouteKind.COLLECTION,
            RouteKind.NESTED,
        ):
            yield route, openapi_path(route.path)


def _parameters(document: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    found = {}
    for parameter in document["paths"][path][method].get("parameters", []):
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].split("/")[-1]]
        found[parameter["name"]] = parameter
    return found


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_served_route_and_method_is_described(
    app: Starlette, document: dict[str, Any]
) -> None:
    served = 0
    for route in app.routes:
        assert isinstance(route, Route), route
        path = openapi_path(route.path)
        methods = {method.lower() for method in route.methods or ()}
        # Starlette answers HEAD wherever it answers GET; the GET describes both
        assert "head" not in methods or "get" in methods, path
        for method in methods - {"head"}:
            assert method in document["paths"].get(path, {}), f"{method.upper()} {path}"
            served += 1
    described = sum(len(item) for item in document["paths"].values())
    assert described == served


def test_a_route_nobody_described_fails_the_build(app: Starlette) -> None:
    async def endpoint(request: Any) -> Any:
        raise AssertionError("not called")

    routes = [*app.routes, Route("/api/rest/admin/undescribed", endpoint, methods=["GET"])]
    with pytest.raises(UndescribedRoute, match="undescribed"):
        app.state.openapi.build(routes)


def test_every_filter_the_parser_takes_is_a_parameter_of_its_list(
    app: Starlette, document: dict[str, Any]
) -> None:
    checked = 0
    for route, path in _lists(app):
        resource = route.resource
        documented = {
            name[len("filter[") : -1]
            for name in _parameters(document, path)
            if name.startswith("filter[")
        }
        assert accepted_names(resource) <= documented, path
        # and nothing is documented that the parser refuses
        for name in documented:
            resolve_filter(resource, name, "1")
        checked += len(documented)
    assert checked > 100


def _parser(resource: Resource) -> QueryParser:
    return QueryParser(resource, REGISTRY)


def test_sort_include_and_fields_list_what_the_parser_takes(
    app: Starlette, document: dict[str, Any]
) -> None:
    for route, path in _lists(app):
        resource = route.resource
        parameters = _parameters(document, path)
        sorts = parameters["sort"]["schema"]["items"]["enum"]
        for name in sorts:
            _parser(resource).parse(f"sort={name}", index=True)
        sortable = {
            a.name for a in resource.attributes if resource.sort_sql(a.name) is not None
        } | set(resource.extra_sorts)
        assert sortable <= {underscore(name) for name in sorts}, path
        for include in (
            parameters.get("include", {}).get("schema", {}).get("items", {}).get("enum", [])
        ):
            assert _parser(resource).parse(f"include={include}", index=True).include
        for name, parameter in parameters.items():
            if name.startswith("fields["):
                fields = ",".join(parameter["schema"]["items"]["enum"])
                _parser(resource).parse(f"{name}={fields}", index=True)
        if resource.paginated:
            assert {"page[number]", "page[size]"} <= set(parameters)
            assert parameters["page[size]"]["schema"]["maximum"] == 1000


def test_a_fieldset_takes_at_least_one_field(document: dict[str, Any]) -> None:
    # schemathesis sent `fields[accounts]=` as the document allowed; the parser refuses it
    parameters = _parameters(document, "/api/rest/admin/accounts")
    assert parameters["fields[accounts]"]["schema"]["minItems"] == 1
    with pytest.raises(JsonApiError):
        _parser(REGISTRY["accounts"]).parse("fields[accounts]=", index=True)


def test_writes_take_the_declared_members(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    create = schemas["accounts.create"]["properties"]["data"]
    assert "balance" not in create["properties"]["attributes"]["properties"]
    assert {"name", "currency"} <= set(create["properties"]["attributes"]["required"])
    assert create["properties"]["relationships"]["required"] == ["contractor"]
    update = schemas["accounts.update"]["properties"]["data"]
    # an update may send back what it read: read-only attributes say they must be unchanged
    for read_only in ("currency", "balance"):
        described = update["properties"]["attributes"]["properties"][read_only]["description"]
        assert described == "Read-only: accepted only when equal to the stored value."
    assert "name" in update["properties"]["attributes"]["properties"]
    assert {"links", "meta"} <= set(update["properties"])
    assert "id" in update["required"]
    # write-only values are never in an answer's schema
    smtp = schemas["smtp-connections"]["properties"]["attributes"]["properties"]
    assert "auth-password" not in smtp
    assert (
        "auth-password"
        in schemas["smtp-connections.create"]["properties"]["data"]["properties"]["attributes"][
            "properties"
        ]
    )


def test_errors_headers_and_auth_are_described(document: dict[str, Any]) -> None:
    paths = document["paths"]
    member = paths["/api/rest/admin/accounts/{key}"]
    assert {"400", "401", "404", "406", "409", "412", "413", "415", "422", "503"} <= set(
        member["patch"]["responses"]
    )
    assert "412" not in paths["/api/rest/admin/contractors/{key}"]["patch"]["responses"]
    immutable = paths["/api/rest/admin/payments/{key}/relationships/account"]["patch"]
    assert "403" in immutable["responses"]
    login = paths["/api/rest/admin/auth"]["post"]
    assert login["security"] == []
    assert {"201", "401", "429", "503"} <= set(login["responses"])
    assert paths["/api/rest/admin/openapi.json"]["get"]["security"] == []
    assert document["security"] == [{"jwt": []}, {"token": []}]
    assert "ignored" in document["components"]["securitySchemes"]["jwt"]["description"]
    for path in ("/healthz", "/readyz"):
        assert paths[path]["get"]["security"] == []
