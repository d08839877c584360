"""Test harness: a real PostgreSQL (DATABASE_URL, else an embedded server under var/test-pg),
the real ASGI app, and a client that validates every JSON:API document it receives."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx2 as httpx
import jsonschema
import pytest
import uvicorn
from starlette.testclient import TestClient

from accounts_api.app import create_app
from accounts_api.auth import tokens
from accounts_api.auth.passwords import hash_password
from accounts_api.db import embedded, migrate, pool
from accounts_api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-key-that-is-long-enough-for-hs256"
JSONAPI = "application/vnd.api+json"
BASE_URL = "http://api.example.com"
ADMIN_PASSWORD = "password"

SCHEMA = json.loads((Path(__file__).parent / "support" / "jsonapi-1.0-schema.json").read_text())
_validator = jsonschema.Draft6Validator(SCHEMA)

# Tables emptied between tests, children first; the default currency and admins stay.
# (ledger_entries refuses DELETE by design; it is truncated.)
TABLES = (
    "webhook_attempts",
    "webhook_deliveries",
    "email_deliveries",
    "outbox",
    "event_subscriptions",
    "balance_notifications",
    "idempotency_keys",
    "login_throttle",
    "transactions",
    "payments",
    "services",
    "audit_log",
    "account_balance_notification_settings",
    "accounts",
    "invoice_templates",
    "contacts",
    "contractors",
    "smtp_connections",
)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def on_server(url: str, *statements: str) -> None:
    """Statements that act on databases (CREATE, DROP), run in the server's `postgres`
    database of `url`."""

    async def execute() -> None:
        connection = await asyncpg.connect(embedded.with_database(url, "postgres"))
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    run(execute())


# pytest-xdist (`make test` runs two workers): each worker gets a database of its own, named
# after the one it would otherwise use, on the same server
WORKER = os.environ.get("PYTEST_XDIST_WORKER")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL")
    if configured and WORKER is None:
        migrate.upgrade(configured)
        yield configured
        return
    if configured:
        server_url = configured
        name = f"{urlsplit(configured).path.lstrip('/')}_{WORKER}"
    else:
        server_url = embedded.start(ROOT / "var" / "test-pg", database="postgres")
        name = "accounts_api_test" + (f"_{WORKER}" if WORKER else "")
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    on_server(server_url, drop, f'CREATE DATABASE "{name}"')
    url = embedded.with_database(server_url, name)
    migrate.upgrade(url)
    yield url
    if configured:
        # a database of the CI server's, made for this worker
        on_server(server_url, drop)


class Db:
    """Direct SQL for arranging and inspecting state, on one connection of its own, kept open
    on an event loop of its own for the whole session (a connection per call cost more than
    most statements). A connection that was closed under it is opened again."""

    def __init__(self, url: str):
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._connection: asyncpg.Connection | None = None

    async def _connected(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self.url)
            await pool._init_connection(self._connection)
        return self._connection

    async def _call(self, method: str, sql: str, *args: Any) -> Any:
        connection = await self._connected()
        try:
            return await getattr(connection, method)(sql, *args)
        except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError):
            if not connection.is_closed():
                raise
            # terminated by a test (a backend killed, a database closed): nothing ran
            return await getattr(await self._connected(), method)(sql, *args)

    def _run(self, method: str, sql: str, *args: Any) -> Any:
        return self._loop.run_until_complete(self._call(method, sql, *args))

    def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            self._loop.run_until_complete(self._connection.close())
        self._loop.close()

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return self._run("fetch", sql, *args)  # type: ignore[no-any-return]

    def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return self._run("fetchrow", sql, *args)  # type: ignore[no-any-return]

    def fetchval(self, sql: str, *args: Any) -> Any:
        return self._run("fetchval", sql, *args)

    def execute(self, sql: str, *args: Any) -> str:
        return self._run("execute", sql, *args)  # type: ignore[no-any-return]

    def set_balance(self, account_id: int, balance: Any) -> None:
        """Arrange a balance the way the app must: with a ledger entry in the same
        transaction (the database refuses a balance the ledger does not explain)."""
        self.execute(
            "WITH moved AS (UPDATE accounts a SET balance = $2::numeric FROM accounts old"
            "  WHERE a.id = $1 AND old.id = a.id RETURNING a.id, a.balance, old.balance AS before)"
            " INSERT INTO ledger_entries (account_id, amount, balance_after, kind)"
            " SELECT id, balance - before, balance, 'correction' FROM moved",
            account_id,
            str(balance),
        )


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Db]:
    connected = Db(database_url)
    yield connected
    connected.close()


@pytest.fixture(scope="session")
def admin_id(db: Db) -> int:
    db.execute("DELETE FROM admin_users")
    return int(
        db.fetchval(
            "INSERT INTO admin_users (username, password_hash)"
            " VALUES ('test-admin', $1) RETURNING id",
            hash_password(ADMIN_PASSWORD),
        )
    )


class QueryLog:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, record: Any) -> None:
        self.queries.append(record.query)

    def reset(self) -> None:
        self.queries.clear()

    @property
    def count(self) -> int:
        return len(self.queries)


@pytest.fixture(scope="session")
def query_log() -> QueryLog:
    return QueryLog()


@pytest.fixture(scope="session")
def app_client(database_url: str, admin_id: int, query_log: QueryLog) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        data_dir=ROOT / "var" / "test-data",
        token_lifetime=None,
        pool_size=4,
        secret_key_env=SECRET,
        # short, so that tests of lock waits are quick; no other test waits this long
        lock_timeout=2.0,
    )
    original_init = pool._init_connection

    async def counting_init(connection: asyncpg.Connection) -> None:
        await original_init(connection)
        connection.add_query_logger(query_log)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pool, "_init_connection", counting_init)
        app = create_app(settings)
        with TestClient(app, base_url=BASE_URL, client=("127.0.0.1", 50000)) as client:
            yield client


def validate_document(response: httpx.Response) -> None:
    """Every JSON:API body must be a valid JSON:API 1.0 document."""
    if response.content and response.headers.get("content-type") == JSONAPI:
        _validator.validate(response.json())


class Api:
    """An HTTP client speaking JSON:API as a Yeti client would, authenticated by default."""

    def __init__(self, client: TestClient, token: str):
        self.client = client
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        params: Any = None,
    ) -> httpx.Response:
        sent = {"Accept": JSONAPI}
        if method in ("POST", "PATCH", "PUT"):
            sent["Content-Type"] = JSONAPI
        if auth:
            sent["Authorization"] = self.token
        sent.update(headers or {})
        if json_body is not None:
            content = json.dumps(json_body).encode()
        response = self.client.request(method, path, content=content, headers=sent, params=params)
        validate_document(response)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json_body=body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json_body=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, json_body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def token(admin_id: int) -> str:
    return tokens.issue(admin_id, SECRET, None)


@pytest.fixture
def api(app_client: TestClient, token: str, clean_database: None) -> Api:
    return Api(app_client, token)


def empty_database(db: Db) -> None:
    """Every table emptied; the default currency and the admins stay."""
    db.execute(
        "TRUNCATE ledger_entries; "
        + "; ".join(f"DELETE FROM {table}" for table in TABLES)
        + "; DELETE FROM currencies WHERE id <> 0"
        + "; UPDATE currencies SET name = 'USD', rate = 1, rate_provider_id = NULL WHERE id = 0"
    )


@pytest.fixture
def clean_database(db: Db) -> None:
    empty_database(db)


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """The test app's settings with some changed, for an app of a test's own."""
    settings = Settings(
        database_url=database_url,
        data_dir=ROOT / "var" / "test-data",
        token_lifetime=None,
        pool_size=2,
        secret_key_env=SECRET,
    )
    return dataclasses.replace(settings, **overrides)


@contextmanager
def client_for(settings: Settings, peer: str = "127.0.0.1") -> Iterator[TestClient]:
    """Another instance of the app, running until the block ends, whose requests come from
    `peer` (the direct peer, as a proxy or a client connecting to the server would be)."""
    with TestClient(create_app(settings), base_url=BASE_URL, client=(peer, 50000)) as client:
        yield client


@contextmanager
def scratch_database(database_url: str, name: str) -> Iterator[str]:
    """A database of its own on the test server, empty, dropped afterwards (even when a test
    closed it to connections): for scenarios the shared test database must not go through."""
    drop = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    on_server(database_url, drop, f"CREATE DATABASE {name}")
    try:
        yield embedded.with_database(database_url, name)
    finally:
        on_server(database_url, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true", drop)


RESTRICTED = "restricted-admin"
RESTRICTED_PASSWORD = "restricted-password"


@contextmanager
def an_admin(
    db: Db, username: str, password: str, allowed_ips: list[str] | None = None
) -> Iterator[int]:
    """An admin of the test database besides the session's, for the block; its id."""
    db.execute("DELETE FROM admin_users WHERE username = $1", username)
    admin = int(
        db.fetchval(
            "INSERT INTO admin_users (username, password_hash, allowed_ips)"
            " VALUES ($1, $2, $3::cidr[]) RETURNING id",
            username,
            hash_password(password),
            allowed_ips,
        )
    )
    try:
        yield admin
    finally:
        db.execute("DELETE FROM admin_users WHERE id = $1", admin)


@pytest.fixture
def restricted_admin(db: Db, admin_id: int) -> Iterator[int]:
    """A second admin allowed only from 10.0.0.0/8 (contract §1.4)."""
    with an_admin(db, RESTRICTED, RESTRICTED_PASSWORD, ["10.0.0.0/8"]) as admin:
        yield admin
    db.execute("DELETE FROM login_throttle")


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# generous: the machine has two cores and runs other work beside the tests
SERVER_DEADLINE = 60.0


def wait_until(condition: Callable[[], bool], timeout: float = SERVER_DEADLINE) -> bool:
    """Polls `condition` until it holds or `timeout` seconds have passed; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def lock_waiters(db: Db) -> int:
    """Sessions of the test database waiting for a lock, now. Inside a transaction PostgreSQL
    keeps its first reading of pg_stat_activity until the transaction ends
    (stats_fetch_consistency): a test holding the lock in `db` must clear that snapshot to see
    a waiter arrive."""
    db.execute("SELECT pg_stat_clear_snapshot()")
    return int(
        db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )


@pytest.fixture(scope="module")
def server_url(database_url: str, admin_id: int) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread of the test process, on the
    test database: for real clients and browsers, which speak HTTP over a socket."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings_for(database_url)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_DEADLINE
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(SERVER_DEADLINE)
