"""Each HTTP request timed once and reported twice (issue 9): to the request metrics
(metrics.py) and to the access log (`accounts_api.access`, in the format of logs.py).

The outermost middleware, so that what it sees is what the client got: every answer, the 500
of ResponseHeaders and the refusals of the request bounds included. What inner layers learn is
read once the answer is sent: the endpoint the router matched (Starlette's router writes it into
the request's scope, which no layer copies; the app maps each endpoint to its path template
once), and from `scope["state"]` the request id (request_ids.py) and the authenticated admin
(auth/policy.py).

An access line has the request's fields as well as its message: request_id, admin_id (when
authenticated), method, route, path, status, duration_ms and client (the address behind
trusted proxies, as the audit log has it). The query string is in the message only, with
`?token=` redacted (logs.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounts_api import metrics
from accounts_api.auth.addresses import remote_ip
from accounts_api.settings import Network

access_log = logging.getLogger("accounts_api.access")


class Observation:
    def __init__(self, app: ASGIApp, routes: Mapping[Any, str], trusted_proxies: Sequence[Network]):
        self.app = app
        self.routes = dict(routes)
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # the one state dict of the request, before any layer copies the scope
        scope.setdefault("state", {})
        # until an answer starts: an exception that escapes every handler is a 500
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_observed)
        finally:
            seconds = time.perf_counter() - started
            route = self.routes.get(scope.get("endpoint"), metrics.UNMATCHED)
            metrics.observe_request(route, scope["method"], status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                self.log(scope, route, status, seconds)

    def log(self, scope: Scope, route: str, status: int, seconds: float) -> None:
        state = scope["state"]
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        client = remote_ip(scope, self.trusted_proxies) or None
        milliseconds = round(seconds * 1000, 3)
        fields: dict[str, Any] = {
            "request_id": state.get("request_id"),
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": milliseconds,
            "client": client,
        }
        admin_id = state.get("admin_id")
        if admin_id is not None:
            fields["admin_id"] = admin_id
        access_log.info(
            '%s "%s %s" %d %.1f ms',
            client or "-",
            method,
            f"{path}?{query}" if query else path,
            status,
            milliseconds,
            extra=fields,
        )
