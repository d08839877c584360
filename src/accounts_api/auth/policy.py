"""The admin authentication policy for JSON:API endpoints (contract §1.3).

The token comes from `?token=` (or a top-level `token` in a JSON body), else the last
word of `Authorization`. A rejected request gets 401 with a JSON:API error body; Yeti
sends an empty body (docs/compatibility.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from starlette.requests import Request

from accounts_api.auth import admins, tokens
from accounts_api.auth.addresses import audit_ip, ip_allowed, remote_ip
from accounts_api.db.pool import Connection
from accounts_api.jsonapi.body import read_body
from accounts_api.jsonapi.declaration import Context
from accounts_api.jsonapi.errors import AuthenticationRequired
from accounts_api.settings import Network


class JwtAuthenticator:
    def __init__(self, secret: str, lifetime: int | None, trusted_proxies: Sequence[Network]):
        self.secret = secret
        self.lifetime = lifetime
        self.trusted_proxies = trusted_proxies

    async def __call__(self, request: Request, connection: Connection) -> Context:
        token = await _token(request) or ""
        try:
            admin = await admins.by_id(connection, tokens.subject(token))
            if admin is None:
                raise AuthenticationRequired()
            # the admin's own key: a revocation changed it (auth/tokens.py)
            tokens.verify(token, tokens.signing_key(self.secret, admin.token_key), self.lifetime)
        except tokens.InvalidToken:
            raise AuthenticationRequired() from None
        # contract §1.3: the allow-list is checked again on every request
        if not ip_allowed(admin.allowed_ips, remote_ip(request, self.trusted_proxies)):
            raise AuthenticationRequired()
        # issue 9: the access log says who made the request (request.state is the scope's,
        # which the outer middleware reads once the answer is sent)
        request.state.admin_id = admin.id
        return Context(admin_id=admin.id, ip=audit_ip(request, self.trusted_proxies))


async def _token(request: Request) -> str | None:
    if "token" in request.query_params:
        # contract §1.3: even an empty ?token= wins over the header
        return request.query_params["token"]
    if request.method in ("POST", "PATCH", "PUT"):
        body = await read_body(request)
        if b'"token"' in body:
            try:
                document = msgspec.json.decode(body)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                document = None
            token = document.get("token") if isinstance(document, dict) else None
            if isinstance(token, str):
                return token
    header = request.headers.get("authorization", "").split()
    return header[-1] if header else None
