"""Forwarded headers count only from a trusted proxy (issue 6).

`X-Forwarded-For/-Host/-Proto/-Port`, `X-Real-IP` and `Forwarded` tell who the client is and
which URL it used, and anyone can send them. This middleware removes them from requests whose
direct peer is not in ACCOUNTS_API_TRUSTED_PROXIES, so that every reader downstream (the links'
base URL, the IP allow-list, the audit log's address) is right by construction.

`accounts-api serve` turns uvicorn's own proxy handling off: it would replace the peer with an
X-Forwarded-For address before this rule sees it.

The headers are replaced in the request's own scope, not in a copy: the layers outside this one
read what the router wrote into it (observation.py: the matched endpoint).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from accounts_api.auth.addresses import is_trusted
from accounts_api.settings import Network

FORWARDED_HEADERS = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-real-ip",
        b"forwarded",
    }
)


class TrustedProxies:
    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[Network]):
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.forwarded(scope["headers"]):
            client = scope.get("client")
            if not (client and is_trusted(client[0], self.trusted_proxies)):
                scope["headers"] = [
                    (name, value)
                    for name, value in scope["headers"]
                    if name.lower() not in FORWARDED_HEADERS
                ]
        await self.app(scope, receive, send)

    @staticmethod
    def forwarded(headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether any forwarded header came (most requests: none, and no peer to judge)."""
        return any(name.lower() in FORWARDED_HEADERS for name, _ in headers)
