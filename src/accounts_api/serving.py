"""How the server runs: uvicorn with uvloop and httptools where they are installed (they are
dependencies on Linux and macOS), and TCP_NODELAY on every connection.

With several workers uvicorn binds the listening socket itself, without naming the TCP
protocol, and asyncio then leaves Nagle's algorithm on for the accepted connections: a
response written as headers, then body, waits for the client's delayed ACK, 40 ms per
request on a keep-alive connection (measured: 23 requests/s on one connection instead of
3,900). Setting the option per connection makes both modes answer at once.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def no_delay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport)
        super().connection_made(transport)


def http_protocol() -> str:
    """The import string of the HTTP protocol class for uvicorn."""
    if importlib.util.find_spec("httptools") is not None:
        return "accounts_api.serving_httptools:NoDelayHttpToolsProtocol"
    return "accounts_api.serving:NoDelayH11Protocol"


def event_loop() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
