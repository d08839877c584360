"""Reading back what a money movement wrote: balances, ledger entries, audit rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.conftest import Api, Db

ACCOUNTS = "/api/rest/admin/accounts"


def balance(api: Api, account: object) -> str:
    response = api.get(f"{ACCOUNTS}/{account}")
    assert response.status_code == 200, response.text
    value: str = response.json()["data"]["attributes"]["balance"]
    return value


def ledger(db: Db, account: object) -> list[tuple[Any, ...]]:
    rows = db.fetch(
        "SELECT kind, amount, balance_after, source_type, source_id, admin_id"
        " FROM ledger_entries WHERE account_id = $1 ORDER BY id",
        int(str(account)),
    )
    return [tuple(row) for row in rows]


def audit(db: Db) -> list[tuple[Any, ...]]:
    rows = db.fetch(
        "SELECT item_type, item_id, event, whodunnit, host(ip) FROM audit_log ORDER BY id"
    )
    return [tuple(row) for row in rows]


def balance_changes(db: Db, account: object) -> list[tuple[Decimal, Decimal]]:
    """The (before, after) balance of every Account update audit row of one account."""
    rows = db.fetch(
        "SELECT object_changes FROM audit_log"
        " WHERE item_type = 'Account' AND event = 'update' AND item_id = $1 ORDER BY id",
        int(str(account)),
    )
    pairs = [row[0]["balance"] for row in rows]
    return [(Decimal(str(before)), Decimal(str(after))) for before, after in pairs]


def state(db: Db, table: str) -> dict[str, Any]:
    """Everything a movement writes: its own table's rows, balances, ledger and audit log."""
    return {
        table: [tuple(r) for r in db.fetch(f"SELECT * FROM {table} ORDER BY id")],
        "balances": [tuple(r) for r in db.fetch("SELECT id, balance FROM accounts ORDER BY id")],
        "ledger": [tuple(r) for r in db.fetch("SELECT * FROM ledger_entries ORDER BY id")],
        "audit": [tuple(r) for r in db.fetch("SELECT * FROM audit_log ORDER BY id")],
    }


def assert_ledger_explains_balances(db: Db) -> None:
    disagreeing = db.fetch(
        "SELECT a.id FROM accounts a LEFT JOIN (SELECT account_id, sum(amount) AS total"
        " FROM ledger_entries GROUP BY account_id) l ON l.account_id = a.id"
        " WHERE a.balance <> COALESCE(l.total, 0)"
    )
    assert disagreeing == []


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["meta"]["total-count"] == len(document["data"])
    return [int(item["id"]) for item in document["data"]]
