"""The request's id (contract §6.1: `x-request-id`), decided once per request: the client's own,
stripped of anything but letters, digits, `_`, `@` and `-` and cut to 255 characters, else a
new UUID. It is kept in `scope["state"]["request_id"]`, where the answer's header
(app.ResponseHeaders) and the access log (observation.py) both read it."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

_JUNK = re.compile(r"[^A-Za-z0-9_@-]")


def request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            incoming = _JUNK.sub("", value.decode("latin-1"))[:255]
            return incoming or str(uuid.uuid4())
    return str(uuid.uuid4())


class RequestId:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["request_id"] = request_id(scope)
        await self.app(scope, receive, send)
