"""The ledger (issue 3): every change of a balance writes one immutable entry in the same
transaction; the database refuses edits, broken chains and unexplained balances; the
entries are read at GET /accounts/{id}/ledger-entries and /ledger-entries (read-only); a
failure before commit leaves balance, ledger, payments and audit as they were."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from starlette.testclient import TestClient

from accounts_api.app import create_app
from accounts_api.settings import Settings
from tests.conftest import BASE_URL, JSONAPI, ROOT, SECRET, Api, Db

PREFIX = "/api/rest/admin"
ACCOUNTS = f"{PREFIX}/accounts"
PAYMENTS = f"{PREFIX}/payments"
TRANSACTIONS = f"{PREFIX}/transactions"
LEDGER = f"{PREFIX}/ledger-entries"
EXTERNAL_ID = 900_000_000_200
PAGE_1_OF_50 = "page%5Bnumber%5D=1&page%5Bsize%5D=50"

MakeAccount = Callable[..., dict[str, Any]]


def nested(account_id: object) -> str:
    return f"{ACCOUNTS}/{account_id}/ledger-entries"


def entries_of(db: Db, account_id: int) -> list[dict[str, Any]]:
    rows = db.fetch("SELECT * FROM ledger_entries WHERE account_id = $1 ORDER BY id", account_id)
    return [dict(row) for row in rows]


def balance_of(db: Db, account_id: int) -> Decimal:
    balance: Decimal = db.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)
    return balance


def add_entry(db: Db, account_id: int, amount: str, kind: str, created_at: datetime) -> int:
    """An entry (and the balance it explains) at a chosen time, as the app would write it."""
    entry_id: int = db.fetchval(
        "WITH moved AS (UPDATE accounts SET balance = balance + $2::numeric WHERE id = $1"
        "  RETURNING id, balance)"
        " INSERT INTO ledger_entries (account_id, amount, balance_after, kind, created_at)"
        " SELECT id, $2::numeric, balance, $3, $4 FROM moved RETURNING id",
        account_id,
        amount,
        kind,
        created_at,
    )
    return entry_id


def payment(api: Api, account_id: object, amount: str) -> Any:
    return api.post(
        PAYMENTS,
        {
            "data": {
                "type": "payments",
                "attributes": {"amount": amount},
                "relationships": {"account": {"data": {"type": "accounts", "id": str(account_id)}}},
            }
        },
    )


def pay(api: Api, account_id: object, amount: str) -> int:
    response = payment(api, account_id, amount)
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


def charge(api: Api, account_id: object, amount: str) -> Any:
    return api.post(
        TRANSACTIONS,
        {
            "data": {
                "type": "transactions",
                "attributes": {"amount": amount, "description": "charge"},
                "relationships": {"account": {"data": {"type": "accounts", "id": str(account_id)}}},
            }
        },
    )


def correct(api: Api, account_id: object, correction: str) -> Any:
    return api.put(
        f"{ACCOUNTS}/{account_id}/balance-correction",
        {
            "data": {
                "type": "balance-correction",
                "id": str(account_id),
                "attributes": {"correction": correction},
            }
        },
    )


def set_absolute(api: Api, external_id: int, balance: str) -> Any:
    return api.put(
        f"{ACCOUNTS}/{external_id}/balance",
        {"data": {"type": "balances", "id": str(external_id), "attributes": {"balance": balance}}},
    )


def rollback(api: Api, payment_id: int) -> Any:
    return api.post(f"{PAYMENTS}/{payment_id}/rollback")


def assert_chain(entries: list[dict[str, Any]], balance: Decimal) -> None:
    running = Decimal(0)
    for entry in entries:
        running += entry["amount"]
        assert entry["balance_after"] == running, entry
    assert balance == running == sum((entry["amount"] for entry in entries), Decimal(0))


@pytest.fixture
def account_id(make_account: MakeAccount) -> int:
    return int(make_account(name="ledgered", **{"external-id": EXTERNAL_ID})["id"])


# -- the database holds the ledger to its rules ------------------------------------------------


def test_account_create_writes_one_opening_entry(
    api: Api, db: Db, admin_id: int, account_id: int
) -> None:
    [entry] = entries_of(db, account_id)

    assert entry["kind"] == "opening"
    assert entry["amount"] == 0
    assert entry["balance_after"] == 0
    assert (entry["source_type"], entry["source_id"]) == ("Account", account_id)
    assert entry["admin_id"] == admin_id


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_entries SET amount = amount + 1 WHERE account_id = $1",
        "UPDATE ledger_entries SET kind = 'correction' WHERE account_id = $1",
        "DELETE FROM ledger_entries WHERE account_id = $1",
    ],
)
def test_entries_cannot_be_changed_or_deleted(api: Api, db: Db, account_id: int, sql: str) -> None:
    pay(api, account_id, "10")
    before = entries_of(db, account_id)

    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="cannot be changed"):
        db.execute(sql, account_id)

    assert entries_of(db, account_id) == before


@pytest.mark.parametrize(
    ("amount", "balance_after"),
    [("5", "999"), ("5", "10"), ("0", "11"), ("-10", "20")],
)
def test_an_entry_that_breaks_the_chain_is_refused(
    api: Api, db: Db, account_id: int, amount: str, balance_after: str
) -> None:
    pay(api, account_id, "10")
    before = entries_of(db, account_id)

    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="breaks the chain"):
        db.execute(
            "INSERT INTO ledger_entries (account_id, amount, balance_after, kind)"
            " VALUES ($1, $2::numeric, $3::numeric, 'correction')",
            account_id,
            amount,
            balance_after,
        )

    assert entries_of(db, account_id) == before


def test_an_entry_that_continues_the_chain_is_accepted(api: Api, db: Db, account_id: int) -> None:
    pay(api, account_id, "10")

    db.set_balance(account_id, "12.5")

    assert_chain(entries_of(db, account_id), balance_of(db, account_id))
    assert balance_of(db, account_id) == Decimal("12.5")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE accounts SET balance = 5 WHERE id = $1",
        "UPDATE accounts SET balance = balance + 0.01 WHERE id = $1",
        # an entry for another account explains nothing
        "WITH moved AS (UPDATE accounts SET balance = 5 WHERE id = $1 RETURNING id)"
        " INSERT INTO ledger_entries (account_id, amount, balance_after, kind)"
        " SELECT id + 1000000, 5, 5, 'correction' FROM moved",
    ],
)
def test_a_balance_without_its_entry_is_refused_at_commit(
    api: Api, db: Db, account_id: int, sql: str
) -> None:
    pay(api, account_id, "10")
    before = entries_of(db, account_id)

    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="not in the ledger"):
        db.execute(sql, account_id)

    assert balance_of(db, account_id) == 10
    assert entries_of(db, account_id) == before


def test_every_movement_is_one_entry_and_the_balance_is_their_sum(
    api: Api, db: Db, admin_id: int, account_id: int, make_account: MakeAccount
) -> None:
    other = int(make_account(name="bystander")["id"])
    pay(api, other, "7")

    first = pay(api, account_id, "100")
    second = pay(api, account_id, "-30")
    transaction = charge(api, account_id, "20")
    assert transaction.status_code == 201, transaction.text
    assert correct(api, account_id, "5.5").status_code == 200
    assert set_absolute(api, EXTERNAL_ID, "200").status_code == 200
    assert rollback(api, first).status_code == 200
    refund = charge(api, account_id, "-0.25")
    assert refund.status_code == 201, refund.text

    entries = entries_of(db, account_id)
    transaction_id = int(transaction.json()["data"]["id"])
    refund_id = int(refund.json()["data"]["id"])
    assert [
        (e["kind"], e["amount"], e["balance_after"], e["source_type"], e["source_id"])
        for e in entries
    ] == [
        ("opening", 0, 0, "Account", account_id),
        ("payment", 100, 100, "Payment", first),
        ("payment", -30, 70, "Payment", second),
        ("transaction", -20, 50, "Transaction", transaction_id),
        ("correction", Decimal("5.5"), Decimal("55.5"), "Account", account_id),
        ("absolute_set", Decimal("144.5"), 200, "Account", account_id),
        ("payment_rollback", -100, 100, "Payment", first),
        ("transaction", Decimal("0.25"), Decimal("100.25"), "Transaction", refund_id),
    ]
    assert {e["admin_id"] for e in entries} == {admin_id}
    assert balance_of(db, account_id) == Decimal("100.25")
    assert_chain(entries, balance_of(db, account_id))
    assert_chain(entries_of(db, other), balance_of(db, other))
    assert balance_of(db, other) == 7
    # the API renders the same balance
    attributes = api.get(f"{ACCOUNTS}/{account_id}").json()["data"]["attributes"]
    assert attributes["balance"] == "100.25"


def test_a_rejected_movement_writes_no_entry(api: Api, db: Db, account_id: int) -> None:
    payment = pay(api, account_id, "10")
    rollback(api, payment)
    before = entries_of(db, account_id)

    assert rollback(api, payment).status_code == 422
    assert charge(api, account_id, "0").status_code == 422
    assert correct(api, account_id, "abc").status_code == 422
    assert set_absolute(api, EXTERNAL_ID, "abc").status_code == 422

    assert entries_of(db, account_id) == before
    assert balance_of(db, account_id) == 0


# -- GET /accounts/{id}/ledger-entries ---------------------------------------------------------


def entry_object(entry: dict[str, Any]) -> dict[str, Any]:
    own = f"{BASE_URL}{LEDGER}/{entry['id']}"
    return {
        "id": str(entry["id"]),
        "type": "ledger-entries",
        "links": {"self": own},
        "attributes": {
            "created-at": entry["created_at"]
            .astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "kind": entry["kind"],
            "amount": entry["amount_text"],
            "balance-after": entry["balance_after_text"],
            "source-type": entry["source_type"],
            "source-id": entry["source_id"],
            "admin-id": entry["admin_id"],
        },
        "relationships": {
            "account": {
                "links": {
                    "self": f"{own}/relationships/account",
                    "related": f"{own}/account",
                },
                "data": {"type": "accounts", "id": str(entry["account_id"])},
            }
        },
    }


def test_nested_index_renders_the_accounts_entries(
    api: Api, db: Db, admin_id: int, account_id: int, make_account: MakeAccount
) -> None:
    other = int(make_account(name="bystander")["id"])
    pay(api, other, "3")
    payment = pay(api, account_id, "10.5")
    assert charge(api, account_id, "0.5").status_code == 201

    response = api.get(nested(account_id))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSONAPI
    document = response.json()
    entries = entries_of(db, account_id)
    texts = [("0.0", "0.0"), ("10.5", "10.5"), ("-0.5", "10.0")]
    expected = [
        entry_object({**entry, "amount_text": amount, "balance_after_text": after})
        for entry, (amount, after) in zip(entries, texts, strict=True)
    ]
    assert document == {
        "data": expected,
        "meta": {"total-count": 3},
        "links": {
            "first": f"{BASE_URL}{nested(account_id)}?{PAGE_1_OF_50}",
            "last": f"{BASE_URL}{nested(account_id)}?{PAGE_1_OF_50}",
        },
    }
    assert document["data"][1]["attributes"]["source-id"] == payment
    assert document["data"][1]["attributes"]["admin-id"] == admin_id


def test_nested_index_paginates_on_the_nested_url(api: Api, account_id: int) -> None:
    for amount in ("1", "2", "3", "4"):
        pay(api, account_id, amount)
    url = f"{BASE_URL}{nested(account_id)}"

    response = api.get(nested(account_id), params={"page[size]": "2", "page[number]": "2"})

    assert response.status_code == 200, response.text
    document = response.json()
    assert [item["attributes"]["amount"] for item in document["data"]] == ["2.0", "3.0"]
    assert document["meta"] == {"total-count": 5}
    assert document["links"] == {
        "first": f"{url}?page%5Bnumber%5D=1&page%5Bsize%5D=2",
        "prev": f"{url}?page%5Bnumber%5D=1&page%5Bsize%5D=2",
        "next": f"{url}?page%5Bnumber%5D=3&page%5Bsize%5D=2",
        "last": f"{url}?page%5Bnumber%5D=3&page%5Bsize%5D=2",
    }


@pytest.fixture
def dated_entries(api: Api, db: Db, account_id: int) -> dict[str, int]:
    """Entries in January, February and March 2024 besides today's opening entry."""
    return {
        "jan": add_entry(db, account_id, "1", "payment", datetime(2024, 1, 15, tzinfo=UTC)),
        "feb": add_entry(db, account_id, "2", "correction", datetime(2024, 2, 1, tzinfo=UTC)),
        "mar": add_entry(db, account_id, "-3", "transaction", datetime(2024, 3, 1, tzinfo=UTC)),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"filter[kind_eq]": "payment"}, ["jan"]),
        ({"filter[kind-eq]": "correction"}, ["feb"]),
        ({"filter[kind_in]": "payment,transaction"}, ["jan", "mar"]),
        ({"filter[kind_not_eq]": "opening"}, ["jan", "feb", "mar"]),
        ({"filter[kind_eq]": "absolute_set"}, []),
        ({"filter[created_at_gteq]": "2024-02-01T00:00:00Z"}, ["feb", "mar", "opening"]),
        ({"filter[created_at_lt]": "2024-02-01T00:00:00Z"}, ["jan"]),
        (
            {
                "filter[created_at_gteq]": "2024-02-01T00:00:00Z",
                "filter[created_at_lt]": "2024-03-01T00:00:00Z",
            },
            ["feb"],
        ),
        (
            {
                "filter[created_at_lt]": "2024-12-31T00:00:00Z",
                "filter[kind_in]": "payment,correction",
            },
            ["jan", "feb"],
        ),
    ],
)
def test_nested_index_filters(
    api: Api,
    db: Db,
    account_id: int,
    dated_entries: dict[str, int],
    params: dict[str, str],
    expected: list[str],
) -> None:
    [opening] = [e["id"] for e in entries_of(db, account_id) if e["kind"] == "opening"]
    names = {**{str(key): name for name, key in dated_entries.items()}, str(opening): "opening"}

    response = api.get(nested(account_id), params=params)

    assert response.status_code == 200, response.text
    document = response.json()
    assert [names[item["id"]] for item in document["data"]] == sorted(
        expected, key=lambda name: dated_entries.get(name, opening)
    )
    assert document["meta"] == {"total-count": len(expected)}
    assert document["links"]["first"].startswith(f"{BASE_URL}{nested(account_id)}?filter%5B")


def bad_request(title: str, detail: str, code: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "code": code, "status": "400"}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (
            {"filter[kind_eq]": "bogus"},
            bad_request("Invalid filter value", "bogus is not a valid value for kind_eq.", "107"),
        ),
        (
            {"filter[kind_in]": "payment,bogus"},
            bad_request(
                "Invalid filter value", "payment,bogus is not a valid value for kind_in.", "107"
            ),
        ),
        (
            {"filter[no_such_thing]": "1"},
            bad_request("Filter not allowed", "no_such_thing is not allowed.", "102"),
        ),
        (
            {"filter[amount_eq]": "1"},
            bad_request("Filter not allowed", "amount_eq is not allowed.", "102"),
        ),
    ],
)
def test_nested_index_bad_filters(
    api: Api, account_id: int, params: dict[str, str], error: dict[str, Any]
) -> None:
    response = api.get(nested(account_id), params=params)

    assert response.status_code == 400
    assert response.json() == {"errors": [error]}


def test_nested_index_of_a_missing_account_is_404(api: Api) -> None:
    response = api.get(nested(999999))

    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {
                "title": "Record not found",
                "detail": "The record identified by 999999 could not be found.",
                "code": "404",
                "status": "404",
            }
        ]
    }


def test_nested_index_of_a_non_integer_id_is_103(api: Api) -> None:
    response = api.get(nested("abc"))

    assert response.status_code == 400
    assert response.json() == {
        "errors": [bad_request("Invalid field value", "abc is not a valid value for id.", "103")]
    }


def test_nested_index_requires_authentication(api: Api, account_id: int) -> None:
    response = api.get(nested(account_id), auth=False)

    assert response.status_code == 401


# -- /ledger-entries: read-only ----------------------------------------------------------------


def test_index_and_show_read_every_accounts_entries(
    api: Api, db: Db, account_id: int, make_account: MakeAccount
) -> None:
    other = int(make_account(name="bystander")["id"])
    pay(api, other, "3")
    ids = [e["id"] for e in db.fetch("SELECT id FROM ledger_entries ORDER BY id")]

    index = api.get(LEDGER)
    show = api.get(f"{LEDGER}/{ids[-1]}")

    assert index.status_code == 200, index.text
    assert [item["id"] for item in index.json()["data"]] == [str(key) for key in ids]
    assert index.json()["meta"] == {"total-count": 3}
    assert index.json()["links"]["first"] == f"{BASE_URL}{LEDGER}?{PAGE_1_OF_50}"
    assert show.status_code == 200, show.text
    data = show.json()["data"]
    assert data["id"] == str(ids[-1])
    assert data["type"] == "ledger-entries"
    assert data["attributes"]["kind"] == "payment"
    assert data["attributes"]["amount"] == "3.0"
    assert data["attributes"]["balance-after"] == "3.0"
    assert data["relationships"]["account"]["data"] == {"type": "accounts", "id": str(other)}


def test_show_of_a_missing_entry_is_404(api: Api) -> None:
    response = api.get(f"{LEDGER}/999999")

    assert response.status_code == 404
    assert response.json()["errors"][0]["detail"] == (
        "The record identified by 999999 could not be found."
    )


@pytest.mark.parametrize(
    ("method", "member", "body"),
    [
        ("POST", False, {"data": {"type": "ledger-entries", "attributes": {"amount": "1"}}}),
        ("PATCH", True, {"data": {"type": "ledger-entries", "id": "ID", "attributes": {}}}),
        ("PUT", True, {"data": {"type": "ledger-entries", "id": "ID", "attributes": {}}}),
        ("DELETE", True, None),
    ],
)
def test_ledger_entries_are_read_only(
    api: Api, db: Db, account_id: int, method: str, member: bool, body: Any
) -> None:
    [entry] = entries_of(db, account_id)
    path = f"{LEDGER}/{entry['id']}" if member else LEDGER
    if body is not None and "id" in body["data"]:
        body = {"data": {**body["data"], "id": str(entry["id"])}}

    response = api.request(method, path, json_body=body)

    assert response.status_code == 405
    assert response.headers["content-type"] == JSONAPI
    assert {verb.strip() for verb in response.headers["allow"].split(",")} == {"GET", "HEAD"}
    assert response.json()["errors"][0]["code"] == "405"
    assert entries_of(db, account_id) == [entry]


def test_deleting_an_account_keeps_its_entries(api: Api, db: Db, account_id: int) -> None:
    pay(api, account_id, "10")
    before = entries_of(db, account_id)

    response = api.delete(f"{ACCOUNTS}/{account_id}")

    assert response.status_code == 204, response.text
    after = entries_of(db, account_id)
    # the entries stay, closed by one that takes the balance to 0
    assert after[:-1] == before
    closing = after[-1]
    assert (closing["kind"], closing["amount"], closing["balance_after"]) == (
        "closing",
        Decimal("-10"),
        Decimal("0"),
    )
    assert api.get(f"{LEDGER}/{before[-1]['id']}").status_code == 200
    assert api.get(nested(account_id)).status_code == 404


# -- a failure before commit leaves nothing behind ---------------------------------------------


@pytest.fixture(scope="module")
def failing_client(database_url: str, admin_id: int) -> Iterator[TestClient]:
    """The app as in tests/conftest.py, but answering server errors with their 500."""
    settings = Settings(
        database_url=database_url,
        data_dir=ROOT / "var" / "test-data",
        token_lifetime=None,
        pool_size=2,
        secret_key_env=SECRET,
    )
    app = create_app(settings)
    with TestClient(
        app, base_url=BASE_URL, client=("127.0.0.1", 50000), raise_server_exceptions=False
    ) as client:
        yield client


@contextmanager
def account_audit_fails(db: Db) -> Iterator[None]:
    """Inserting an 'Account' audit row raises: every balance change audits after moving the
    balance and writing its entry, so the failure comes between those and the commit."""
    db.execute(
        "CREATE FUNCTION test_injected_failure() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'injected failure'; END $$;"
        " CREATE TRIGGER test_injected_failure BEFORE INSERT ON audit_log FOR EACH ROW"
        " WHEN (NEW.item_type = 'Account') EXECUTE FUNCTION test_injected_failure()"
    )
    try:
        yield
    finally:
        db.execute(
            "DROP TRIGGER IF EXISTS test_injected_failure ON audit_log;"
            " DROP FUNCTION IF EXISTS test_injected_failure()"
        )


def everything(db: Db) -> dict[str, Any]:
    return {
        "accounts": [dict(r) for r in db.fetch("SELECT id, balance FROM accounts ORDER BY id")],
        "ledger": [dict(r) for r in db.fetch("SELECT * FROM ledger_entries ORDER BY id")],
        "payments": [dict(r) for r in db.fetch("SELECT * FROM payments ORDER BY id")],
        "transactions": [dict(r) for r in db.fetch("SELECT * FROM transactions ORDER BY id")],
        "audit": [dict(r) for r in db.fetch("SELECT * FROM audit_log ORDER BY id")],
    }


@pytest.mark.parametrize(
    "operation", ["payment", "transaction", "correction", "balance", "rollback"]
)
def test_a_failure_before_commit_changes_nothing(
    api: Api,
    db: Db,
    account_id: int,
    failing_client: TestClient,
    token: str,
    operation: str,
) -> None:
    paid = pay(api, account_id, "50")
    before = everything(db)
    failing = Api(failing_client, token)
    requests: dict[str, Callable[[], Any]] = {
        "payment": lambda: payment(failing, account_id, "10"),
        "transaction": lambda: charge(failing, account_id, "10"),
        "correction": lambda: correct(failing, account_id, "10"),
        "balance": lambda: set_absolute(failing, EXTERNAL_ID, "10"),
        "rollback": lambda: rollback(failing, paid),
    }

    with account_audit_fails(db):
        response = requests[operation]()

    assert response.status_code == 500, response.text
    [error] = response.json()["errors"]
    assert (error["title"], error["code"], error["status"]) == (
        "Internal Server Error",
        "500",
        "500",
    )
    assert everything(db) == before
    # and the same request goes through once nothing fails
    assert requests[operation]().status_code in (200, 201)
    assert_chain(entries_of(db, account_id), balance_of(db, account_id))
