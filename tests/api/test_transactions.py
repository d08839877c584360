"""Transactions (contract §5.7, issue 3): charges. A positive amount takes money from the
account under a row lock; validations in order with nothing written on failure; the service
must belong to the account; filters, sorting, relationships that cannot change; one ledger
entry and one Account audit row per transaction (§4.3)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from tests.api.contract import PREFIX, ResourceContract
from tests.api.money_checks import (
    assert_ledger_explains_balances,
    audit,
    balance,
    balance_changes,
    ids,
    ledger,
    state,
)
from tests.conftest import BASE_URL, JSONAPI, Api, Db, lock_waiters, wait_until

TRANSACTIONS = f"{PREFIX}/transactions"
ACCOUNTS = f"{PREFIX}/accounts"
TIMESTAMP = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")

MakeAccount = Callable[..., dict[str, Any]]


def transaction_body(
    account: object | None, service: object | None = None, **attributes: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "transactions", "attributes": attributes}
    relationships: dict[str, Any] = {}
    if account is not None:
        relationships["account"] = {"data": {"type": "accounts", "id": str(account)}}
    if service is not None:
        relationships["service"] = {"data": {"type": "services", "id": str(service)}}
    if relationships:
        data["relationships"] = relationships
    return {"data": data}


def error(attribute: str, message: str, member: str = "attributes") -> dict[str, Any]:
    return {
        "title": message,
        "detail": f"{attribute} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/{member}/{attribute}"},
        "status": "422",
    }


def bad_request(code: str, title: str, detail: str) -> dict[str, Any]:
    return {"errors": [{"title": title, "detail": detail, "code": code, "status": "400"}]}


def forbidden(relationship: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "title": "Forbidden",
                "detail": f"The {relationship} of transactions cannot be changed.",
                "code": "403",
                "status": "403",
            }
        ]
    }


def charge(
    api: Api, account: object, amount: Any = 10, service: object | None = None, **attributes: Any
) -> dict[str, Any]:
    body = transaction_body(account, service, amount=amount, **attributes)
    response = api.post(TRANSACTIONS, body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def service_of(db: Db, account: int, name: str = "voice") -> int:
    return int(
        db.fetchval(
            "INSERT INTO services (account_id, name) VALUES ($1, $2) RETURNING id", account, name
        )
    )


@pytest.fixture
def account(make_account: MakeAccount) -> int:
    return int(make_account()["id"])


class TestTransactions(ResourceContract):
    path = "transactions"
    type = "transactions"

    @pytest.fixture(autouse=True)
    def _account(self, account: int) -> None:
        self.account = account

    def create_body(self) -> dict[str, Any]:
        return transaction_body(self.account, amount="10.5", description="Admin adjustment")

    def make(self, api: Api) -> str:
        return str(charge(api, self.account)["id"])


# -- create: the document, the sign, the ledger, the audit -----------------------------------


def test_create_answers_the_contract_document(
    api: Api, db: Db, admin_id: int, account: int
) -> None:
    db.set_balance(account, 100)
    service = service_of(db, account)
    audit_before = audit(db)
    started = datetime.now(UTC)
    body = transaction_body(account, service, amount="10.5", description="Admin adjustment")

    response = api.post(TRANSACTIONS, body)

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == JSONAPI
    document = response.json()
    key = document["data"]["id"]
    own = f"{BASE_URL}{TRANSACTIONS}/{key}"
    assert response.headers["location"] == own
    attributes = document["data"]["attributes"]
    assert TIMESTAMP.match(attributes["created-at"]), attributes["created-at"]
    moment = datetime.fromisoformat(attributes["created-at"])
    assert started - timedelta(seconds=5) <= moment <= datetime.now(UTC) + timedelta(seconds=5)
    assert UUID.match(attributes["uuid"]), attributes["uuid"]
    assert document == {
        "data": {
            "id": key,
            "type": "transactions",
            "links": {"self": own},
            "attributes": {
                "description": "Admin adjustment",
                "amount": "10.5",
                "created-at": attributes["created-at"],
                "uuid": attributes["uuid"],
            },
            "relationships": {
                "account": {
                    "links": {
                        "self": f"{own}/relationships/account",
                        "related": f"{own}/account",
                    },
                    "data": {"type": "accounts", "id": str(account)},
                },
                "service": {
                    "links": {
                        "self": f"{own}/relationships/service",
                        "related": f"{own}/service",
                    },
                    "data": {"type": "services", "id": str(service)},
                },
            },
        }
    }
    assert list(attributes) == ["description", "amount", "created-at", "uuid"]
    assert api.get(f"{TRANSACTIONS}/{key}").json() == document
    # contract §5.7: a positive amount is a charge
    assert balance(api, account) == "89.5"
    row = db.fetchrow(
        "SELECT account_id, service_id, amount, description, uuid::text"
        " FROM transactions WHERE id = $1",
        int(key),
    )
    assert row is not None
    assert tuple(row) == (account, service, Decimal("10.5"), "Admin adjustment", attributes["uuid"])
    assert ledger(db, account)[-1] == (
        "transaction",
        Decimal("-10.5"),
        Decimal("89.5"),
        "Transaction",
        int(key),
        admin_id,
    )
    # contract §4.3: one update for the account only; transactions are not versioned
    assert audit(db) == [*audit_before, ("Account", account, "update", str(admin_id), "127.0.0.1")]
    assert balance_changes(db, account) == [(Decimal(100), Decimal("89.5"))]
    assert_ledger_explains_balances(db)


@pytest.mark.parametrize(
    ("sent", "rendered", "after"),
    [
        (10, "10.0", "-10.0"),
        ("0.25", "0.25", "-0.25"),
        (0.333, "0.333", "-0.333"),
        ("-5", "-5.0", "5.0"),
        (-2.5, "-2.5", "2.5"),
    ],
)
def test_the_amount_is_subtracted(
    api: Api, db: Db, admin_id: int, account: int, sent: Any, rendered: str, after: str
) -> None:
    transaction = charge(api, account, sent)

    assert transaction["attributes"]["amount"] == rendered
    assert balance(api, account) == after
    assert ledger(db, account)[-1] == (
        "transaction",
        -Decimal(rendered),
        Decimal(after),
        "Transaction",
        int(transaction["id"]),
        admin_id,
    )
    assert_ledger_explains_balances(db)


@pytest.mark.parametrize("service", ["absent", "null linkage", "null relationship"])
def test_the_service_is_optional(api: Api, db: Db, account: int, service: str) -> None:
    body = transaction_body(account, amount=3)
    if service == "null linkage":
        body["data"]["relationships"]["service"] = {"data": None}
    if service == "null relationship":
        body["data"]["relationships"]["service"] = {"data": {"type": "services", "id": None}}

    response = api.post(TRANSACTIONS, body)

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["relationships"]["service"]["data"] is None
    assert data["attributes"]["description"] is None
    assert db.fetchval("SELECT service_id FROM transactions WHERE id = $1", int(data["id"])) is None
    assert balance(api, account) == "-3.0"


def test_successive_charges_chain_in_the_ledger(api: Api, db: Db, account: int) -> None:
    db.set_balance(account, 20)

    for amount in (5, "2.5", -1):
        charge(api, account, amount)

    assert balance(api, account) == "13.5"
    assert [entry[:3] for entry in ledger(db, account)[-3:]] == [
        ("transaction", Decimal(-5), Decimal(15)),
        ("transaction", Decimal("-2.5"), Decimal("12.5")),
        ("transaction", Decimal(1), Decimal("13.5")),
    ]
    assert balance_changes(db, account) == [
        (Decimal(20), Decimal(15)),
        (Decimal(15), Decimal("12.5")),
        (Decimal("12.5"), Decimal("13.5")),
    ]
    assert_ledger_explains_balances(db)


# -- validations (contract §5.7): in order, exact, nothing written ----------------------------


@pytest.mark.parametrize(
    ("attributes", "target", "service", "expected"),
    [
        (
            {"amount": None},
            "none",
            "none",
            [error("amount", "can't be blank"), error("account", "must exist", "relationships")],
        ),
        ({}, "own", "none", [error("amount", "can't be blank")]),
        ({"amount": ""}, "own", "none", [error("amount", "can't be blank")]),
        ({"amount": 0}, "own", "none", [error("amount", "must be other than 0")]),
        ({"amount": "0.000"}, "own", "none", [error("amount", "must be other than 0")]),
        ({"amount": "abc"}, "own", "none", [error("amount", "is not a number")]),
        ({"amount": 1}, "missing", "none", [error("account", "must exist", "relationships")]),
        ({"amount": 1}, "huge", "none", [error("account", "must exist", "relationships")]),
        ({"amount": 1}, "null", "none", [error("account", "must exist", "relationships")]),
        (
            {"amount": 1},
            "own",
            "foreign",
            [error("service", "belongs to different account", "relationships")],
        ),
        ({"amount": 1}, "own", "missing", [error("service", "must exist", "relationships")]),
        ({"amount": 1}, "own", "huge", [error("service", "must exist", "relationships")]),
        (
            {"amount": 0},
            "missing",
            "missing",
            [
                error("amount", "must be other than 0"),
                error("account", "must exist", "relationships"),
                error("service", "must exist", "relationships"),
            ],
        ),
        (
            {"amount": 1, "description": "x" * 4097},
            "own",
            "own",
            [error("description", "is too long (maximum is 4096 characters)")],
        ),
        (
            {"amount": 1, "description": "a\u0000b"},
            "own",
            "none",
            [error("description", "must not contain null bytes")],
        ),
        (
            {"amount": 1, "description": [1]},
            "own",
            "none",
            [error("description", "must be a string")],
        ),
    ],
)
def test_invalid_creates_are_422_and_write_nothing(
    api: Api,
    db: Db,
    account: int,
    make_account: MakeAccount,
    attributes: dict[str, Any],
    target: str,
    service: str,
    expected: list[dict[str, Any]],
) -> None:
    other = int(make_account()["id"])
    services = {
        "own": service_of(db, account),
        "foreign": service_of(db, other),
        "missing": 999999,
        "huge": 2**63,
    }
    accounts = {"own": account, "missing": account + 1000, "huge": 2**40}
    body = transaction_body(None, **attributes)
    relationships: dict[str, Any] = {}
    if target == "null":
        relationships["account"] = {"data": None}
    elif target != "none":
        relationships["account"] = {"data": {"type": "accounts", "id": str(accounts[target])}}
    if service != "none":
        relationships["service"] = {"data": {"type": "services", "id": str(services[service])}}
    if relationships:
        body["data"]["relationships"] = relationships
    before = state(db, "transactions")

    response = api.post(TRANSACTIONS, body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == {"errors": expected}
    assert state(db, "transactions") == before
    assert (balance(api, account), balance(api, other)) == ("0.0", "0.0")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"attributes": {"amount": 1, "uuid": "11111111-1111-4111-8111-111111111111"}},
            bad_request("105", "Param not allowed", "uuid is not allowed."),
        ),
        (
            {"attributes": {"amount": 1, "created-at": "2024-01-01T00:00:00Z"}},
            bad_request("105", "Param not allowed", "created-at is not allowed."),
        ),
        (
            {"attributes": {"amount": 1, "balance": 5}},
            bad_request("105", "Param not allowed", "balance is not allowed."),
        ),
        (
            {"id": "7", "attributes": {"amount": 1}},
            bad_request("105", "Param not allowed", "id is not allowed."),
        ),
        (
            {"type": "payments"},
            bad_request("101", "Invalid resource", "payments is not a valid resource."),
        ),
        (
            {"relationships": {"service": {"data": {"type": "accounts", "id": "1"}}}},
            bad_request("116", "Type Mismatch", "accounts is not a valid type for this operation."),
        ),
        (
            {"relationships": {"service": {"data": {"type": "services", "id": "x"}}}},
            bad_request("103", "Invalid field value", "x is not a valid value for id."),
        ),
    ],
)
def test_malformed_creates_are_400_and_write_nothing(
    api: Api, db: Db, account: int, data: dict[str, Any], expected: dict[str, Any]
) -> None:
    body = transaction_body(account, amount=1)
    for member, value in data.items():
        if member == "relationships":
            body["data"]["relationships"].update(value)
        else:
            body["data"][member] = value
    before = state(db, "transactions")

    response = api.post(TRANSACTIONS, body)

    assert response.status_code == 400, response.text
    assert response.json() == expected
    assert state(db, "transactions") == before


# -- no update, no delete, no move ----------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_a_transaction_cannot_be_updated_or_deleted(
    api: Api, db: Db, account: int, make_account: MakeAccount, method: str
) -> None:
    other = int(make_account()["id"])
    transaction = charge(api, account, 4)
    key = transaction["id"]
    before = state(db, "transactions")
    body = {
        "data": {
            "type": "transactions",
            "id": key,
            "attributes": {"amount": 99, "description": "changed"},
            "relationships": {"account": {"data": {"type": "accounts", "id": str(other)}}},
        }
    }

    response = api.request(method, f"{TRANSACTIONS}/{key}", json_body=body)

    assert response.status_code == 405
    assert response.headers["content-type"] == JSONAPI
    allowed = {verb.strip() for verb in response.headers["allow"].split(",")}
    assert "GET" in allowed
    assert method not in allowed
    [problem] = response.json()["errors"]
    assert (problem["code"], problem["status"]) == ("405", "405")
    assert state(db, "transactions") == before
    assert api.get(f"{TRANSACTIONS}/{key}").json()["data"] == transaction


@pytest.mark.parametrize("relationship", ["account", "service"])
@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_relationships_cannot_change(
    api: Api, db: Db, account: int, make_account: MakeAccount, method: str, relationship: str
) -> None:
    other = int(make_account()["id"])
    target = {"account": other, "service": service_of(db, account, "sms")}[relationship]
    transaction = charge(api, account, 4, service_of(db, account))
    key = transaction["id"]
    before = state(db, "transactions")
    body = None if method == "DELETE" else {"data": {"type": f"{relationship}s", "id": str(target)}}

    response = api.request(
        method, f"{TRANSACTIONS}/{key}/relationships/{relationship}", json_body=body
    )

    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == forbidden(relationship)
    assert state(db, "transactions") == before
    assert api.get(f"{TRANSACTIONS}/{key}").json()["data"] == transaction
    assert (balance(api, account), balance(api, other)) == ("-4.0", "0.0")


def test_get_relationships_and_the_related_account(api: Api, db: Db, account: int) -> None:
    service = service_of(db, account)
    with_service = charge(api, account, 1, service)["id"]
    without = charge(api, account, 1)["id"]

    def links(key: str, name: str) -> dict[str, str]:
        own = f"{BASE_URL}{TRANSACTIONS}/{key}"
        return {"self": f"{own}/relationships/{name}", "related": f"{own}/{name}"}

    expected = {
        (with_service, "account"): {"type": "accounts", "id": str(account)},
        (with_service, "service"): {"type": "services", "id": str(service)},
        (without, "account"): {"type": "accounts", "id": str(account)},
        (without, "service"): None,
    }
    for (key, name), data in expected.items():
        response = api.get(f"{TRANSACTIONS}/{key}/relationships/{name}")
        assert response.status_code == 200
        assert response.json() == {"data": data, "links": links(key, name)}
        assert list(response.json()) == ["data", "links"]
    related = api.get(f"{TRANSACTIONS}/{with_service}/account")
    assert related.status_code == 200
    assert related.json() == {"data": api.get(f"{ACCOUNTS}/{account}").json()["data"]}


@pytest.mark.parametrize(
    ("path", "status", "expected"),
    [
        (
            "999999/relationships/account",
            404,
            {
                "title": "Record not found",
                "detail": "The record identified by 999999 could not be found.",
                "code": "404",
                "status": "404",
            },
        ),
        (
            "999999/account",
            404,
            {
                "title": "Record not found",
                "detail": "The record identified by 999999 could not be found.",
                "code": "404",
                "status": "404",
            },
        ),
        (
            "abc",
            400,
            {
                "title": "Invalid field value",
                "detail": "abc is not a valid value for id.",
                "code": "103",
                "status": "400",
            },
        ),
    ],
)
def test_reading_a_missing_or_malformed_transaction(
    api: Api, path: str, status: int, expected: dict[str, str]
) -> None:
    response = api.get(f"{TRANSACTIONS}/{path}")

    assert response.status_code == status
    assert response.json() == {"errors": [expected]}


# -- the row lock: a transaction waits for its account, and only for it ---------------------


class RowLock:
    """Another session holding one account row, as a concurrent writer would."""

    def __init__(self, url: str, account: int):
        self.url, self.account = url, account
        self.loop = asyncio.new_event_loop()
        self.done = False

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def __enter__(self) -> RowLock:
        self.connection = self.run(asyncpg.connect(self.url))
        self.transaction = self.connection.transaction()
        self.run(self.transaction.start())
        sql = "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE"
        self.run(self.connection.execute(sql, self.account))
        return self

    def commit_balance(self, value: str) -> None:
        """Move the balance (with its ledger entry) and commit, releasing the lock."""
        self.run(
            self.connection.execute(
                "WITH moved AS (UPDATE accounts a SET balance = $2::numeric FROM accounts old"
                "  WHERE a.id = $1 AND old.id = a.id RETURNING a.id, a.balance,"
                "  old.balance AS before) INSERT INTO ledger_entries"
                " (account_id, amount, balance_after, kind)"
                " SELECT id, balance - before, balance, 'correction' FROM moved",
                self.account,
                value,
            )
        )
        self.run(self.transaction.commit())
        self.done = True

    def __exit__(self, *exc: object) -> None:
        if not self.done:
            self.run(self.transaction.rollback())
        self.run(self.connection.close())
        self.loop.close()


class Background:
    """One request on its own thread, so the test can watch it wait."""

    def __init__(self, call: Callable[[], Any]):
        self.result: dict[str, Any] = {}

        def target() -> None:
            try:
                self.result["response"] = call()
            except BaseException as problem:  # reported by the test, not the thread
                self.result["error"] = problem

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def response(self, timeout: float) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the request did not finish"
        assert "error" not in self.result, self.result.get("error")
        return self.result["response"]


def wait_for_lock_waiter(db: Db) -> None:
    assert wait_until(lambda: lock_waiters(db) > 0), "no request waits for the row lock"


def test_a_transaction_locks_and_changes_only_its_account(
    api: Api, db: Db, account: int, make_account: MakeAccount
) -> None:
    other = int(make_account()["id"])
    db.set_balance(account, 100)
    db.set_balance(other, 7)
    other_ledger = ledger(db, other)

    with RowLock(db.url, account) as lock:
        # another account's row lock does not hold this transaction up
        elsewhere = Background(lambda: api.post(TRANSACTIONS, transaction_body(other, amount=1)))
        done = elsewhere.response(timeout=5)
        assert done.status_code == 201, done.text
        waiting = Background(lambda: api.post(TRANSACTIONS, transaction_body(account, amount=10)))
        wait_for_lock_waiter(db)
        assert waiting.thread.is_alive()
        # the concurrent writer commits first; the charge must start from its balance
        lock.commit_balance("50")
    response = waiting.response(timeout=10)

    assert response.status_code == 201, response.text
    assert balance(api, account) == "40.0"
    assert balance(api, other) == "6.0"
    assert ledger(db, other)[: len(other_ledger)] == other_ledger
    assert [entry[:3] for entry in ledger(db, account)[-2:]] == [
        ("correction", Decimal(-50), Decimal(50)),
        ("transaction", Decimal(-10), Decimal(40)),
    ]
    assert balance_changes(db, account)[-1] == (Decimal(50), Decimal(40))
    assert_ledger_explains_balances(db)


def test_a_transaction_changes_no_other_account(
    api: Api, db: Db, account: int, make_account: MakeAccount
) -> None:
    others = [int(make_account()["id"]) for _ in range(2)]
    db.set_balance(others[0], 4)
    sql = "SELECT * FROM accounts WHERE id = ANY($1::int[]) ORDER BY id"
    rows_before = [tuple(r) for r in db.fetch(sql, others)]
    ledgers_before = [ledger(db, other) for other in others]
    audit_before = audit(db)

    charge(api, account, 9, service_of(db, account))

    assert [tuple(r) for r in db.fetch(sql, others)] == rows_before
    assert [ledger(db, other) for other in others] == ledgers_before
    assert [row[1] for row in audit(db)[len(audit_before) :]] == [account]


# -- filters (contract §5.7) ------------------------------------------------------------------

T1 = "2024-01-10T10:00:00Z"
T2 = "2024-02-10T10:00:00.250Z"
U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"
U3 = "33333333-3333-4333-8333-333333333333"
STRING_PREDICATES = ("eq", "not_eq", "cont", "start", "end", "in", "not_in", "cont_any")
ORDERED_PREDICATES = ("eq", "not_eq", "gt", "gteq", "lt", "lteq", "in", "not_in")
SET_PREDICATES = ("eq", "not_eq", "in", "not_in")
ALLOWED_FILTERS = {
    "id",
    *(f"{name}_{p}" for name in ("account_id", "service_id", "uuid") for p in SET_PREDICATES),
    *(f"{name}_{p}" for name in ("created_at", "amount") for p in ORDERED_PREDICATES),
    *(f"description_{p}" for p in STRING_PREDICATES),
}

# Transaction M (on account am, service sm) and O (on account ao, no service); service so
# belongs to ao and is used by neither. Each filter key with values and what they select.
CASES: dict[str, list[tuple[str, str]]] = {
    "id": [("{m}", "M"), ("{m},{o}", "MO"), ("999999999", "")],
    "account_id_eq": [("{am}", "M"), ("{ao}", "O"), ("999999", "")],
    "account_id_not_eq": [("{am}", "O"), ("999999", "MO")],
    "account_id_in": [("{am},{ao}", "MO"), ("999999,{ao}", "O"), ("999999", "")],
    "account_id_not_in": [("{am}", "O"), ("{am},{ao}", "")],
    # O has no service: not_eq and not_in never select it
    "service_id_eq": [("{sm}", "M"), ("{so}", "")],
    "service_id_not_eq": [("{so}", "M"), ("{sm}", "")],
    "service_id_in": [("{sm},{so}", "M"), ("{so}", "")],
    "service_id_not_in": [("{so}", "M"), ("{sm}", "")],
    "uuid_eq": [(U1, "M"), (U1.upper(), "M"), (U3, "")],
    "uuid_not_eq": [(U1, "O"), (U3, "MO")],
    "uuid_in": [(f"{U3},{U2}", "O"), (U3, "")],
    "uuid_not_in": [(U1, "O"), (f"{U1},{U2}", "")],
    "created_at_eq": [
        (T1, "M"),
        ("2024-01-10T11:00:00+01:00", "M"),
        ("2024-01-10T10:00:00", "M"),
        (T2, "O"),
        ("2024-02-10T10:00:00Z", ""),
    ],
    "created_at_not_eq": [(T1, "O"), ("2024-01-01T00:00:00Z", "MO")],
    "created_at_gt": [(T1, "O"), ("2024-02-10T10:00:00Z", "O"), (T2, "")],
    "created_at_gteq": [(T1, "MO"), (T2, "O")],
    "created_at_lt": [(T2, "M"), (T1, "")],
    "created_at_lteq": [(T2, "MO"), (T1, "M")],
    "created_at_in": [(f"{T1},2030-01-01T00:00:00Z", "M"), ("2030-01-01T00:00:00Z", "")],
    "created_at_not_in": [(T1, "O"), (f"{T1},{T2}", "")],
    "amount_eq": [("10", "M"), ("10.000", "M"), ("-2.5", "O"), ("2.5", "")],
    "amount_not_eq": [("10", "O"), ("1", "MO")],
    "amount_gt": [("0", "M"), ("10", "")],
    "amount_gteq": [("-2.5", "MO"), ("10", "M")],
    "amount_lt": [("0", "O"), ("-2.5", "")],
    "amount_lteq": [("-2.5", "O"), ("10", "MO")],
    "amount_in": [("-2.5,7", "O"), ("7", "")],
    "amount_not_in": [("-2.5", "M"), ("10,-2.5", "")],
    "description_eq": [("Alpha charge", "M"), ("alpha charge", "")],
    "description_not_eq": [("Alpha charge", "O"), ("zzz", "MO")],
    "description_cont": [("HA CH", "M"), ("%", "O"), ("_", "O"), ("zzz", "")],
    "description_start": [("ALPHA", "M"), ("charge", "")],
    "description_end": [("50%", "O"), ("CHARGE", "M"), ("alpha", "")],
    "description_in": [("zzz,Alpha charge", "M"), ("ALPHA CHARGE", "")],
    "description_not_in": [("Alpha charge", "O"), ("Alpha charge,beta_credit 50%", "")],
    "description_cont_any": [("zzz,CREDIT", "O"), ("zzz,yyy", "")],
}


@pytest.fixture
def pair(api: Api, db: Db, make_account: MakeAccount) -> dict[str, str]:
    am, ao = (int(make_account()["id"]) for _ in range(2))
    sm, so = service_of(db, am), service_of(db, ao)
    m = db.fetchval(
        "INSERT INTO transactions (account_id, service_id, amount, description, uuid, created_at)"
        " VALUES ($1, $2, 10, 'Alpha charge', $3, $4) RETURNING id",
        am,
        sm,
        U1,
        datetime.fromisoformat(T1),
    )
    o = db.fetchval(
        "INSERT INTO transactions (account_id, service_id, amount, description, uuid, created_at)"
        " VALUES ($1, NULL, -2.5, 'beta_credit 50%', $2, $3) RETURNING id",
        ao,
        U2,
        datetime.fromisoformat(T2),
    )
    keys = {"m": m, "o": o, "am": am, "ao": ao, "sm": sm, "so": so}
    return {name: str(value) for name, value in keys.items()}


def test_the_cases_cover_every_allowed_filter() -> None:
    assert set(CASES) == ALLOWED_FILTERS


def test_the_pair_reads_back_as_arranged(api: Api, pair: dict[str, str]) -> None:
    response = api.get(f"{TRANSACTIONS}/{pair['o']}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["attributes"] == {
        "description": "beta_credit 50%",
        "amount": "-2.5",
        "created-at": "2024-02-10T10:00:00.250Z",
        "uuid": U2,
    }
    assert data["relationships"]["service"]["data"] is None


@pytest.mark.parametrize("key", list(CASES))
def test_every_allowed_filter_matches_and_excludes(
    api: Api, pair: dict[str, str], key: str
) -> None:
    by_letter = {"M": int(pair["m"]), "O": int(pair["o"])}
    for value, expected in CASES[key]:
        found = ids(api.get(TRANSACTIONS, params={f"filter[{key}]": value.format(**pair)}))
        assert found == [by_letter[letter] for letter in expected], (key, value)


def test_filter_names_may_be_dasherized(api: Api, pair: dict[str, str]) -> None:
    found = ids(api.get(TRANSACTIONS, params={"filter[account-id-eq]": pair["ao"]}))
    assert found == [int(pair["o"])]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("account_id_eq", "abc"),
        ("account_id_in", "1,x"),
        ("service_id_not_eq", "1.5"),
        ("service_id_in", "1,x"),
        ("uuid_eq", "not-a-uuid"),
        ("uuid_not_in", f"{U1},nope"),
        ("created_at_lt", "2024-02-30T00:00:00Z"),
        ("created_at_gteq", "last week"),
        ("amount_gt", "ten"),
        ("id", "x"),
        # single-value predicates need exactly one value
        ("account_id_eq", "1,2"),
        ("uuid_not_eq", ""),
        ("created_at_eq", f"{T1},{T2}"),
        ("description_start", "a,b"),
    ],
)
def test_bad_filter_values_are_107(api: Api, account: int, key: str, value: str) -> None:
    charge(api, account, 1)

    response = api.get(TRANSACTIONS, params={f"filter[{key}]": value})

    assert response.status_code == 400
    assert response.json() == bad_request(
        "107", "Invalid filter value", f"{value} is not a valid value for {key}."
    )


@pytest.mark.parametrize(
    "key",
    ["account_id_gt", "service_id_lt", "uuid_cont", "description_gt", "status_eq", "account_id"],
)
def test_filters_the_contract_does_not_list_are_102(api: Api, key: str) -> None:
    response = api.get(TRANSACTIONS, params={f"filter[{key}]": "1"})

    assert response.status_code == 400
    assert response.json() == bad_request("102", "Filter not allowed", f"{key} is not allowed.")


# -- sorting (contract §5.7) -----------------------------------------------------------------


@pytest.fixture
def three(api: Api, db: Db, make_account: MakeAccount) -> list[int]:
    """Three transactions whose id, created-at, account-id, service-id and amount orders
    differ."""
    a1, a2, a3 = (int(make_account()["id"]) for _ in range(3))
    s1, s2, s3 = service_of(db, a3), service_of(db, a3), service_of(db, a1)
    rows = [
        (a3, s2, "5", "2024-01-02T00:00:00Z"),
        (a1, s3, "-1", "2024-01-03T00:00:00Z"),
        (a2, s1, "20", "2024-01-01T00:00:00Z"),
    ]
    return [
        int(
            db.fetchval(
                "INSERT INTO transactions (account_id, service_id, amount, created_at)"
                " VALUES ($1, $2, $3::numeric, $4) RETURNING id",
                account,
                service,
                amount,
                datetime.fromisoformat(created),
            )
        )
        for account, service, amount, created in rows
    ]


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        (None, [0, 1, 2]),
        ("id", [0, 1, 2]),
        ("-id", [2, 1, 0]),
        ("created-at", [2, 0, 1]),
        ("-created_at", [1, 0, 2]),
        ("account-id", [1, 2, 0]),
        ("-account_id", [0, 2, 1]),
        ("service-id", [2, 0, 1]),
        ("-service-id", [1, 0, 2]),
        ("amount", [1, 0, 2]),
        ("-amount", [2, 0, 1]),
    ],
)
def test_sorting(api: Api, three: list[int], sort: str | None, order: list[int]) -> None:
    params = {"sort": sort} if sort else None

    assert ids(api.get(TRANSACTIONS, params=params)) == [three[index] for index in order]


@pytest.mark.parametrize(
    ("sort", "reported"),
    [
        ("description", "description"),
        ("uuid", "uuid"),
        ("account", "account"),
        ("service.name", "service.name"),
        ("amount,balance", "balance"),
    ],
)
def test_sorting_by_anything_else_is_114(api: Api, sort: str, reported: str) -> None:
    response = api.get(TRANSACTIONS, params={"sort": sort})

    assert response.status_code == 400
    assert response.json() == bad_request(
        "114", "Invalid sort criteria", f"{reported} is not a valid sort criteria for transactions"
    )
