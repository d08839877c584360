"""Idempotency keys on writes (our extension, docs/compatibility.md): a retry with the same
`Idempotency-Key` replays the first answer instead of doing the write again.

The first answer's status and body are kept with a fingerprint of the request for 24 hours,
per admin user; a replay repeats them byte for byte with `Idempotent-Replayed: true`; the
same key with another request is 422; a retry while the first still runs waits for it, and
past the lock timeout answers 409; an unexpected failure (500) rolls the key back with the
write; requests without the header, and reads, are not affected."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx2 as httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from accounts_api.app import create_app
from accounts_api.auth import tokens
from accounts_api.settings import Settings
from tests.api.conftest import account_body
from tests.conftest import BASE_URL, JSONAPI, ROOT, SECRET, Api, Db, settings_for

PREFIX = "/api/rest/admin"
ACCOUNTS = f"{PREFIX}/accounts"
PAYMENTS = f"{PREFIX}/payments"
TRANSACTIONS = f"{PREFIX}/transactions"
CONTRACTORS = f"{PREFIX}/contractors"
EXTERNAL_ID = 900_000_000_500
OPENING = Decimal(100)
KEY = "retry-0001"

MakeAccount = Callable[..., dict[str, Any]]


def keyed(key: str = KEY) -> dict[str, str]:
    return {"Idempotency-Key": key}


def error(status: int, title: str, detail: str) -> dict[str, Any]:
    return {
        "errors": [{"title": title, "detail": detail, "code": str(status), "status": str(status)}]
    }


MISMATCH = error(
    422, "Unprocessable Request", "This Idempotency-Key was already used for a different request."
)
IN_FLIGHT = error(409, "Conflict", "A request with this Idempotency-Key is still being processed.")
BAD_KEY = error(400, "Bad Request", "Idempotency-Key must be 1 to 255 printable ASCII characters.")


def payment_body(account_id: object, amount: str = "10") -> dict[str, Any]:
    return {
        "data": {
            "type": "payments",
            "attributes": {"amount": amount, "notes": "topup"},
            "relationships": {"account": {"data": {"type": "accounts", "id": str(account_id)}}},
        }
    }


def transaction_body(account_id: object, amount: str = "10") -> dict[str, Any]:
    return {
        "data": {
            "type": "transactions",
            "attributes": {"amount": amount, "description": "charge"},
            "relationships": {"account": {"data": {"type": "accounts", "id": str(account_id)}}},
        }
    }


TABLES = {
    "accounts": "t.id",
    "account_balance_notification_settings": "t.account_id",
    "contractors": "t.id",
    "payments": "t.id",
    "transactions": "t.id",
    "ledger_entries": "t.id",
    "audit_log": "t.id",
}


def effects(db: Db) -> dict[str, str]:
    """One snapshot, on one connection, of the tables a write can change."""
    columns = ", ".join(
        f"(SELECT coalesce(json_agg(t ORDER BY {order}), '[]')::text FROM {table} t) AS {table}"
        for table, order in TABLES.items()
    )
    row = db.fetchrow(f"SELECT {columns}")
    assert row is not None
    return dict(row)


def stored_keys(db: Db) -> list[dict[str, Any]]:
    return [
        dict(row)
        for row in db.fetch(
            "SELECT admin_id, key, status FROM idempotency_keys ORDER BY admin_id, key"
        )
    ]


def balance_of(db: Db, account_id: int) -> Decimal:
    return Decimal(db.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id))


def assert_replay(first: httpx.Response, replay: httpx.Response) -> None:
    assert "idempotent-replayed" not in first.headers
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.status_code == first.status_code
    assert replay.content == first.content
    for header in ("content-type", "location", "etag"):
        assert replay.headers.get(header) == first.headers.get(header), header


@pytest.fixture
def account_id(make_account: MakeAccount, db: Db) -> int:
    account = int(make_account(name="keyed", **{"external-id": EXTERNAL_ID})["id"])
    db.set_balance(account, OPENING)
    return account


@pytest.fixture
def other_admin(db: Db, admin_id: int) -> Iterator[int]:
    """A second admin user: keys are scoped per admin."""
    other_id = int(
        db.fetchval(
            "INSERT INTO admin_users (username, password_hash) VALUES ('second-admin', 'x')"
            " ON CONFLICT (username) DO UPDATE SET enabled = true RETURNING id"
        )
    )
    yield other_id
    db.execute("DELETE FROM admin_users WHERE id = $1", other_id)


# -- every write replays its first answer -------------------------------------------------


@dataclass
class World:
    account_id: int
    payment_id: int
    contractor_id: int


@pytest.fixture
def world(api: Api, account_id: int, make_contractor: Callable[..., int]) -> World:
    paid = api.post(PAYMENTS, payment_body(account_id, "50"))
    assert paid.status_code == 201, paid.text
    return World(account_id, int(paid.json()["data"]["id"]), make_contractor(name="other"))


Write = tuple[str, str, Any, int]

WRITES: dict[str, Callable[[World], Write]] = {
    "account create": lambda w: (
        "POST",
        ACCOUNTS,
        account_body(w.contractor_id, name="created-once"),
        201,
    ),
    "account patch": lambda w: (
        "PATCH",
        f"{ACCOUNTS}/{w.account_id}",
        {"data": {"type": "accounts", "id": str(w.account_id), "attributes": {"vat": "7"}}},
        200,
    ),
    "account put": lambda w: (
        "PUT",
        f"{ACCOUNTS}/{w.account_id}",
        {"data": {"type": "accounts", "id": str(w.account_id), "attributes": {"name": "renamed"}}},
        200,
    ),
    "account delete": lambda w: ("DELETE", f"{ACCOUNTS}/{w.account_id}", None, 204),
    "account contractor": lambda w: (
        "PATCH",
        f"{ACCOUNTS}/{w.account_id}/relationships/contractor",
        {"data": {"type": "contractors", "id": str(w.contractor_id)}},
        204,
    ),
    "payment": lambda w: ("POST", PAYMENTS, payment_body(w.account_id), 201),
    "payment rollback": lambda w: ("POST", f"{PAYMENTS}/{w.payment_id}/rollback", None, 200),
    "transaction": lambda w: ("POST", TRANSACTIONS, transaction_body(w.account_id), 201),
    "balance put": lambda w: (
        "PUT",
        f"{ACCOUNTS}/{EXTERNAL_ID}/balance",
        {"data": {"type": "balances", "id": str(EXTERNAL_ID), "attributes": {"balance": "75"}}},
        200,
    ),
    "balance patch": lambda w: (
        "PATCH",
        f"{ACCOUNTS}/{EXTERNAL_ID}/balance",
        {"data": {"type": "balances", "id": str(EXTERNAL_ID), "attributes": {"balance": "75"}}},
        200,
    ),
    "balance correction": lambda w: (
        "PATCH",
        f"{ACCOUNTS}/{w.account_id}/balance-correction",
        {
            "data": {
                "type": "balance-correction",
                "id": str(w.account_id),
                "attributes": {"correction": "-5"},
            }
        },
        200,
    ),
    "contractor create": lambda w: (
        "POST",
        CONTRACTORS,
        {
            "data": {
                "type": "contractors",
                "attributes": {"name": "once", "enabled": True, "vendor": True, "customer": False},
            }
        },
        201,
    ),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_retried_write_replays_the_first_answer_without_a_second_effect(
    api: Api, db: Db, world: World, admin_id: int, write: str
) -> None:
    method, path, body, status = WRITES[write](world)

    first = api.request(method, path, json_body=body, headers=keyed())
    assert first.status_code == status, first.text
    after_first = effects(db)
    replay = api.request(method, path, json_body=body, headers=keyed())

    assert_replay(first, replay)
    assert effects(db) == after_first
    assert stored_keys(db) == [{"admin_id": admin_id, "key": KEY, "status": status}]


def test_a_replayed_create_repeats_location_and_etag(api: Api, db: Db, contractor_id: int) -> None:
    body = account_body(contractor_id, name="created-once")

    first = api.post(ACCOUNTS, body, headers=keyed())
    replay = api.post(ACCOUNTS, body, headers=keyed())

    assert first.status_code == 201, first.text
    assert first.headers["location"] == first.json()["data"]["links"]["self"]
    assert first.headers["etag"].startswith('"')
    assert_replay(first, replay)
    assert db.fetchval("SELECT count(*) FROM accounts") == 1


def test_a_replayed_payment_moves_the_money_once(api: Api, db: Db, account_id: int) -> None:
    body = payment_body(account_id, "10.5")

    responses = [api.post(PAYMENTS, body, headers=keyed()) for _ in range(3)]

    assert [r.status_code for r in responses] == [201, 201, 201]
    assert responses[1].content == responses[2].content == responses[0].content
    [payment] = db.fetch("SELECT id, amount, balance_before_payment FROM payments")
    assert str(payment["id"]) == responses[0].json()["data"]["id"]
    assert (payment["amount"], payment["balance_before_payment"]) == (Decimal("10.5"), OPENING)
    assert balance_of(db, account_id) == OPENING + Decimal("10.5")
    kinds = db.fetch(
        "SELECT kind, amount FROM ledger_entries WHERE account_id = $1 ORDER BY id", account_id
    )
    assert [(e["kind"], e["amount"]) for e in kinds][-1:] == [("payment", Decimal("10.5"))]
    assert db.fetchval("SELECT count(*) FROM ledger_entries WHERE kind = 'payment'") == 1
    audit = db.fetch(
        "SELECT item_type, event FROM audit_log"
        " WHERE NOT (item_type = 'Account' AND event = 'create')"
    )
    assert sorted((a["item_type"], a["event"]) for a in audit) == [
        ("Account", "update"),
        ("Payment", "create"),
    ]
    shown = api.get(f"{ACCOUNTS}/{account_id}")
    assert shown.json()["data"]["attributes"]["balance"] == "110.5"


def test_requests_without_the_header_are_not_deduplicated(
    api: Api, db: Db, account_id: int
) -> None:
    body = payment_body(account_id)

    responses = [api.post(PAYMENTS, body) for _ in range(2)]

    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json()["data"]["id"] != responses[1].json()["data"]["id"]
    assert all("idempotent-replayed" not in r.headers for r in responses)
    assert balance_of(db, account_id) == OPENING + 20
    assert stored_keys(db) == []


# -- the key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "",
        "k" * 256,
        "tab\tinside",
        "delete\x7f",
        "line\nbreak",
        "café".encode(),
        "ключ".encode(),
    ],
    ids=["empty", "256 chars", "tab", "DEL", "newline", "latin", "cyrillic"],
)
def test_a_malformed_key_is_400_and_nothing_happens(
    api: Api, db: Db, account_id: int, key: Any
) -> None:
    before = effects(db)
    headers: dict[str, Any] = {"Idempotency-Key": key}

    response = api.post(PAYMENTS, payment_body(account_id), headers=headers)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == BAD_KEY
    assert effects(db) == before
    assert stored_keys(db) == []


@pytest.mark.parametrize(
    "key", ["k", "k" * 255, "order 42/retry:#1~", "!\"$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}"]
)
def test_keys_of_1_to_255_printable_ascii_characters_are_accepted(
    api: Api, db: Db, account_id: int, admin_id: int, key: str
) -> None:
    first = api.post(PAYMENTS, payment_body(account_id), headers=keyed(key))
    replay = api.post(PAYMENTS, payment_body(account_id), headers=keyed(key))

    assert first.status_code == 201, first.text
    assert_replay(first, replay)
    assert stored_keys(db) == [{"admin_id": admin_id, "key": key, "status": 201}]
    assert balance_of(db, account_id) == OPENING + 10


@pytest.mark.parametrize("key", [KEY, "k" * 300])
def test_reads_ignore_the_header(api: Api, db: Db, account_id: int, key: str) -> None:
    api.post(PAYMENTS, payment_body(account_id), headers=keyed(KEY))
    stored = stored_keys(db)

    for path in (f"{ACCOUNTS}/{account_id}", PAYMENTS):
        response = api.get(path, headers=keyed(key))
        again = api.get(path, headers=keyed(key))
        assert response.status_code == again.status_code == 200, response.text
        assert "idempotent-replayed" not in response.headers
        assert "idempotent-replayed" not in again.headers
    assert response.json()["data"][0]["type"] == "payments"
    assert stored_keys(db) == stored


def test_an_unauthenticated_request_does_not_use_the_key(api: Api, db: Db, account_id: int) -> None:
    body = payment_body(account_id)

    refused = api.post(PAYMENTS, body, headers=keyed(), auth=False)
    accepted = api.post(PAYMENTS, body, headers=keyed())

    assert refused.status_code == 401
    assert accepted.status_code == 201, accepted.text
    assert "idempotent-replayed" not in accepted.headers
    assert balance_of(db, account_id) == OPENING + 10


# -- the same key for another request -------------------------------------------------------


Request = tuple[str, str, Any, dict[str, str] | None]

OTHER_REQUESTS: dict[str, Callable[[int], tuple[Request, Request]]] = {
    "another body": lambda a: (
        ("POST", PAYMENTS, payment_body(a, "10"), None),
        ("POST", PAYMENTS, payment_body(a, "11"), None),
    ),
    "another path": lambda a: (
        ("POST", PAYMENTS, payment_body(a), None),
        ("POST", TRANSACTIONS, transaction_body(a), None),
    ),
    "another query": lambda a: (
        ("POST", PAYMENTS, payment_body(a), None),
        ("POST", PAYMENTS, payment_body(a), {"include": "account"}),
    ),
    "another method": lambda a: (
        (
            "PUT",
            f"{ACCOUNTS}/{a}/balance-correction",
            {"data": {"type": "balance-correction", "id": str(a), "attributes": {"correction": 1}}},
            None,
        ),
        (
            "PATCH",
            f"{ACCOUNTS}/{a}/balance-correction",
            {"data": {"type": "balance-correction", "id": str(a), "attributes": {"correction": 1}}},
            None,
        ),
    ),
    "another account": lambda a: (
        ("DELETE", f"{ACCOUNTS}/{a}", None, None),
        ("DELETE", f"{ACCOUNTS}/{a + 1}", None, None),
    ),
}


@pytest.mark.parametrize("case", list(OTHER_REQUESTS))
def test_the_same_key_for_another_request_is_422(
    api: Api, db: Db, account_id: int, make_account: MakeAccount, case: str
) -> None:
    make_account(name="neighbour")
    (method, path, body, params), (other_method, other_path, other_body, other_params) = (
        OTHER_REQUESTS[case](account_id)
    )
    first = api.request(method, path, json_body=body, params=params, headers=keyed())
    assert first.status_code in (200, 201, 204), first.text
    before = effects(db)

    response = api.request(
        other_method, other_path, json_body=other_body, params=other_params, headers=keyed()
    )

    assert response.status_code == 422, response.text
    assert response.json() == MISMATCH
    assert "idempotent-replayed" not in response.headers
    assert effects(db) == before
    # the key still holds the first answer
    assert_replay(first, api.request(method, path, json_body=body, params=params, headers=keyed()))


@contextmanager
def claim_held_by_another_process(db: Db, admin_id: int, key: str = KEY) -> Iterator[None]:
    """A key claimed by a request still running in another worker: its row exists only
    inside that request's open transaction."""
    with psycopg.connect(db.url.replace("postgresql://", "postgres://", 1)) as holder:
        holder.execute(
            "INSERT INTO idempotency_keys (admin_id, key, fingerprint, status, expires_at)"
            " VALUES (%s, %s, 'other', 0, now() + interval '1 hour')",
            (admin_id, key),
        )
        try:
            yield
        finally:
            holder.rollback()


@pytest.mark.parametrize("same_request", [True, False])
def test_a_retry_while_the_first_still_runs_elsewhere_is_409_with_retry_after(
    api: Api, db: Db, account_id: int, admin_id: int, same_request: bool
) -> None:
    before = effects(db)
    amount = "10" if same_request else "12"

    with claim_held_by_another_process(db, admin_id):
        # waits for the other request's transaction, up to the lock timeout
        response = api.post(PAYMENTS, payment_body(account_id, amount), headers=keyed())

    assert response.status_code == 409, response.text
    assert response.json() == IN_FLIGHT
    assert response.headers["retry-after"] == "1"
    assert "idempotent-replayed" not in response.headers
    assert effects(db) == before
    assert stored_keys(db) == []


# -- scope and lifetime ---------------------------------------------------------------------


def test_keys_are_scoped_per_admin(
    api: Api, db: Db, account_id: int, admin_id: int, other_admin: int
) -> None:
    body = payment_body(account_id)
    other = Api(api.client, tokens.issue(other_admin, SECRET, None))

    mine = api.post(PAYMENTS, body, headers=keyed())
    theirs = other.post(PAYMENTS, body, headers=keyed())
    their_replay = other.post(PAYMENTS, body, headers=keyed())
    my_replay = api.post(PAYMENTS, body, headers=keyed())

    assert mine.status_code == theirs.status_code == 201, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["data"]["id"] != theirs.json()["data"]["id"]
    assert_replay(theirs, their_replay)
    assert_replay(mine, my_replay)
    assert balance_of(db, account_id) == OPENING + 20
    assert stored_keys(db) == sorted(
        [
            {"admin_id": admin_id, "key": KEY, "status": 201},
            {"admin_id": other_admin, "key": KEY, "status": 201},
        ],
        key=lambda row: row["admin_id"],
    )


def test_a_key_is_kept_24_hours(api: Api, db: Db, account_id: int) -> None:
    api.post(PAYMENTS, payment_body(account_id), headers=keyed())

    kept = db.fetchval("SELECT expires_at - created_at FROM idempotency_keys")

    assert kept == timedelta(hours=24)


def test_an_expired_key_runs_the_request_again(api: Api, db: Db, account_id: int) -> None:
    body = payment_body(account_id)
    first = api.post(PAYMENTS, body, headers=keyed())
    db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")

    again = api.post(PAYMENTS, body, headers=keyed())
    replay = api.post(PAYMENTS, body, headers=keyed())

    assert first.status_code == again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    assert again.json()["data"]["id"] != first.json()["data"]["id"]
    assert_replay(again, replay)
    assert balance_of(db, account_id) == OPENING + 20
    assert db.fetchval("SELECT expires_at > now() + interval '23 hours' FROM idempotency_keys")


# -- answers that are not successes ---------------------------------------------------------


CLIENT_ERRORS: dict[str, Callable[[int], Write]] = {
    "validation 422": lambda a: ("POST", PAYMENTS, payment_body(a, "0"), 422),
    "missing account 422": lambda a: ("POST", PAYMENTS, payment_body(a + 1000), 422),
    "missing payment 404": lambda a: ("POST", f"{PAYMENTS}/999999/rollback", None, 404),
    "bad body 400": lambda a: (
        "POST",
        PAYMENTS,
        {"data": {"type": "payments", "attributes": {"nope": 1}}},
        400,
    ),
    "stale If-Match 412": lambda a: (
        "PATCH",
        f"{ACCOUNTS}/{a}",
        {"data": {"type": "accounts", "id": str(a), "attributes": {"vat": "5"}}},
        412,
    ),
}


@pytest.mark.parametrize("case", list(CLIENT_ERRORS))
def test_a_client_error_is_kept_and_replayed(
    api: Api, db: Db, account_id: int, admin_id: int, case: str
) -> None:
    method, path, body, status = CLIENT_ERRORS[case](account_id)
    headers = {**keyed(), "If-Match": '"00000000000000000000000000000000"'}
    before = effects(db)

    first = api.request(method, path, json_body=body, headers=headers)
    replay = api.request(method, path, json_body=body, headers=headers)

    assert first.status_code == status, first.text
    assert first.json()["errors"][0]["status"] == str(status)
    assert_replay(first, replay)
    assert effects(db) == before
    assert stored_keys(db) == [{"admin_id": admin_id, "key": KEY, "status": status}]


@pytest.fixture(scope="module")
def failing_client(database_url: str, admin_id: int) -> Iterator[TestClient]:
    """The app as in tests/conftest.py, answering unexpected errors with their 500."""
    settings = settings_for(database_url)
    with TestClient(
        create_app(settings),
        base_url=BASE_URL,
        client=("127.0.0.1", 50000),
        raise_server_exceptions=False,
    ) as client:
        yield client


@pytest.fixture
def payments_fail(db: Db) -> Iterator[Callable[[], None]]:
    """Inserting a payment raises until the returned function is called."""
    db.execute(
        "CREATE OR REPLACE FUNCTION test_idempotency_failure() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;"
        " CREATE TRIGGER test_idempotency_failure BEFORE INSERT ON payments FOR EACH ROW"
        " EXECUTE FUNCTION test_idempotency_failure()"
    )

    def repair() -> None:
        db.execute(
            "DROP TRIGGER IF EXISTS test_idempotency_failure ON payments;"
            " DROP FUNCTION IF EXISTS test_idempotency_failure()"
        )

    yield repair
    repair()


def test_an_unexpected_failure_releases_the_key(
    api: Api,
    db: Db,
    account_id: int,
    failing_client: TestClient,
    token: str,
    payments_fail: Callable[[], None],
) -> None:
    failing = Api(failing_client, token)
    body = payment_body(account_id)
    before = effects(db)

    failed = failing.post(PAYMENTS, body, headers=keyed())

    assert failed.status_code == 500, failed.text
    assert failed.json()["errors"][0]["code"] == "500"
    assert effects(db) == before
    assert stored_keys(db) == []

    payments_fail()
    retried = failing.post(PAYMENTS, body, headers=keyed())
    replay = failing.post(PAYMENTS, body, headers=keyed())

    assert retried.status_code == 201, retried.text
    assert_replay(retried, replay)
    assert balance_of(db, account_id) == OPENING + 10


# -- real concurrent duplicates -------------------------------------------------------------


@pytest.fixture
def slow_payments(db: Db) -> Iterator[None]:
    """Inserting a payment takes a while, so a duplicate arrives while the first runs."""
    db.execute(
        "CREATE OR REPLACE FUNCTION test_idempotency_sleep() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.6); RETURN NEW; END $$;"
        " CREATE TRIGGER test_idempotency_sleep BEFORE INSERT ON payments FOR EACH ROW"
        " EXECUTE FUNCTION test_idempotency_sleep()"
    )
    yield
    db.execute(
        "DROP TRIGGER IF EXISTS test_idempotency_sleep ON payments;"
        " DROP FUNCTION IF EXISTS test_idempotency_sleep()"
    )


Scenario = Callable[[httpx.AsyncClient, asyncpg.Connection], Any]


def run_concurrently(database_url: str, scenario: Scenario) -> Any:
    """Runs `scenario` against an app of its own, on one event loop, so that requests
    overlap for real; the scenario also gets a connection of its own to watch the database."""
    settings = Settings(
        database_url=database_url,
        data_dir=ROOT / "var" / "test-data",
        token_lifetime=None,
        pool_size=4,
        secret_key_env=SECRET,
    )

    async def main() -> Any:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                watcher = await asyncpg.connect(database_url)
                try:
                    return await scenario(client, watcher)
                finally:
                    await watcher.close()

    return asyncio.run(main())


def request_headers(token: str) -> dict[str, str]:
    return {
        "Accept": JSONAPI,
        "Content-Type": JSONAPI,
        "Authorization": token,
        "Idempotency-Key": KEY,
    }


def test_a_duplicate_while_the_first_runs_waits_for_it_then_replays(
    api: Api, db: Db, account_id: int, token: str, slow_payments: None, database_url: str
) -> None:
    content = json.dumps(payment_body(account_id)).encode()
    headers = request_headers(token)

    async def scenario(client: httpx.AsyncClient, watcher: asyncpg.Connection) -> Any:
        first = asyncio.create_task(client.post(PAYMENTS, content=content, headers=headers))
        deadline = time.monotonic() + 30
        # the first is inside its write (the payment insert sleeps in a trigger)
        while not await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event = 'PgSleep' AND datname = current_database()"
        ):
            assert time.monotonic() < deadline, "the first request never started its write"
            await asyncio.sleep(0.01)
        during = await client.post(PAYMENTS, content=content, headers=headers)
        return await first, during

    first, during = run_concurrently(database_url, scenario)

    assert first.status_code == 201, first.text
    assert_replay(first, during)
    assert db.fetchval("SELECT count(*) FROM payments") == 1
    assert balance_of(db, account_id) == OPENING + 10


def test_simultaneous_duplicates_have_one_effect(
    api: Api, db: Db, account_id: int, token: str, slow_payments: None, database_url: str
) -> None:
    content = json.dumps(payment_body(account_id)).encode()
    headers = request_headers(token)

    async def scenario(client: httpx.AsyncClient, watcher: asyncpg.Connection) -> Any:
        return await asyncio.gather(
            *(client.post(PAYMENTS, content=content, headers=headers) for _ in range(3))
        )

    responses = run_concurrently(database_url, scenario)

    firsts = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(firsts) == 1, [r.status_code for r in responses]
    for response in responses:
        if response is firsts[0]:
            continue
        if response.status_code == 409:
            assert response.json() == IN_FLIGHT
        else:
            assert_replay(firsts[0], response)
    assert db.fetchval("SELECT count(*) FROM payments") == 1
    assert db.fetchval("SELECT count(*) FROM ledger_entries WHERE kind = 'payment'") == 1
    assert balance_of(db, account_id) == OPENING + 10


def test_a_failure_while_answering_rolls_the_write_back_so_a_retry_pays_once(
    api: Api, db: Db, account_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the payment is written, then building its answer fails (injected into the renderer):
    # the key, the payment and its answer share one transaction, so none of them is kept
    from accounts_api.jsonapi import endpoints

    def broken_single(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("rendering failed after the write")

    body = payment_body(account_id, "7")
    with monkeypatch.context() as patch:
        patch.setattr(endpoints.Api, "_single", broken_single)
        first = api.post(PAYMENTS, body, headers=keyed())
        assert first.status_code == 500

    assert db.fetchval("SELECT count(*) FROM payments") == 0
    assert stored_keys(db) == []

    retry = api.post(PAYMENTS, body, headers=keyed())
    replay = api.post(PAYMENTS, body, headers=keyed())

    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert_replay(retry, replay)
    assert db.fetchval("SELECT count(*) FROM payments") == 1
    assert balance_of(db, account_id) == OPENING + Decimal("7")


def test_a_retry_waits_for_a_first_attempt_that_then_dies_and_runs_itself(
    api: Api, db: Db, account_id: int, admin_id: int
) -> None:
    # the first attempt's process dies mid-write: its transaction, claim included, is gone
    # as soon as PostgreSQL notices, and the retry waiting on the claim takes over
    body = payment_body(account_id, "5")
    with claim_held_by_another_process(db, admin_id):
        retry = _in_thread(lambda: api.post(PAYMENTS, body, headers=keyed()))
        time.sleep(0.3)
    response = retry()

    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    assert db.fetchval("SELECT count(*) FROM payments") == 1
    assert balance_of(db, account_id) == OPENING + Decimal("5")
    assert [(k["key"], k["status"]) for k in stored_keys(db)] == [(KEY, 201)]


def _in_thread(call: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    """Starts `call` in a thread; the returned function waits for its answer."""
    outcome: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: outcome.append(call()))
    thread.start()

    def result() -> httpx.Response:
        thread.join(timeout=60)
        assert outcome, "the request did not finish"
        return outcome[0]

    return result


def test_a_rejected_write_keeps_its_refusal_as_the_keys_answer(
    api: Api, db: Db, account_id: int
) -> None:
    response = api.post(PAYMENTS, payment_body(account_id, "0"), headers=keyed())

    assert response.status_code == 422
    assert [(k["key"], k["status"]) for k in stored_keys(db)] == [(KEY, 422)]
