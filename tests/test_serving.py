"""The server's connections answer without Nagle's delay (accounts_api/serving.py)."""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

from accounts_api import serving


class SocketTransport:
    def __init__(self, sock: socket.socket):
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default


def test_no_delay_sets_tcp_nodelay_on_an_accepted_connection() -> None:
    # a listener created without naming TCP, as uvicorn's multi-worker mode does
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                serving.no_delay(SocketTransport(accepted))  # type: ignore[arg-type]
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                client.sendall(b"x")


def test_no_delay_leaves_unix_sockets_alone() -> None:
    left, right = socket.socketpair()
    with left, right:
        serving.no_delay(SocketTransport(left))  # type: ignore[arg-type]


def test_the_server_runs_uvloop_and_httptools_protocol_with_no_delay() -> None:
    # both are dependencies on Linux (pyproject.toml)
    from uvicorn.importer import import_from_string

    assert sys.platform != "linux" or serving.event_loop() == "uvloop"
    protocol = import_from_string(serving.http_protocol())
    assert protocol.__name__ == "NoDelayHttpToolsProtocol" or sys.platform != "linux"
    assert "connection_made" in vars(protocol)


def test_access_log_lines_hide_tokens() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/rest/admin/accounts?token=eyJ.abc.def&page=2", "1.1", 200),
        None,
    )

    assert serving.RedactTokens().filter(record)

    assert record.getMessage() == (
        '127.0.0.1:5000 - "GET /api/rest/admin/accounts?token=[FILTERED]&page=2 HTTP/1.1" 200'
    )
