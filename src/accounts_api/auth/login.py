"""POST /api/rest/admin/auth: username and password in, a JWT out (contract §1.1).

Not a JSON:API endpoint: its bodies are `application/json; charset=utf-8`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from accounts_api.auth import admins, tokens
from accounts_api.auth.addresses import ip_allowed, remote_ip
from accounts_api.auth.passwords import verify_password
from accounts_api.jsonapi.body import read_body
from accounts_api.jsonapi.errors import PayloadTooLarge
from accounts_api.settings import Network

JSON = "application/json; charset=utf-8"

INCORRECT = "Incorrect login or password."
IP_NOT_ALLOWED = "Your IP address is not allowed."


def _json(document: dict[str, Any], status: int) -> Response:
    return Response(msgspec.json.encode(document), status_code=status, media_type=JSON)


def _failure(detail: str) -> Response:
    error = {"title": "Authentication failed", "detail": detail, "code": "401", "status": "401"}
    return _json({"errors": [error]}, 401)


def _bad_request(detail: str) -> Response:
    error = {"title": "Bad Request", "detail": detail, "code": "400", "status": "400"}
    return _json({"errors": [error]}, 400)


def _credentials(content_type: str, body: bytes) -> dict[str, Any] | None:
    """`{"auth": {...}}` as JSON or form fields; plain JSON may omit the wrapper (Rails
    wrap_parameters)."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return (
            {
                "username": fields.get("auth[username]"),
                "password": fields.get("auth[password]"),
            }
            if "auth[username]" in fields or "auth[password]" in fields
            else None
        )
    try:
        document = msgspec.json.decode(body) if body.strip() else {}
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise ValueError("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        return None
    auth = document.get("auth")
    if "auth" not in document and media_type == "application/json":
        # Rails wrap_parameters puts every top-level key of a JSON body under `auth`
        auth = document
    # params.require(:auth) refuses a missing or blank value
    return auth if isinstance(auth, dict) and auth else None


def login_endpoint(
    pool: Callable[[Request], asyncpg.Pool],
    secret: Callable[[], str],
    lifetime: int | None,
    trusted_proxies: Sequence[Network],
) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            body = await read_body(request)
        except PayloadTooLarge as too_large:
            return _json({"errors": [too_large.as_dict()]}, 413)
        try:
            credentials = _credentials(request.headers.get("content-type", ""), body)
        except ValueError as error:
            return _bad_request(str(error))
        if credentials is None:
            return _bad_request("The required parameter, auth, is missing.")
        username, password = credentials.get("username"), credentials.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or "\x00" in username:
            return _failure(INCORRECT)
        admin = await admins.by_username(pool(request), username)
        # the hash check runs for unknown users too, so timing does not reveal who exists
        valid = await run_in_threadpool(
            verify_password, admin.password_hash if admin else None, password
        )
        if admin is None or not valid:
            return _failure(INCORRECT)
        # contract §1.1: the IP is checked after the password
        if not ip_allowed(admin.allowed_ips, remote_ip(request, trusted_proxies)):
            return _failure(IP_NOT_ALLOWED)
        key = tokens.signing_key(secret(), admin.token_key)
        return _json({"jwt": tokens.issue(admin.id, key, lifetime)}, 201)

    return endpoint
