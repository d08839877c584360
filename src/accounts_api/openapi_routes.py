"""This app's OpenAPI document (issue 8): what the engine cannot know (the login, the balance
singletons, the probes, the document's own route) described here, and the route that serves
the document, built once from the app's route table.

Served as `application/json`: the media type every OpenAPI tool fetches without being told,
where `application/vnd.oai.openapi+json` is not yet understood by all of them.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accounts_api import reference_docs
from accounts_api.jsonapi.document import API_PREFIX
from accounts_api.jsonapi.endpoints import Api
from accounts_api.jsonapi.negotiation import MEDIA_TYPE
from accounts_api.jsonapi.openapi import (
    Operation,
    build_document,
    error_responses,
    ref,
    resource_schema,
    write_schema,
)
from accounts_api.resources.balances import BALANCE_CORRECTION, BALANCES

PATH = f"{API_PREFIX}/openapi.json"
CONTENT_TYPE = "application/json"
# the document changes only with a deployment
CACHE_CONTROL = "public, max-age=300"

INFO: dict[str, Any] = {
    "title": "accounts-api",
    "version": metadata.version("accounts-api"),
    "summary": "Billing accounts of a VoIP carrier switch, wire-compatible with the Yeti-Switch "
    "admin REST API (JSON:API 1.0).",
    "description": (
        "Every `/api/rest/admin` endpoint but the login speaks JSON:API 1.0 "
        "(`application/vnd.api+json`). Obtain a token with `POST /api/rest/admin/auth`, then "
        "send it on every request (see the security schemes). Every GET also answers HEAD. "
        "A method a path does not serve answers 405; an unknown path 404; an unexpected "
        "failure 500; all with a JSON:API error document."
    ),
}

SECURITY_SCHEMES: dict[str, Any] = {
    "jwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "The token from `POST /api/rest/admin/auth` in the `Authorization` header. As in "
            "Yeti (contract §1.3) the last word of the header is the token and the scheme word "
            "is ignored: `Authorization: <jwt>`, `Bearer <jwt>` and `Token <jwt>` all work. "
            'HS256, `sub` the admin id, `aud` ["admin"], `exp` when tokens expire.'
        ),
    },
    "token": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": (
            "The token as `?token=<jwt>` (or a top-level `token` in a JSON body). It wins over "
            "the header, even when empty (contract §1.3)."
        ),
    },
}

_JSON = "application/json"
_ERRORS_AS_JSON = {_JSON: {"schema": ref("schemas", "errors")}}
_CREDENTIALS = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
}


def _login() -> Operation:
    wrapped = {"type": "object", "required": ["auth"], "properties": {"auth": _CREDENTIALS}}
    refused = {
        "description": "",
        "content": _ERRORS_AS_JSON,
        "headers": {"Retry-After": ref("headers", "Retry-After")},
    }
    return {
        "operationId": "post_auth",
        "tags": ["auth"],
        "summary": "Obtain a token with a username and a password",
        "description": (
            "Not a JSON:API endpoint: answers are `application/json; charset=utf-8` and never "
            "cached. Failed logins are throttled per address and per user."
        ),
        "security": [],
        "requestBody": {
            "required": True,
            "content": {
                # with application/json the `auth` wrapper may be left out (Rails wrap_parameters)
                _JSON: {"schema": {"anyOf": [wrapped, _CREDENTIALS]}},
                MEDIA_TYPE: {"schema": wrapped},
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "auth[username]": {"type": "string"},
                            "auth[password]": {"type": "string"},
                        },
                    }
                },
            },
        },
        "responses": {
            "201": {
                "description": "The token.",
                "content": {
                    _JSON: {
                        "schema": {
                            "type": "object",
                            "required": ["jwt"],
                            "properties": {"jwt": {"type": "string"}},
                        }
                    }
                },
            },
            "400": {"description": "No `auth` credentials, or a body that is not JSON."},
            "401": {
                "description": "Incorrect login or password, or the IP is not allowed.",
                "content": _ERRORS_AS_JSON,
            },
            "413": {"description": "The body is larger than the server takes."},
            "429": {**refused, "description": "Too many failed logins; retry later."},
            "503": {**refused, "description": "Too many logins being checked, or no database."},
        },
    }


def _probe(operation_id: str, summary: str, ready: bool) -> Operation:
    status = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    responses: dict[str, Any] = {
        "200": {"description": "Up.", "content": {_JSON: {"schema": status}}},
    }
    if ready:
        responses["503"] = {
            "description": "The database is unreachable or its schema is not at the head.",
            "content": {_JSON: {"schema": status}},
            "headers": {"Retry-After": ref("headers", "Retry-After")},
        }
    return {
        "operationId": operation_id,
        "tags": ["operations"],
        "summary": summary,
        "security": [],
        "responses": responses,
    }


def _singleton(resource: Any, summary: str, description: str) -> Operation:
    """PUT or PATCH of a singleton that `data.id` addresses (contract §5.8, §5.9)."""
    document = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": resource_schema(resource)},
    }
    return {
        "tags": ["accounts"],
        "summary": summary,
        "description": description,
        "parameters": [
            {
                "name": "any",
                "in": "path",
                "required": True,
                "description": "Ignored, as in Yeti: `data.id` addresses the account.",
                "schema": {"type": "string"},
            },
            ref("parameters", "Idempotency-Key"),
            ref("parameters", "If-Match"),
        ],
        "requestBody": {
            "required": True,
            "content": {MEDIA_TYPE: {"schema": write_schema(resource, creating=False)}},
        },
        "responses": {
            "200": {
                "description": "The account's balance after the write.",
                "content": {MEDIA_TYPE: {"schema": document}},
            },
            **error_responses(400, 401, 404, 406, 409, 412, 413, 414, 415, 422, 431, 503),
        },
    }


def _reference_docs() -> dict[str, dict[str, Operation]]:
    """The docs page and the files it loads (reference_docs.py)."""
    assets = {
        content_type: {"schema": {"type": "string", "contentMediaType": content_type}}
        for content_type in sorted({a.content_type for a in reference_docs.assets().values()})
    }
    return {
        reference_docs.PATH: {
            "get": {
                "operationId": "get_docs",
                "tags": ["operations"],
                "summary": "This document, rendered for reading and trying (Swagger UI)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The page; its assets come from this service alone.",
                        "content": {reference_docs.CONTENT_TYPE: {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        f"{reference_docs.ASSETS_PATH}/{{name}}": {
            "get": {
                "operationId": "get_docs_asset",
                "tags": ["operations"],
                "summary": "A file the docs page loads, cacheable for a year",
                "security": [],
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "description": "As the page names it: with a digest of its content.",
                        "schema": {"type": "string", "enum": reference_docs.asset_names()},
                    }
                ],
                "responses": {
                    "200": {"description": "The file.", "content": assets},
                    **error_responses(404),
                },
            }
        },
    }


def _both(operation: Operation, operation_id: str) -> dict[str, Operation]:
    return {
        method: {**operation, "operationId": f"{method}_{operation_id}"}
        for method in ("patch", "put")
    }


def described_paths() -> dict[str, dict[str, Operation]]:
    """The path items of every route the engine does not build."""
    accounts = f"{API_PREFIX}/accounts/{{any}}"
    return {
        f"{API_PREFIX}/auth": {"post": _login()},
        "/healthz": {"get": _probe("get_healthz", "Is the process up (no database)", False)},
        "/readyz": {
            "get": _probe("get_readyz", "Can it serve: database reachable, schema at head", True)
        },
        PATH: {
            "get": {
                "operationId": "get_openapi",
                "tags": ["operations"],
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {CONTENT_TYPE: {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        **_reference_docs(),
        # issue 9: Prometheus' text exposition format, outside the API like the probes
        "/metrics": {
            "get": {
                "operationId": "get_metrics",
                "tags": ["operations"],
                "summary": "Metrics of every worker, for Prometheus",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The text exposition format (version 0.0.4).",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        f"{accounts}/balance": _both(
            _singleton(
                BALANCES,
                "Set the absolute balance of the account whose external id is data.id",
                "The difference is written to the ledger (contract §5.8).",
            ),
            "balance",
        ),
        f"{accounts}/balance-correction": _both(
            _singleton(
                BALANCE_CORRECTION,
                "Add a correction to the balance of the account whose id is data.id",
                "The correction is written to the ledger (contract §5.9).",
            ),
            "balance_correction",
        ),
    }


class OpenApiDocument:
    """The document of one app, built on first use from its route table, then kept."""

    def __init__(self, api: Api):
        self.api = api
        self._body: bytes | None = None

    def build(self, routes: list[BaseRoute]) -> dict[str, Any]:
        return build_document(
            routes,
            self.api.registry,
            info=INFO,
            described=described_paths(),
            security_schemes=SECURITY_SCHEMES,
            max_filter_values=self.api.max_filter_values,
        )

    def body(self, routes: list[BaseRoute]) -> bytes:
        if self._body is None:
            self._body = msgspec.json.encode(self.build(routes))
        return self._body

    async def endpoint(self, request: Request) -> Response:
        # no authentication: the document tells how to authenticate
        return Response(
            self.body(request.app.routes),
            media_type=CONTENT_TYPE,
            headers={"cache-control": CACHE_CONTROL},
        )

    def route(self) -> Route:
        return Route(PATH, self.endpoint, methods=["GET"])
