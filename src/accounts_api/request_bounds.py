"""Bounds on what a request may make the server hold: the size of its headers (431) and of
its query string (414), answered as JSON:API errors before any work is done.

This middleware applies the exact limits to every request the app sees. The HTTP protocol
(serving_httptools.py) stops reading a request head that grows past them, so a 64 MB
header is refused after its first kilobytes instead of being buffered whole.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from accounts_api.jsonapi.errors import HeaderFieldsTooLarge, JsonApiError, UriTooLong
from accounts_api.jsonapi.responses import error_response

DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_MAX_QUERY_BYTES = 16 * 1024


def header_bytes(headers: list[tuple[bytes, bytes]]) -> int:
    """Names and values, as a proxy's header buffer counts them (without separators)."""
    return sum(len(name) + len(value) for name, value in headers)


class RequestBounds:
    def __init__(
        self,
        app: ASGIApp,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES,
    ):
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_query_bytes = max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                await error_response([refusal])(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> JsonApiError | None:
        if len(scope.get("query_string", b"")) > self.max_query_bytes:
            return UriTooLong(self.max_query_bytes)
        if header_bytes(scope["headers"]) > self.max_header_bytes:
            return HeaderFieldsTooLarge(self.max_header_bytes)
        return None
