"""The admin authentication policy for JSON:API endpoints (contract §1.3).

The token comes from `?token=` (or a top-level `token` in a JSON body), else the last
word of `Authorization`. A rejected request gets 401 with a JSON:API error body; Yeti
sends an empty body (docs/compatibility.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from starlette.requests import Request

from accounts_api.auth import tokens
from accounts_api.auth.addresses import audit_ip, ip_allowed, remote_ip
from accounts_api.auth.admin_cache import AdminCache
from accounts_api.auth.admins import AdminUser
from accounts_api.db.pool import Connection
from accounts_api.jsonapi.body import read_body
from accounts_api.jsonapi.declaration import Context
from accounts_api.jsonapi.errors import AuthenticationRequired
from accounts_api.settings import Network

# tokens whose signature verified, at most this many kept (a valid token needs the secret)
MAX_VERIFIED = 4096


@dataclass(frozen=True)
class _Verified:
    """A token that verified against `token_key`'s signing key, and when it expires."""

    admin_id: int
    token_key: str | None
    exp: float | None


class JwtAuthenticator:
    """Issue 10: the admin comes from the process's cache (admin_cache.py), and a token whose
    signature verified is not verified again while its admin's `token_key` (what signed it) is
    unchanged; its `exp` is checked on every use."""

    def __init__(
        self,
        secret: str,
        lifetime: int | None,
        trusted_proxies: Sequence[Network],
        admins: AdminCache,
    ):
        self.secret = secret
        self.lifetime = lifetime
        self.trusted_proxies = trusted_proxies
        self.admins = admins
        self._verified: dict[str, _Verified] = {}

    async def __call__(self, request: Request, connection: Connection) -> Context:
        token = await _token(request) or ""
        admin = await self._admin(token, connection)
        # contract §1.3: the allow-list is checked again on every request
        if not ip_allowed(admin.allowed_ips, remote_ip(request, self.trusted_proxies)):
            raise AuthenticationRequired()
        # issue 9: the access log says who made the request (request.state is the scope's,
        # which the outer middleware reads once the answer is sent)
        request.state.admin_id = admin.id
        return Context(admin_id=admin.id, ip=audit_ip(request, self.trusted_proxies))

    async def _admin(self, token: str, connection: Connection) -> AdminUser:
        known = self._verified.get(token)
        if known is not None and not tokens.expired(known.exp):
            admin = await self.admins.by_id(connection, known.admin_id)
            if admin is not None and admin.token_key == known.token_key:
                return admin
        try:
            admin = await self.admins.by_id(connection, tokens.subject(token))
            if admin is None:
                raise AuthenticationRequired()
            # the admin's own key: a revocation changed it (auth/tokens.py)
            key = tokens.signing_key(self.secret, admin.token_key)
            exp = tokens.verify(token, key, self.lifetime)
        except tokens.InvalidToken:
            raise AuthenticationRequired() from None
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()
        self._verified[token] = _Verified(admin.id, admin.token_key, exp)
        return admin


async def _token(request: Request) -> str | None:
    # no query string, no ?token= (and no parsing of one)
    if request.scope.get("query_string") and "token" in request.query_params:
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
