"""The server's connections answer without Nagle's delay (accounts_api/serving.py), and its
HTTP protocol stops reading a request head past the limits (serving_httptools.py)."""

from __future__ import annotations

import json
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from accounts_api import serving as server
from tests.conftest import SECRET
from tests.test_cli import Service, serving


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
                server.no_delay(SocketTransport(accepted))  # type: ignore[arg-type]
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                client.sendall(b"x")


def test_no_delay_leaves_unix_sockets_alone() -> None:
    left, right = socket.socketpair()
    with left, right:
        server.no_delay(SocketTransport(left))  # type: ignore[arg-type]


def test_the_server_runs_uvloop_and_httptools_protocol_with_no_delay() -> None:
    # both are dependencies on Linux (pyproject.toml)
    from uvicorn.importer import import_from_string

    assert sys.platform != "linux" or server.event_loop() == "uvloop"
    protocol = import_from_string(server.http_protocol())
    assert protocol.__name__ == "NoDelayHttpToolsProtocol" or sys.platform != "linux"
    assert "connection_made" in vars(protocol)


# -- a bounded request head, on the real server (serving_httptools.py) ---------------------


@pytest.fixture(scope="module")
def service(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = serving(
        tmp_path_factory.mktemp("serve"), DATABASE_URL=database_url, ACCOUNTS_API_SECRET_KEY=SECRET
    )
    yield running
    running.stop(signal.SIGTERM)


def exchange(service: Service, *chunks: bytes) -> tuple[bytes, int]:
    """Sends `chunks` on one connection until the server stops reading; returns what it
    answered and how many bytes it took."""
    sent = 0
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as connection:
        try:
            for chunk in chunks:
                connection.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while part := connection.recv(65536):
                answer += part
        except ConnectionResetError:
            pass
    return answer, sent


def test_a_64_mb_header_is_refused_after_its_first_kilobytes(service: Service) -> None:
    head = b"GET /api/rest/admin/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: "
    megabyte = b"a" * 1024 * 1024

    answer, sent = exchange(service, head, *([megabyte] * 64))

    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["errors"][0]["code"] == "431"
    # the server closed the connection long before the 64 MB were sent
    assert sent < 64 * len(megabyte)


def test_a_64_mb_request_line_is_refused_after_its_first_kilobytes(service: Service) -> None:
    line = b"GET /api/rest/admin/accounts?filter[name_cont]="
    megabyte = b"a" * 1024 * 1024

    answer, sent = exchange(service, line, *([megabyte] * 64), b" HTTP/1.1\r\nHost: x\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 414 URI Too Long\r\n"), answer[:200]
    assert sent < 64 * len(megabyte)


def test_requests_within_the_limits_are_served_on_one_connection(service: Service) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 30_000 + b"\r\n\r\n"
    closing = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    # three heads of 30 KB each, well past the limit together: each is counted alone
    answer, _ = exchange(service, request, request, request, closing)

    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 4, answer[:500]


def test_a_hostile_content_type_is_answered_at_once(service: Service) -> None:
    # a backtracking parse of this held a worker for seconds (24 KB: 4.6 s)
    hostile = "a" + " " * 30_000 + "b"

    response = service.request(
        "POST", "/api/rest/admin/payments", headers={"Content-Type": hostile}, content=b"{}"
    )

    assert response.status_code == 401  # authentication comes first (contract §6.3)
