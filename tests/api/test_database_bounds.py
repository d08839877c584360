"""Time bounds on every database interaction (issue 6): a row lock held elsewhere, a slow
statement, an exhausted pool and a database that refuses connections answer 409 or 503 with
`Retry-After`, never a hang or a 500; writers queued on one locked account leave the pool to
everyone else; the service serves again by itself when the database is back.

Each scenario runs an app of its own, with short limits, on one event loop with a second
connection that holds the locks. Time bounds here are generous deadlines, not benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx2 as httpx
import pytest

from accounts_api.app import create_app
from accounts_api.auth import tokens
from accounts_api.db import embedded, migrate
from accounts_api.settings import Settings
from tests.api.money_checks import assert_ledger_explains_balances
from tests.conftest import BASE_URL, JSONAPI, SECRET, Db, run, scratch_database, settings_for

PREFIX = "/api/rest/admin"
OPENING = Decimal(100)
OUTAGE_DATABASE = "accounts_api_test_outage"
LOCK_TIMEOUT = {
    "title": "Conflict",
    "detail": "The record is being changed by another request; retry in a moment.",
    "code": "409",
    "status": "409",
}
UNAVAILABLE = {
    "title": "Service Unavailable",
    "detail": "The database is unavailable or overloaded; retry later.",
    "code": "503",
    "status": "503",
}

Scenario = Callable[[httpx.AsyncClient, asyncpg.Connection], Awaitable[Any]]


def run_app(settings: Settings, token: str, scenario: Scenario) -> Any:
    """`scenario` gets a client of an app of its own and a connection to hold locks with."""
    assert settings.database_url is not None
    url = settings.database_url

    async def main() -> Any:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Accept": JSONAPI, "Content-Type": JSONAPI, "Authorization": token}
            async with httpx.AsyncClient(
                transport=transport, base_url=BASE_URL, headers=headers, timeout=60
            ) as client:
                holder = await asyncpg.connect(url)
                try:
                    return await scenario(client, holder)
                finally:
                    await holder.close()

    return asyncio.run(main())


def correction(account_id: int, delta: str) -> bytes:
    body = {
        "data": {
            "type": "balance-correction",
            "id": str(account_id),
            "attributes": {"correction": delta},
        }
    }
    return json.dumps(body).encode()


def rename(account_id: int, name: str) -> bytes:
    body = {"data": {"type": "accounts", "id": str(account_id), "attributes": {"name": name}}}
    return json.dumps(body).encode()


async def lock_account(holder: asyncpg.Connection, account_id: int) -> asyncpg.Transaction:
    transaction = holder.transaction()
    await transaction.start()
    await holder.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", account_id)
    return transaction


async def until(condition: Callable[[], Awaitable[bool]], what: str, deadline: float = 30) -> None:
    ends = time.monotonic() + deadline
    while not await condition():
        assert time.monotonic() < ends, f"{what} did not happen within {deadline} s"
        await asyncio.sleep(0.02)


def has_lock_waiter(holder: asyncpg.Connection) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        # the holder is inside a transaction, which would otherwise see one snapshot
        await holder.execute("SELECT pg_stat_clear_snapshot()")
        waiting: int = await holder.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return waiting > 0

    return check


@pytest.fixture
def accounts(make_account: Callable[..., dict[str, Any]], db: Db) -> list[int]:
    made = [int(make_account(name=f"bounded-{index}")["id"]) for index in range(2)]
    for account_id in made:
        db.set_balance(account_id, OPENING)
    return made


def test_a_row_locked_past_the_lock_timeout_answers_409_and_other_reads_go_on(
    database_url: str, token: str, accounts: list[int], db: Db
) -> None:
    locked, other = accounts

    async def scenario(client: httpx.AsyncClient, holder: asyncpg.Connection) -> Any:
        transaction = await lock_account(holder, locked)
        try:
            write = asyncio.create_task(
                client.patch(f"{PREFIX}/accounts/{locked}", content=rename(locked, "renamed"))
            )
            await until(has_lock_waiter(holder), "the write's lock wait")
            reads = [
                await client.get(f"{PREFIX}/accounts/{other}"),
                await client.get(f"{PREFIX}/timezones/UTC"),
                await client.get(f"{PREFIX}/accounts/{locked}"),  # reads take no row lock
            ]
            return await write, reads
        finally:
            await transaction.rollback()

    settings = settings_for(database_url, pool_size=4, lock_timeout=1.0)
    write, reads = run_app(settings, token, scenario)

    assert write.status_code == 409, write.text
    assert write.json() == {"errors": [LOCK_TIMEOUT]}
    assert write.headers["retry-after"] == "1"
    assert [read.status_code for read in reads] == [200, 200, 200]
    assert db.fetchval("SELECT name FROM accounts WHERE id = $1", locked) == "bounded-0"


def test_a_statement_past_the_statement_timeout_answers_503(
    database_url: str, token: str, accounts: list[int], db: Db
) -> None:
    locked = accounts[0]

    async def scenario(client: httpx.AsyncClient, holder: asyncpg.Connection) -> Any:
        transaction = await lock_account(holder, locked)
        try:
            return await client.patch(
                f"{PREFIX}/accounts/{locked}/balance-correction", content=correction(locked, "5")
            )
        finally:
            await transaction.rollback()

    # the statement's time runs out before the lock wait's
    settings = settings_for(database_url, pool_size=4, statement_timeout=0.5, lock_timeout=20.0)
    response = run_app(settings, token, scenario)

    assert response.status_code == 503, response.text
    assert response.json() == {"errors": [UNAVAILABLE]}
    assert response.headers["retry-after"] == "5"
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", locked) == OPENING


def test_an_exhausted_pool_answers_503_instead_of_waiting_forever(
    database_url: str, token: str, accounts: list[int], db: Db
) -> None:
    locked = accounts[0]

    async def scenario(client: httpx.AsyncClient, holder: asyncpg.Connection) -> Any:
        transaction = await lock_account(holder, locked)
        try:
            # the pool's only connection waits on the lock
            write = asyncio.create_task(
                client.patch(
                    f"{PREFIX}/accounts/{locked}/balance-correction",
                    content=correction(locked, "5"),
                )
            )
            await until(has_lock_waiter(holder), "the write's lock wait")
            starved = await client.get(f"{PREFIX}/timezones/UTC")
        finally:
            await transaction.rollback()
        return starved, await write

    settings = settings_for(database_url, pool_size=1, acquire_timeout=0.5, lock_timeout=20.0)
    starved, write = run_app(settings, token, scenario)

    assert starved.status_code == 503, starved.text
    assert starved.json() == {"errors": [UNAVAILABLE]}
    assert starved.headers["retry-after"] == "5"
    # the write went on once the lock was released
    assert write.status_code == 200, write.text
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", locked) == OPENING + 5


def test_thirty_writers_queued_on_a_locked_account_leave_the_pool_to_everyone_else(
    database_url: str, token: str, accounts: list[int], db: Db
) -> None:
    locked, other = accounts
    writers = 30

    async def scenario(client: httpx.AsyncClient, holder: asyncpg.Connection) -> Any:
        transaction = await lock_account(holder, locked)
        try:
            writes = [
                asyncio.create_task(
                    client.patch(
                        f"{PREFIX}/accounts/{locked}/balance-correction",
                        content=correction(locked, "1"),
                    )
                )
                for _ in range(writers)
            ]
            await until(has_lock_waiter(holder), "a write's lock wait")
            await asyncio.sleep(0.2)  # the rest have queued behind it
            # while every writer still waits, other requests get connections at once
            reads = [
                await client.get(path)
                for path in (
                    f"{PREFIX}/accounts/{other}",
                    f"{PREFIX}/timezones/UTC",
                    f"{PREFIX}/contractors",
                    f"{PREFIX}/accounts",
                )
            ]
            pending = sum(not write.done() for write in writes)
        finally:
            await transaction.rollback()
        return reads, pending, await asyncio.gather(*writes)

    # a pool of 3: without the queue, three writers would hold it all and reads would 503
    settings = settings_for(database_url, pool_size=3, acquire_timeout=1.0, lock_timeout=30.0)
    reads, pending, writes = run_app(settings, token, scenario)

    assert [read.status_code for read in reads] == [200, 200, 200, 200]
    assert pending == writers
    assert [write.status_code for write in writes] == [200] * writers
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", locked) == OPENING + writers
    assert_ledger_explains_balances(db)


# -- the database refusing connections, then coming back -----------------------------------


@pytest.fixture
def outage_database(database_url: str) -> Iterator[tuple[str, str]]:
    """A migrated database of its own, with an admin and a token for it: this scenario
    closes the database to connections, which the shared test database must never be."""
    with scratch_database(database_url, OUTAGE_DATABASE) as url:
        migrate.upgrade(url)

        async def make_admin() -> int:
            connection = await asyncpg.connect(url)
            try:
                admin_id: int = await connection.fetchval(
                    "INSERT INTO admin_users (username, password_hash) VALUES ('outage', 'x')"
                    " RETURNING id"
                )
                return admin_id
            finally:
                await connection.close()

        yield url, tokens.issue(run(make_admin()), SECRET, None)


def test_a_database_that_refuses_connections_answers_503_then_serves_again(
    database_url: str, outage_database: tuple[str, str]
) -> None:
    url, token = outage_database
    name = OUTAGE_DATABASE
    admin_url = embedded.with_database(database_url, "postgres")
    login = json.dumps({"auth": {"username": "outage", "password": "wrong"}}).encode()

    async def scenario(client: httpx.AsyncClient, holder: asyncpg.Connection) -> Any:
        before = await client.get(f"{PREFIX}/timezones/UTC")
        await holder.close()
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                name,
            )
            down = [
                await client.get(f"{PREFIX}/timezones/UTC"),
                await client.get(f"{PREFIX}/accounts"),
                await client.post(
                    f"{PREFIX}/auth", content=login, headers={"Content-Type": "application/json"}
                ),
                await client.get("/readyz"),
            ]
            await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        finally:
            await admin.close()
        # back by itself: no restart, no intervention
        ends = time.monotonic() + 30
        while (after := await client.get(f"{PREFIX}/timezones/UTC")).status_code != 200:
            assert time.monotonic() < ends, f"still {after.status_code} after 30 s"
            await asyncio.sleep(0.2)
        return before, down, after, await client.get("/readyz")

    settings = settings_for(url, pool_size=4, acquire_timeout=2.0)
    before, down, after, ready = run_app(settings, token, scenario)

    assert before.status_code == 200, before.text
    assert [response.status_code for response in down] == [503, 503, 503, 503]
    for response in down[:3]:
        assert response.json() == {"errors": [UNAVAILABLE]}
        assert response.headers["retry-after"] == "5"
    assert after.status_code == 200
    assert ready.status_code == 200
