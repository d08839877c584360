"""Real servers and workers for the delivery tests: an SMTP server (aiosmtpd), an HTTP
receiver that records what it is sent, and a delivery worker in a thread of its own."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from accounts_api.delivery.worker import DeliveryConfig, Worker
from tests.conftest import free_port

# generous: the machine has two cores and runs other work beside the tests
DEADLINE = 60.0


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


# -- SMTP ------------------------------------------------------------------------------


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: Message
    login: tuple[str, str] | None


class SmtpServer:
    """aiosmtpd on a free loopback port, recording every message it accepts. With `users`, it
    offers AUTH (without TLS, as a test may) and accepts those logins only."""

    def __init__(self, users: dict[str, str] | None = None):
        self.port = free_port()
        self.mails: list[Mail] = []
        self.users = users
        kwargs: dict[str, Any] = {}
        if users is not None:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.users is not None
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = data.login.decode(), data.password.decode()
        if self.users.get(user) != password:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=(user, password))

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        login = session.auth_data if isinstance(session.auth_data, tuple) else None
        self.mails.append(
            Mail(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                message_from_bytes(content),
                login,
            )
        )
        return "250 OK"

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


# -- HTTP ------------------------------------------------------------------------------


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """An HTTP server on a loopback port that records every POST. `answer(webhook_id, n)`
    gives the status for the n-th request (from 1) with that id; `stall_first` holds the very
    first request until `release()`; `delay` is spent on each request, to widen the window in
    which two senders could overlap; `overlaps` counts requests for an id already in flight."""

    port: int = field(default_factory=free_port)
    answer: Callable[[str, int], int] = lambda webhook_id, n: 200
    delay: float = 0.0
    stall_first: bool = False
    requests: list[Request] = field(default_factory=list)
    overlaps: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _in_flight: Counter[str] = field(default_factory=Counter)
    _seen: Counter[str] = field(default_factory=Counter)
    _stalled: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        webhook_id = headers.get("webhook-id", "")
        with self._lock:
            first = not self._stalled.is_set()
            self._stalled.set()
            if self._in_flight[webhook_id]:
                self.overlaps += 1
            self._in_flight[webhook_id] += 1
            self._seen[webhook_id] += 1
            status = self.answer(webhook_id, self._seen[webhook_id])
            self.requests.append(Request(headers, body, status))
        try:
            if first and self.stall_first:
                self._release.wait(DEADLINE)
            if self.delay:
                time.sleep(self.delay)
            handler.send_response(status)
            handler.send_header("content-length", "0")
            handler.end_headers()
        except OSError:
            pass  # the sender is gone (killed mid-request)
        finally:
            with self._lock:
                self._in_flight[webhook_id] -= 1

    @property
    def stalled(self) -> bool:
        return self.stall_first and self._stalled.is_set()

    def release(self) -> None:
        self._release.set()

    def by_id(self) -> dict[str, list[Request]]:
        with self._lock:
            grouped: dict[str, list[Request]] = {}
            for request in self.requests:
                grouped.setdefault(request.webhook_id, []).append(request)
            return grouped

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- a worker --------------------------------------------------------------------------

# quick retries and polls, so that the tests of retries take a fraction of a second
QUICK = DeliveryConfig(retry_base=0.05, timeout=5.0, poll_interval=0.1, senders=2)


class WorkerThread:
    """A delivery worker with an event loop (and connections) of its own, in a thread."""

    def __init__(self, database_url: str, config: DeliveryConfig = QUICK):
        self.worker = Worker(database_url, config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._started.set()
            await self.worker.run()

        try:
            asyncio.run(main())
        except BaseException as error:
            self.error = error
            self._started.set()

    def start(self) -> None:
        self.thread.start()
        assert self._started.wait(DEADLINE)

    def stop(self) -> None:
        if self.loop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "the worker did not stop"
        assert self.error is None, repr(self.error)


@contextmanager
def worker_running(database_url: str, config: DeliveryConfig = QUICK) -> Iterator[WorkerThread]:
    thread = WorkerThread(database_url, config)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()
