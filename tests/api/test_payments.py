"""Payments (contract §5.6, issue 3): the create document, the balance under a row lock, the
validations in order with nothing written on failure, filters, sorting, the relationship
that cannot change (403), our rollback extension, and each movement's ledger entry and
audit rows (§4.3)."""

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

PAYMENTS = f"{PREFIX}/payments"
ACCOUNTS = f"{PREFIX}/accounts"
TIMESTAMP = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
ATTRIBUTE_ORDER = [
    "created-at",
    "amount",
    "currency",
    "notes",
    "private-notes",
    "status",
    "type-name",
    "balance-before-payment",
    "rolledback-at",
]
FORBIDDEN = {
    "errors": [
        {
            "title": "Forbidden",
            "detail": "The account of payments cannot be changed."
            " Roll the payment back and create a new one on the other account.",
            "code": "403",
            "status": "403",
        }
    ]
}

MakeAccount = Callable[..., dict[str, Any]]


def payment_body(account: object | None, **attributes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "payments", "attributes": attributes}
    if account is not None:
        data["relationships"] = {"account": {"data": {"type": "accounts", "id": str(account)}}}
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


def pay(api: Api, account: object, amount: Any = 10, **attributes: Any) -> dict[str, Any]:
    response = api.post(PAYMENTS, payment_body(account, amount=amount, **attributes))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture
def account(make_account: MakeAccount) -> int:
    return int(make_account()["id"])


class TestPayments(ResourceContract):
    path = "payments"
    type = "payments"

    @pytest.fixture(autouse=True)
    def _account(self, account: int) -> None:
        self.account = account

    def create_body(self) -> dict[str, Any]:
        return payment_body(self.account, amount=10, notes="topup")

    def make(self, api: Api) -> str:
        return str(pay(api, self.account)["id"])


# -- create: the contract's document, the balance, the ledger, the audit -----------------------


def test_create_answers_the_contract_document(
    api: Api, db: Db, admin_id: int, account: int
) -> None:
    before = datetime.now(UTC)
    response = api.post(PAYMENTS, payment_body(account, amount=10, notes="topup"))

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == JSONAPI
    document = response.json()
    key = document["data"]["id"]
    own = f"{BASE_URL}{PAYMENTS}/{key}"
    assert response.headers["location"] == own
    created_at = document["data"]["attributes"]["created-at"]
    assert TIMESTAMP.match(created_at), created_at
    moment = datetime.fromisoformat(created_at)
    assert before - timedelta(seconds=5) <= moment <= datetime.now(UTC) + timedelta(seconds=5)
    assert document == {
        "data": {
            "id": key,
            "type": "payments",
            "links": {"self": own},
            "attributes": {
                "created-at": created_at,
                "amount": "10.0",
                "currency": "USD",
                "notes": "topup",
                "private-notes": None,
                "status": "completed",
                "type-name": "manual",
                "balance-before-payment": "0.0",
                "rolledback-at": None,
            },
            "relationships": {
                "account": {
                    "links": {
                        "self": f"{own}/relationships/account",
                        "related": f"{own}/account",
                    },
                    "data": {"type": "accounts", "id": str(account)},
                }
            },
        }
    }
    assert list(document["data"]["attributes"]) == ATTRIBUTE_ORDER
    assert api.get(f"{PAYMENTS}/{key}").json() == document
    assert balance(api, account) == "10.0"
    row = db.fetchrow(
        "SELECT account_id, amount, notes, private_notes, status_id, type_id,"
        " balance_before_payment, currency_id, rolledback_at FROM payments WHERE id = $1",
        int(key),
    )
    assert row is not None
    assert tuple(row) == (account, Decimal(10), "topup", None, 20, 20, Decimal(0), 0, None)
    assert ledger(db, account) == [
        ("opening", Decimal(0), Decimal(0), "Account", account, admin_id),
        ("payment", Decimal(10), Decimal(10), "Payment", int(key), admin_id),
    ]
    # contract §4.3: one create for the payment, one update for the account (its balance)
    # (their order is not on the wire: Yeti writes the account's first, from before_save)
    rows = audit(db)
    assert rows[0] == ("Account", account, "create", str(admin_id), "127.0.0.1")
    assert sorted(rows[1:]) == [
        ("Account", account, "update", str(admin_id), "127.0.0.1"),
        ("Payment", int(key), "create", str(admin_id), "127.0.0.1"),
    ]
    assert balance_changes(db, account) == [(Decimal(0), Decimal(10))]


def test_audit_rows_carry_the_real_ip(api: Api, db: Db, admin_id: int, account: int) -> None:
    response = api.post(
        PAYMENTS, payment_body(account, amount=2), headers={"X-Real-IP": "198.51.100.4"}
    )

    assert response.status_code == 201, response.text
    key = int(response.json()["data"]["id"])
    assert sorted(audit(db)[1:]) == [
        ("Account", account, "update", str(admin_id), "198.51.100.4"),
        ("Payment", key, "create", str(admin_id), "198.51.100.4"),
    ]


@pytest.mark.parametrize(
    ("opening", "amount", "after"),
    [
        ("0.5", "12.50", "13.00"),
        # scale 0 and four zeros: str(Decimal) of what asyncpg reads is scientific
        ("0", "10000", "1E+4"),
    ],
)
def test_audit_rows_tell_the_payment_and_the_balance(
    api: Api, db: Db, account: int, opening: str, amount: str, after: str
) -> None:
    """issue 10: both rows are written by the statements that insert the payment and move the
    balance; their JSON is what a row written on its own holds (a Decimal as its str())."""
    db.set_balance(account, opening)
    response = api.post(PAYMENTS, payment_body(account, amount=amount))

    assert response.status_code == 201, response.text
    key = int(response.json()["data"]["id"])
    rows = db.fetch(
        "SELECT item_type, item_id, object, object_changes FROM audit_log"
        " WHERE event <> 'create' OR item_type = 'Payment' ORDER BY item_type"
    )
    assert [tuple(row) for row in rows] == [
        ("Account", account, {"balance": opening}, {"balance": [opening, after]}),
        ("Payment", key, None, {"amount": [None, amount], "account_id": [None, account]}),
    ]


def test_show_includes_the_account(api: Api, account: int) -> None:
    key = pay(api, account)["id"]

    response = api.get(f"{PAYMENTS}/{key}", params={"include": "account"})

    assert response.status_code == 200
    assert response.json()["included"] == [api.get(f"{ACCOUNTS}/{account}").json()["data"]]


@pytest.mark.parametrize(
    ("sent", "rendered"),
    [(10, "10.0"), ("10.50", "10.5"), (0.333, "0.333"), ("-2", "-2.0"), ("1e2", "100.0")],
)
def test_amounts_are_read_as_decimals_and_rendered_as_strings(
    api: Api, account: int, sent: Any, rendered: str
) -> None:
    payment = pay(api, account, sent)

    assert payment["attributes"]["amount"] == rendered
    assert balance(api, account) == rendered


def test_balance_before_payment_is_the_balance_before(
    api: Api, db: Db, admin_id: int, account: int
) -> None:
    db.set_balance(account, "25.5")

    payment = pay(api, account, "4.5", **{"private-notes": "wire 77"})

    assert payment["attributes"]["balance-before-payment"] == "25.5"
    assert payment["attributes"]["private-notes"] == "wire 77"
    assert balance(api, account) == "30.0"
    assert ledger(db, account)[-1] == (
        "payment",
        Decimal("4.5"),
        Decimal("30.0"),
        "Payment",
        int(payment["id"]),
        admin_id,
    )
    second = pay(api, account, 1)
    assert second["attributes"]["balance-before-payment"] == "30.0"
    assert balance(api, account) == "31.0"
    assert_ledger_explains_balances(db)


def test_a_negative_payment_decreases_the_balance(
    api: Api, db: Db, admin_id: int, account: int
) -> None:
    db.set_balance(account, 10)

    payment = pay(api, account, -3)

    assert payment["attributes"]["amount"] == "-3.0"
    assert payment["attributes"]["balance-before-payment"] == "10.0"
    assert balance(api, account) == "7.0"
    assert ledger(db, account)[-1] == (
        "payment",
        Decimal(-3),
        Decimal(7),
        "Payment",
        int(payment["id"]),
        admin_id,
    )
    assert balance_changes(db, account) == [(Decimal(10), Decimal(7))]
    assert_ledger_explains_balances(db)


def test_the_currency_is_the_accounts(api: Api, db: Db, make_account: MakeAccount) -> None:
    currency = db.fetchval("INSERT INTO currencies (name, rate) VALUES ('EUR', 1.1) RETURNING id")
    account = int(make_account(currency="EUR")["id"])

    payment = pay(api, account, 5)

    assert payment["attributes"]["currency"] == "EUR"
    stored = db.fetchval("SELECT currency_id FROM payments WHERE id = $1", int(payment["id"]))
    assert stored == currency


def test_index_lists_payments_in_id_order_with_count(
    api: Api, account: int, make_account: MakeAccount
) -> None:
    other = int(make_account()["id"])
    made = [int(pay(api, target, amount)["id"]) for target, amount in ((other, 3), (account, 1))]
    made.append(int(pay(api, other, 2)["id"]))

    response = api.get(PAYMENTS)

    assert ids(response) == sorted(made)
    assert response.json()["meta"] == {"total-count": 3}


# -- validations (contract §5.6): in order, exact, nothing written ----------------------------


def test_null_amount_without_account_gives_the_four_errors_in_order(api: Api, db: Db) -> None:
    before = state(db, "payments")

    response = api.post(PAYMENTS, payment_body(None, amount=None))

    assert response.status_code == 422
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == {
        "errors": [
            error("account", "must exist", "relationships"),
            error("currency", "must exist"),
            error("amount", "can't be blank"),
            error("currency-id", "can't be blank"),
        ]
    }
    assert state(db, "payments") == before


MISSING_ACCOUNT = [
    error("account", "must exist", "relationships"),
    error("currency", "must exist"),
    error("currency-id", "can't be blank"),
]


@pytest.mark.parametrize(
    ("attributes", "relationship", "expected"),
    [
        ({"amount": 0}, "own", [error("amount", "must be other than 0")]),
        ({"amount": "0.00"}, "own", [error("amount", "must be other than 0")]),
        ({"amount": "-0"}, "own", [error("amount", "must be other than 0")]),
        ({}, "own", [error("amount", "can't be blank")]),
        ({"amount": ""}, "own", [error("amount", "can't be blank")]),
        ({"amount": "  "}, "own", [error("amount", "can't be blank")]),
        ({"amount": "abc"}, "own", [error("amount", "is not a number")]),
        ({"amount": [1]}, "own", [error("amount", "is not a number")]),
        ({"amount": 10}, "missing", MISSING_ACCOUNT),
        ({"amount": 10}, "huge", MISSING_ACCOUNT),
        ({"amount": 10}, "null", MISSING_ACCOUNT),
        ({"amount": 10}, "none", MISSING_ACCOUNT),
        (
            {"amount": 0},
            "missing",
            [*MISSING_ACCOUNT[:2], error("amount", "must be other than 0"), MISSING_ACCOUNT[2]],
        ),
        (
            {"amount": 10, "notes": "x" * 4097},
            "own",
            [error("notes", "is too long (maximum is 4096 characters)")],
        ),
        (
            {"amount": 10, "private-notes": "a\u0000b"},
            "own",
            [error("private-notes", "must not contain null bytes")],
        ),
        ({"amount": 10, "notes": {"a": 1}}, "own", [error("notes", "must be a string")]),
    ],
)
def test_invalid_creates_are_422_and_write_nothing(
    api: Api,
    db: Db,
    account: int,
    attributes: dict[str, Any],
    relationship: str,
    expected: list[dict[str, Any]],
) -> None:
    body = payment_body(account, **attributes)
    linkage: dict[str, Any] = {
        "own": {"type": "accounts", "id": str(account)},
        "missing": {"type": "accounts", "id": str(account + 1000)},
        "huge": {"type": "accounts", "id": str(2**40)},
        "null": None,
    }
    if relationship == "none":
        del body["data"]["relationships"]
    else:
        body["data"]["relationships"]["account"]["data"] = linkage[relationship]
    before = state(db, "payments")

    response = api.post(PAYMENTS, body)

    assert response.status_code == 422, response.text
    assert response.json() == {"errors": expected}
    assert state(db, "payments") == before
    assert balance(api, account) == "0.0"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"attributes": {"amount": 1, "balance-before-payment": 5}},
            bad_request("105", "Param not allowed", "balance-before-payment is not allowed."),
        ),
        (
            {"attributes": {"amount": 1, "status": "pending"}},
            bad_request("105", "Param not allowed", "status is not allowed."),
        ),
        (
            {"attributes": {"amount": 1, "currency": "USD"}},
            bad_request("105", "Param not allowed", "currency is not allowed."),
        ),
        (
            {"attributes": {"amount": 1, "created-at": "2024-01-01T00:00:00Z"}},
            bad_request("105", "Param not allowed", "created-at is not allowed."),
        ),
        (
            {"attributes": {"amount": 1, "private_notes": "x"}},
            bad_request("105", "Param not allowed", "private_notes is not allowed."),
        ),
        (
            {"id": "5", "attributes": {"amount": 1}},
            bad_request("105", "Param not allowed", "id is not allowed."),
        ),
        (
            {"attributes": {"amount": 1}, "type": "transactions"},
            bad_request("101", "Invalid resource", "transactions is not a valid resource."),
        ),
        (
            {"relationships": {"account": {"data": {"type": "contractors", "id": "{a}"}}}},
            bad_request(
                "116", "Type Mismatch", "contractors is not a valid type for this operation."
            ),
        ),
        (
            {"relationships": {"account": {"data": {"type": "accounts", "id": "abc"}}}},
            bad_request("103", "Invalid field value", "abc is not a valid value for id."),
        ),
    ],
)
def test_malformed_creates_are_400_and_write_nothing(
    api: Api, db: Db, account: int, data: dict[str, Any], expected: dict[str, Any]
) -> None:
    body = payment_body(account, amount=1)
    for member, value in data.items():
        if isinstance(value, dict) and "account" in value:
            value["account"]["data"]["id"] = value["account"]["data"]["id"].replace(
                "{a}", str(account)
            )
        body["data"][member] = value
    before = state(db, "payments")

    response = api.post(PAYMENTS, body)

    assert response.status_code == 400, response.text
    assert response.json() == expected
    assert state(db, "payments") == before


# -- no update, no delete, no move ----------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_a_payment_cannot_be_updated_or_deleted(
    api: Api, db: Db, account: int, make_account: MakeAccount, method: str
) -> None:
    other = int(make_account()["id"])
    payment = pay(api, account, 10)
    key = payment["id"]
    before = state(db, "payments")
    body = {
        "data": {
            "type": "payments",
            "id": key,
            "attributes": {"amount": 99, "notes": "changed"},
            "relationships": {"account": {"data": {"type": "accounts", "id": str(other)}}},
        }
    }

    response = api.request(method, f"{PAYMENTS}/{key}", json_body=body)

    assert response.status_code == 405
    assert response.headers["content-type"] == JSONAPI
    assert "GET" in {verb.strip() for verb in response.headers["allow"].split(",")}
    assert method not in {verb.strip() for verb in response.headers["allow"].split(",")}
    [problem] = response.json()["errors"]
    assert (problem["code"], problem["status"]) == ("405", "405")
    assert state(db, "payments") == before
    assert api.get(f"{PAYMENTS}/{key}").json()["data"] == payment


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_the_account_relationship_cannot_change(
    api: Api, db: Db, account: int, make_account: MakeAccount, method: str
) -> None:
    other = int(make_account()["id"])
    db.set_balance(other, 3)
    payment = pay(api, account, 10)
    key = payment["id"]
    before = state(db, "payments")
    body = None if method == "DELETE" else {"data": {"type": "accounts", "id": str(other)}}

    response = api.request(method, f"{PAYMENTS}/{key}/relationships/account", json_body=body)

    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == FORBIDDEN
    assert state(db, "payments") == before
    assert api.get(f"{PAYMENTS}/{key}").json()["data"] == payment
    assert (balance(api, account), balance(api, other)) == ("10.0", "3.0")


def test_get_the_account_relationship_and_the_related_account(
    api: Api, account: int, make_account: MakeAccount
) -> None:
    make_account()
    key = pay(api, account)["id"]
    own = f"{BASE_URL}{PAYMENTS}/{key}"

    linkage = api.get(f"{PAYMENTS}/{key}/relationships/account")
    related = api.get(f"{PAYMENTS}/{key}/account")

    assert linkage.status_code == 200
    assert linkage.json() == {
        "data": {"type": "accounts", "id": str(account)},
        "links": {"self": f"{own}/relationships/account", "related": f"{own}/account"},
    }
    assert list(linkage.json()) == ["data", "links"]
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
            "abc/relationships/account",
            400,
            {
                "title": "Invalid field value",
                "detail": "abc is not a valid value for id.",
                "code": "103",
                "status": "400",
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
def test_reading_a_missing_or_malformed_payment(
    api: Api, path: str, status: int, expected: dict[str, str]
) -> None:
    response = api.get(f"{PAYMENTS}/{path}")

    assert response.status_code == status
    assert response.json() == {"errors": [expected]}


# -- rollback (our extension) ----------------------------------------------------------------


def test_rollback_reverses_the_payment_once(api: Api, db: Db, admin_id: int, account: int) -> None:
    db.set_balance(account, 5)
    payment = pay(api, account, 10)
    key = int(payment["id"])
    audit_before = audit(db)
    started = datetime.now(UTC)

    response = api.post(f"{PAYMENTS}/{key}/rollback")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSONAPI
    document = response.json()
    rolled_back_at = document["data"]["attributes"]["rolledback-at"]
    assert TIMESTAMP.match(rolled_back_at), rolled_back_at
    moment = datetime.fromisoformat(rolled_back_at)
    assert started - timedelta(seconds=5) <= moment <= datetime.now(UTC) + timedelta(seconds=5)
    expected = {**payment["attributes"], "status": "rolled_back", "rolledback-at": rolled_back_at}
    assert document == {"data": {**payment, "attributes": expected}}
    assert api.get(f"{PAYMENTS}/{key}").json() == document
    assert balance(api, account) == "5.0"
    assert ledger(db, account)[-2:] == [
        ("payment", Decimal(10), Decimal(15), "Payment", key, admin_id),
        ("payment_rollback", Decimal(-10), Decimal(5), "Payment", key, admin_id),
    ]
    rows = audit(db)
    assert rows[: len(audit_before)] == audit_before
    assert sorted(rows[len(audit_before) :]) == [
        ("Account", account, "update", str(admin_id), "127.0.0.1"),
        ("Payment", key, "update", str(admin_id), "127.0.0.1"),
    ]
    assert balance_changes(db, account)[-1] == (Decimal(15), Decimal(5))
    assert_ledger_explains_balances(db)

    before = state(db, "payments")
    again = api.post(f"{PAYMENTS}/{key}/rollback")

    assert again.status_code == 422
    assert again.json() == {"errors": [error("status", "is already rolled back")]}
    assert state(db, "payments") == before
    assert balance(api, account) == "5.0"


def test_rolling_back_a_negative_payment_gives_the_money_back(
    api: Api, db: Db, admin_id: int, account: int
) -> None:
    db.set_balance(account, 10)
    key = int(pay(api, account, "-4.25")["id"])

    response = api.post(f"{PAYMENTS}/{key}/rollback")

    assert response.status_code == 200
    assert balance(api, account) == "10.0"
    assert ledger(db, account)[-1] == (
        "payment_rollback",
        Decimal("4.25"),
        Decimal(10),
        "Payment",
        key,
        admin_id,
    )


def test_rollback_touches_only_its_payment_and_account(
    api: Api, db: Db, account: int, make_account: MakeAccount
) -> None:
    other = int(make_account()["id"])
    kept = pay(api, account, 7)
    elsewhere = pay(api, other, 2)
    key = int(pay(api, account, 10)["id"])
    other_ledger = ledger(db, other)

    assert api.post(f"{PAYMENTS}/{key}/rollback").status_code == 200

    assert balance(api, account) == "7.0"
    assert balance(api, other) == "2.0"
    assert ledger(db, other) == other_ledger
    assert api.get(f"{PAYMENTS}/{kept['id']}").json()["data"] == kept
    assert api.get(f"{PAYMENTS}/{elsewhere['id']}").json()["data"] == elsewhere
    found = ids(api.get(PAYMENTS, params={"filter[status_eq]": "rolled_back"}))
    assert found == [key]


@pytest.mark.parametrize("status_id", [10, 30])
def test_only_completed_payments_roll_back(api: Api, db: Db, account: int, status_id: int) -> None:
    key = int(pay(api, account, 10)["id"])
    db.execute("UPDATE payments SET status_id = $2 WHERE id = $1", key, status_id)
    before = state(db, "payments")

    response = api.post(f"{PAYMENTS}/{key}/rollback")

    assert response.status_code == 422
    # docs/compatibility.md records this message
    assert response.json() == {"errors": [error("status", "must be completed to be rolled back")]}
    assert state(db, "payments") == before


@pytest.mark.parametrize(
    ("key", "status", "expected"),
    [
        (
            "999999",
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
def test_rollback_of_a_missing_or_malformed_id(
    api: Api, db: Db, account: int, key: str, status: int, expected: dict[str, str]
) -> None:
    pay(api, account, 10)
    before = state(db, "payments")

    response = api.post(f"{PAYMENTS}/{key}/rollback")

    assert response.status_code == status
    assert response.json() == {"errors": [expected]}
    assert state(db, "payments") == before


def test_rollback_requires_authentication(api: Api, db: Db, account: int) -> None:
    key = pay(api, account, 10)["id"]
    before = state(db, "payments")

    response = api.post(f"{PAYMENTS}/{key}/rollback", auth=False)

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "401"
    assert state(db, "payments") == before


# -- the row lock: a payment waits for its account, and only for it -------------------------


class RowLock:
    """Another session holding one row (an account, a payment), as a concurrent writer would."""

    def __init__(self, url: str, table: str, key: int):
        self.url, self.table, self.key = url, table, key
        self.loop = asyncio.new_event_loop()
        self.done = False

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def __enter__(self) -> RowLock:
        self.connection = self.run(asyncpg.connect(self.url))
        self.transaction = self.connection.transaction()
        self.run(self.transaction.start())
        sql = f"SELECT 1 FROM {self.table} WHERE id = $1 FOR UPDATE"
        self.run(self.connection.execute(sql, self.key))
        return self

    def commit(self, sql: str, *args: Any) -> None:
        """Write as the concurrent writer, then commit, releasing the lock."""
        self.run(self.connection.execute(sql, *args))
        self.run(self.transaction.commit())
        self.done = True

    def commit_balance(self, value: str) -> None:
        """Move the account's balance (with its ledger entry) and commit."""
        self.commit(
            "WITH moved AS (UPDATE accounts a SET balance = $2::numeric FROM accounts old"
            "  WHERE a.id = $1 AND old.id = a.id RETURNING a.id, a.balance,"
            "  old.balance AS before) INSERT INTO ledger_entries"
            " (account_id, amount, balance_after, kind)"
            " SELECT id, balance - before, balance, 'correction' FROM moved",
            self.key,
            value,
        )

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


def test_a_payment_locks_and_changes_only_its_account(
    api: Api, db: Db, account: int, make_account: MakeAccount
) -> None:
    other = int(make_account()["id"])
    db.set_balance(account, 100)
    db.set_balance(other, 7)
    other_ledger = ledger(db, other)

    with RowLock(db.url, "accounts", account) as lock:
        # another account's row lock does not hold this payment up
        elsewhere = Background(lambda: api.post(PAYMENTS, payment_body(other, amount=1)))
        done = elsewhere.response(timeout=5)
        assert done.status_code == 201, done.text
        waiting = Background(lambda: api.post(PAYMENTS, payment_body(account, amount=10)))
        wait_for_lock_waiter(db)
        assert waiting.thread.is_alive()
        # the concurrent writer commits first; the payment must start from its balance
        lock.commit_balance("50")
    response = waiting.response(timeout=10)

    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["balance-before-payment"] == "50.0"
    assert balance(api, account) == "60.0"
    assert balance(api, other) == "8.0"
    assert ledger(db, other)[: len(other_ledger)] == other_ledger
    assert [entry[:3] for entry in ledger(db, account)[-2:]] == [
        ("correction", Decimal(-50), Decimal(50)),
        ("payment", Decimal(10), Decimal(60)),
    ]
    assert_ledger_explains_balances(db)


def test_a_rollback_racing_another_rollback_reverses_once(api: Api, db: Db, account: int) -> None:
    key = int(pay(api, account, 10)["id"])
    before = state(db, "payments")

    with RowLock(db.url, "payments", key) as lock:
        waiting = Background(lambda: api.post(f"{PAYMENTS}/{key}/rollback"))
        wait_for_lock_waiter(db)
        assert waiting.thread.is_alive()
        # the other rollback wins (its balance move is not what this test is about)
        lock.commit("UPDATE payments SET status_id = 40, rolledback_at = now() WHERE id = $1", key)
    response = waiting.response(timeout=10)

    assert response.status_code == 422, response.text
    assert response.json() == {"errors": [error("status", "is already rolled back")]}
    after = state(db, "payments")
    assert (after["balances"], after["ledger"], after["audit"]) == (
        before["balances"],
        before["ledger"],
        before["audit"],
    )


def test_a_payment_changes_no_other_account(
    api: Api, db: Db, account: int, make_account: MakeAccount
) -> None:
    others = [int(make_account()["id"]) for _ in range(2)]
    db.set_balance(others[0], 4)
    rows_before = db.fetch("SELECT * FROM accounts WHERE id = ANY($1::int[]) ORDER BY id", others)
    ledgers_before = [ledger(db, other) for other in others]

    pay(api, account, 9)

    rows_after = db.fetch("SELECT * FROM accounts WHERE id = ANY($1::int[]) ORDER BY id", others)
    assert [tuple(r) for r in rows_after] == [tuple(r) for r in rows_before]
    assert [ledger(db, other) for other in others] == ledgers_before
    assert [row[0] for row in db.fetch("SELECT DISTINCT account_id FROM payments")] == [account]


# -- filters (contract §5.6) ------------------------------------------------------------------

T1 = "2024-01-10T10:00:00Z"
T2 = "2024-02-10T10:00:00.250Z"
R = "2024-03-01T00:00:00Z"
STRING_PREDICATES = ("eq", "not_eq", "cont", "start", "end", "in", "not_in", "cont_any")
ORDERED_PREDICATES = ("eq", "not_eq", "gt", "gteq", "lt", "lteq", "in", "not_in")
SET_PREDICATES = ("eq", "not_eq", "in", "not_in")
ALLOWED_FILTERS = {
    "id",
    "account.id",
    *(f"{name}_{p}" for name in ("id", "amount") for p in ORDERED_PREDICATES),
    *(f"{name}_{p}" for name in ("created_at", "rolledback_at") for p in ORDERED_PREDICATES),
    *(f"{name}_{p}" for name in ("notes", "private_notes") for p in STRING_PREDICATES),
    *(f"{name}_{p}" for name in ("status", "type_name") for p in SET_PREDICATES),
}

# Payment M (completed, manual, on account am) and payment O (rolled back, cryptomus, on ao):
# each filter key with values and the payments they select.
CASES: dict[str, list[tuple[str, str]]] = {
    "id": [("{m}", "M"), ("{m},{o}", "MO"), ("999999999", "")],
    "account.id": [("{am}", "M"), ("{am},{ao}", "MO"), ("999999", "")],
    "id_eq": [("{m}", "M"), ("999999999", "")],
    "id_not_eq": [("{m}", "O")],
    "id_gt": [("{m}", "O"), ("{o}", "")],
    "id_gteq": [("{m}", "MO"), ("{o}", "O")],
    "id_lt": [("{o}", "M"), ("{m}", "")],
    "id_lteq": [("{o}", "MO"), ("{m}", "M")],
    "id_in": [("{m},999999", "M"), ("999999", "")],
    "id_not_in": [("{m}", "O"), ("{m},{o}", "")],
    "amount_eq": [("10", "M"), ("10.00", "M"), ("-5.5", "O"), ("5.5", "")],
    "amount_not_eq": [("10", "O"), ("1", "MO")],
    "amount_gt": [("0", "M"), ("10", "")],
    "amount_gteq": [("-5.5", "MO"), ("10", "M")],
    "amount_lt": [("0", "O"), ("-5.5", "")],
    "amount_lteq": [("-5.5", "O"), ("10", "MO")],
    "amount_in": [("-5.5,7", "O"), ("7", "")],
    "amount_not_in": [("-5.5", "M"), ("10,-5.5", "")],
    "created_at_eq": [
        (T1, "M"),
        ("2024-01-10T10:00:00.000Z", "M"),
        ("2024-01-10T12:00:00+02:00", "M"),
        ("2024-01-10T10:00:00", "M"),
        (T2, "O"),
        ("2024-02-10T10:00:00Z", ""),
    ],
    "created_at_not_eq": [(T1, "O"), ("2024-01-01T00:00:00Z", "MO")],
    "created_at_gt": [(T1, "O"), ("2024-02-10T10:00:00Z", "O"), (T2, "")],
    "created_at_gteq": [(T1, "MO"), (T2, "O")],
    "created_at_lt": [(T2, "M"), (T1, "")],
    "created_at_lteq": [(T2, "MO"), (T1, "M")],
    "created_at_in": [(f"{T1},{R}", "M"), (R, "")],
    "created_at_not_in": [(T1, "O"), (f"{T1},{T2}", "")],
    "rolledback_at_eq": [(R, "O"), ("2024-03-01T01:00:00+01:00", "O"), (T1, "")],
    "rolledback_at_not_eq": [(T1, "O"), (R, "")],
    "rolledback_at_gt": [("2024-02-29T23:59:59Z", "O"), (R, "")],
    "rolledback_at_gteq": [(R, "O"), ("2024-03-01T00:00:00.001Z", "")],
    "rolledback_at_lt": [("2024-03-01T00:00:00.001Z", "O"), (R, "")],
    "rolledback_at_lteq": [(R, "O"), ("2024-02-29T00:00:00Z", "")],
    "rolledback_at_in": [(f"{R},{T1}", "O"), (T1, "")],
    "rolledback_at_not_in": [(T1, "O"), (R, "")],
    "notes_eq": [("Alpha topup", "M"), ("alpha topup", "")],
    "notes_not_eq": [("Alpha topup", "O"), ("zzz", "MO")],
    "notes_cont": [("PHA TOP", "M"), ("%", "O"), ("_", "O"), ("zzz", "")],
    "notes_start": [("ALPHA", "M"), ("topup", "")],
    "notes_end": [("100%", "O"), ("TOPUP", "M"), ("alpha", "")],
    "notes_in": [("zzz,Alpha topup", "M"), ("ALPHA TOPUP", "")],
    "notes_not_in": [("Alpha topup", "O"), ("Alpha topup,beta_refund 100%", "")],
    "notes_cont_any": [("zzz,REFUND", "O"), ("zzz,yyy", "")],
    # O has no private notes: not_eq and not_in never select it
    "private_notes_eq": [("VIP client", "M"), ("vip", "")],
    "private_notes_not_eq": [("x", "M"), ("VIP client", "")],
    "private_notes_cont": [("P CL", "M"), ("zzz", "")],
    "private_notes_start": [("vip", "M"), ("client", "")],
    "private_notes_end": [("CLIENT", "M"), ("vip", "")],
    "private_notes_in": [("VIP client,x", "M"), ("x", "")],
    "private_notes_not_in": [("x", "M"), ("VIP client", "")],
    "private_notes_cont_any": [("x,client", "M"), ("x", "")],
    "status_eq": [("completed", "M"), ("rolled_back", "O"), ("pending", "")],
    "status_not_eq": [("completed", "O"), ("canceled", "MO")],
    "status_in": [("pending,rolled_back", "O"), ("canceled", "")],
    "status_not_in": [("completed", "O"), ("completed,rolled_back", "")],
    "type_name_eq": [("manual", "M"), ("cryptomus", "O")],
    "type_name_not_eq": [("manual", "O")],
    "type_name_in": [("manual,cryptomus", "MO"), ("cryptomus", "O")],
    "type_name_not_in": [("manual", "O"), ("manual,cryptomus", "")],
}


@pytest.fixture
def pair(api: Api, db: Db, make_account: MakeAccount) -> dict[str, str]:
    """Payments M and O, stored as the filters need them (statuses, times) by SQL."""
    am, ao = (int(make_account()["id"]) for _ in range(2))
    m = db.fetchval(
        "INSERT INTO payments (account_id, amount, notes, private_notes, status_id, type_id,"
        " balance_before_payment, currency_id, created_at)"
        " VALUES ($1, 10, 'Alpha topup', 'VIP client', 20, 20, 0, 0, $2) RETURNING id",
        am,
        datetime.fromisoformat(T1),
    )
    o = db.fetchval(
        "INSERT INTO payments (account_id, amount, notes, private_notes, status_id, type_id,"
        " balance_before_payment, currency_id, created_at, rolledback_at)"
        " VALUES ($1, -5.5, 'beta_refund 100%', NULL, 40, 10, 0, 0, $2, $3) RETURNING id",
        ao,
        datetime.fromisoformat(T2),
        datetime.fromisoformat(R),
    )
    return {"m": str(m), "o": str(o), "am": str(am), "ao": str(ao)}


def test_the_cases_cover_every_allowed_filter() -> None:
    assert set(CASES) == ALLOWED_FILTERS


def test_the_pair_reads_back_as_arranged(api: Api, pair: dict[str, str]) -> None:
    response = api.get(f"{PAYMENTS}/{pair['o']}")
    assert response.status_code == 200
    assert response.json()["data"]["attributes"] == {
        "created-at": "2024-02-10T10:00:00.250Z",
        "amount": "-5.5",
        "currency": "USD",
        "notes": "beta_refund 100%",
        "private-notes": None,
        "status": "rolled_back",
        "type-name": "cryptomus",
        "balance-before-payment": "0.0",
        "rolledback-at": "2024-03-01T00:00:00.000Z",
    }


@pytest.mark.parametrize("key", list(CASES))
def test_every_allowed_filter_matches_and_excludes(
    api: Api, pair: dict[str, str], key: str
) -> None:
    by_letter = {"M": int(pair["m"]), "O": int(pair["o"])}
    for value, expected in CASES[key]:
        found = ids(api.get(PAYMENTS, params={f"filter[{key}]": value.format(**pair)}))
        assert found == [by_letter[letter] for letter in expected], (key, value)


def test_filter_names_may_be_dasherized(api: Api, pair: dict[str, str]) -> None:
    found = ids(api.get(PAYMENTS, params={"filter[type-name-eq]": "cryptomus"}))
    assert found == [int(pair["o"])]


def test_filters_combine_with_and(api: Api, pair: dict[str, str]) -> None:
    params = {"filter[amount_gt]": "-10", "filter[status_eq]": "rolled_back"}
    assert ids(api.get(PAYMENTS, params=params)) == [int(pair["o"])]


def invalid_value(detail: str) -> dict[str, Any]:
    return bad_request("107", "Invalid filter value", detail)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("status_eq", "done"),
        ("status_not_eq", "Completed"),
        ("status_in", "completed,paid"),
        ("status_not_in", "refunded"),
        ("type_name_eq", "paypal"),
        ("type_name_in", "manual,paypal"),
        ("created_at_gt", "yesterday"),
        ("created_at_eq", "2024-02-30T00:00:00Z"),
        ("created_at_in", f"{T1},soon"),
        ("rolledback_at_lt", "2024-13-01T00:00:00Z"),
        ("rolledback_at_not_in", "abc"),
        ("amount_eq", "abc"),
        ("amount_lt", "NaN"),
        ("id_gt", "x"),
        ("account.id", "abc"),
        ("id", "1,x"),
        # single-value predicates need exactly one value
        ("amount_eq", "1,2"),
        ("created_at_eq", f"{T1},{T2}"),
        ("rolledback_at_gteq", ""),
        ("status_eq", "completed,pending"),
        ("notes_eq", "a,b"),
    ],
)
def test_bad_filter_values_are_107(api: Api, account: int, key: str, value: str) -> None:
    pay(api, account, 1)

    response = api.get(PAYMENTS, params={f"filter[{key}]": value})

    assert response.status_code == 400
    assert response.json() == invalid_value(f"{value} is not a valid value for {key}.")


@pytest.mark.parametrize(
    ("key", "reported"),
    [
        ("currency_eq", "currency_eq"),
        ("balance_before_payment_eq", "balance_before_payment_eq"),
        ("uuid_eq", "uuid_eq"),
        ("status_cont", "status_cont"),
        ("status_gt", "status_gt"),
        ("account_id_eq", "account_id_eq"),
        ("rollback_at_eq", "rollback_at_eq"),
        ("status", "status"),
        ("account.name", "name"),
    ],
)
def test_filters_the_contract_does_not_list_are_102(api: Api, key: str, reported: str) -> None:
    response = api.get(PAYMENTS, params={f"filter[{key}]": "1"})

    assert response.status_code == 400
    assert response.json() == bad_request(
        "102", "Filter not allowed", f"{reported} is not allowed."
    )


# -- sorting (contract §5.6) -----------------------------------------------------------------


@pytest.fixture
def three(api: Api, db: Db, account: int) -> list[int]:
    """Three payments whose amount, created-at and rolledback-at orders all differ from id's."""
    rows = [
        ("5", "2024-01-02T00:00:00Z", "2024-03-03T00:00:00Z"),
        ("-1", "2024-01-03T00:00:00Z", "2024-03-01T00:00:00Z"),
        ("20", "2024-01-01T00:00:00Z", "2024-03-02T00:00:00Z"),
    ]
    return [
        int(
            db.fetchval(
                "INSERT INTO payments (account_id, amount, currency_id, created_at, rolledback_at,"
                " status_id) VALUES ($1, $2::numeric, 0, $3, $4, 40) RETURNING id",
                account,
                amount,
                datetime.fromisoformat(created),
                datetime.fromisoformat(rolled),
            )
        )
        for amount, created, rolled in rows
    ]


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        (None, [0, 1, 2]),
        ("amount", [1, 0, 2]),
        ("-amount", [2, 0, 1]),
        ("created-at", [2, 0, 1]),
        ("-created_at", [1, 0, 2]),
        ("rollback-at", [1, 2, 0]),
        ("-rollback-at", [0, 2, 1]),
        ("rollback_at", [1, 2, 0]),
        # issue 3: the column's own name works as well as Yeti's typo
        ("rolledback-at", [1, 2, 0]),
        ("-rolledback-at", [0, 2, 1]),
    ],
)
def test_sorting(api: Api, three: list[int], sort: str | None, order: list[int]) -> None:
    params = {"sort": sort} if sort else None

    assert ids(api.get(PAYMENTS, params=params)) == [three[index] for index in order]


@pytest.mark.parametrize(
    ("sort", "reported"),
    [
        ("id", "id"),
        ("-id", "id"),
        ("notes", "notes"),
        ("status", "status"),
        ("currency", "currency"),
        ("balance-before-payment", "balance_before_payment"),
        ("amount,id", "id"),
    ],
)
def test_sorting_by_anything_else_is_114(api: Api, account: int, sort: str, reported: str) -> None:
    pay(api, account, 1)

    response = api.get(PAYMENTS, params={"sort": sort})

    assert response.status_code == 400
    assert response.json() == bad_request(
        "114", "Invalid sort criteria", f"{reported} is not a valid sort criteria for payments"
    )
