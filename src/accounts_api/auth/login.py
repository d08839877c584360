"""POST /api/rest/admin/auth: username and password in, a JWT out (contract §1.1).

Not a JSON:API endpoint: its bodies are `application/json; charset=utf-8`, and no answer may be
kept by a cache (issue 6: `Cache-Control: no-store`). Before any password is checked, the
throttle (auth/throttle.py) and the cap on checks (auth/passwords.py) may refuse the login.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from accounts_api import metrics
from accounts_api.auth import admins, throttle, tokens
from accounts_api.auth.addresses import ip_allowed, remote_ip
from accounts_api.auth.errors import (
    AuthenticationFailed,
    BadRequest,
    LoginRefused,
    Overloaded,
    TooManyFailures,
)
from accounts_api.auth.passwords import PasswordChecks
from accounts_api.db.pool import Database
from accounts_api.jsonapi.body import read_body
from accounts_api.jsonapi.errors import PayloadTooLarge
from accounts_api.settings import Network

JSON = "application/json; charset=utf-8"

INCORRECT = "Incorrect login or password."
IP_NOT_ALLOWED = "Your IP address is not allowed."


@dataclass(frozen=True)
class LoginPolicy:
    secret: str
    lifetime: int | None
    limits: throttle.Limits
    trusted_proxies: Sequence[Network]


def _json(document: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    # the middleware's cache-control gives way to this one (app.py)
    headers = {"cache-control": "no-store", **(headers or {})}
    return Response(msgspec.json.encode(document), status, headers, media_type=JSON)


def _refused(refusal: LoginRefused) -> Response:
    if isinstance(refusal, TooManyFailures):
        metrics.LOGINS_THROTTLED.labels(refusal.scope).inc()
    elif isinstance(refusal, Overloaded):
        metrics.LOGINS_OVERLOADED.inc()
    headers = {} if refusal.retry_after is None else {"retry-after": str(refusal.retry_after)}
    return _json(refusal.document(), refusal.status, headers)


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
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        return None
    auth = document.get("auth")
    if "auth" not in document and media_type == "application/json":
        # Rails wrap_parameters puts every top-level key of a JSON body under `auth`
        auth = document
    # params.require(:auth) refuses a missing or blank value
    return auth if isinstance(auth, dict) and auth else None


def login_endpoint(
    database: Callable[[Request], Database], policy: LoginPolicy, checks: PasswordChecks
) -> Callable[[Request], Any]:
    async def token(request: Request) -> str:
        body = await read_body(request)
        credentials = _credentials(request.headers.get("content-type", ""), body)
        if credentials is None:
            raise BadRequest("The required parameter, auth, is missing.")
        username, password = credentials.get("username"), credentials.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or "\x00" in username:
            raise AuthenticationFailed(INCORRECT)
        ip = remote_ip(request, policy.trusted_proxies)
        # a place first: a login refused for overload costs neither the database nor argon2
        with checks.place():
            async with database(request).acquire() as connection:
                counted = await throttle.attempt(connection, policy.limits, username, ip)
                admin = await admins.by_username(connection, username)
            # the hash check runs for unknown users too, so timing does not reveal who exists
            valid = await checks.verify(admin.password_hash if admin else None, password)
        if admin is None or not valid:
            raise AuthenticationFailed(INCORRECT)
        async with database(request).acquire() as connection:
            await throttle.succeeded(connection, counted)
        # contract §1.1: the IP is checked after the password
        if not ip_allowed(admin.allowed_ips, ip):
            raise AuthenticationFailed(IP_NOT_ALLOWED)
        key = tokens.signing_key(policy.secret, admin.token_key)
        return tokens.issue(admin.id, key, policy.lifetime)

    async def endpoint(request: Request) -> Response:
        try:
            return _json({"jwt": await token(request)}, 201)
        except LoginRefused as refusal:
            return _refused(refusal)
        except PayloadTooLarge as too_large:
            return _json({"errors": [too_large.as_dict()]}, 413)

    return endpoint
