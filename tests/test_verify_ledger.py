"""`accounts-api verify-ledger` (issue 3), run for real: exit 0 when every account's balance
is the sum of its ledger entries and each entry's balance_after continues the chain; exit 1
naming the accounts that disagree, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tests.api.conftest import account_body
from tests.conftest import Api, Db, run

CLI = str(Path(sys.executable).parent / "accounts-api")
TIMEOUT = 60
ACCOUNTS = "/api/rest/admin/accounts"
PAYMENTS = "/api/rest/admin/payments"
NAMES = ("ledger-alpha", "ledger-beta", "ledger-gamma")


def verify(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACCOUNTS_API")}
    env["DATABASE_URL"] = database_url
    return subprocess.run(
        [CLI, "verify-ledger"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def in_one_transaction(database_url: str, *statements: str) -> None:
    """Statements on one connection, in one transaction (the tampering must not leak)."""

    async def execute() -> None:
        connection = await asyncpg.connect(database_url)
        try:
            async with connection.transaction():
                for statement in statements:
                    await connection.execute(statement)
        finally:
            await connection.close()

    run(execute())


@pytest.fixture
def accounts(api: Api, db: Db) -> list[int]:
    """Three accounts made through the API, each with an opening entry and a payment."""
    contractor_id = db.fetchval(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('ledger-contractor', true, true, false) RETURNING id"
    )
    ids = []
    for number, name in enumerate(NAMES, start=1):
        created = api.post(ACCOUNTS, account_body(contractor_id, name=name))
        assert created.status_code == 201, created.text
        account_id = int(created.json()["data"]["id"])
        response = api.post(
            PAYMENTS,
            {
                "data": {
                    "type": "payments",
                    "attributes": {"amount": str(number * 10)},
                    "relationships": {
                        "account": {"data": {"type": "accounts", "id": str(account_id)}}
                    },
                }
            },
        )
        assert response.status_code == 201, response.text
        ids.append(account_id)
    return ids


@contextmanager
def tampered_balance(database_url: str, account_id: int, balance: str) -> Iterator[None]:
    """The balance changed behind the ledger's back, then put back."""

    def force(value: str) -> None:
        in_one_transaction(
            database_url,
            "ALTER TABLE accounts DISABLE TRIGGER accounts_balance_in_ledger",
            f"UPDATE accounts SET balance = {value} WHERE id = {account_id}",
            "ALTER TABLE accounts ENABLE TRIGGER accounts_balance_in_ledger",
        )

    reader = Db(database_url)
    try:
        original = reader.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)
    finally:
        reader.close()
    force(balance)
    try:
        yield
    finally:
        force(str(original))


@contextmanager
def tampered_chain(database_url: str, account_id: int) -> Iterator[None]:
    """Two entries whose amounts cancel out (the sum still matches the balance) but whose
    first balance_after does not follow the chain; removed afterwards."""
    in_one_transaction(
        database_url,
        "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_chain",
        "INSERT INTO ledger_entries (account_id, amount, balance_after, kind)"
        f" SELECT {account_id}, 5, 999, 'correction'",
        "INSERT INTO ledger_entries (account_id, amount, balance_after, kind)"
        f" SELECT {account_id}, -5, balance, 'correction' FROM accounts WHERE id = {account_id}",
        "ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_chain",
    )
    try:
        yield
    finally:
        in_one_transaction(
            database_url,
            "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_immutable",
            "DELETE FROM ledger_entries WHERE id IN (SELECT id FROM ledger_entries"
            f" WHERE account_id = {account_id} ORDER BY id DESC LIMIT 2)",
            "ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_immutable",
        )


def lines_naming(output: str, name: str) -> list[str]:
    return [line for line in output.splitlines() if name in line]


def test_exits_0_and_prints_the_count_when_all_agree(
    database_url: str, accounts: list[int]
) -> None:
    result = verify(database_url)

    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "3 accounts checked" in output
    for name in NAMES:
        assert name not in output


def test_exits_0_with_no_accounts(database_url: str, api: Api) -> None:
    result = verify(database_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 accounts checked" in result.stdout + result.stderr


def test_a_tampered_balance_is_named(database_url: str, db: Db, accounts: list[int]) -> None:
    tampered = accounts[1]

    with tampered_balance(database_url, tampered, "12345.67"):
        assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", tampered) == Decimal(
            "12345.67"
        )
        result = verify(database_url)

    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    [line] = lines_naming(output, "ledger-beta")
    assert str(tampered) in line
    assert "12345.67" in line
    assert lines_naming(output, "ledger-alpha") == []
    assert lines_naming(output, "ledger-gamma") == []
    # the trigger is back: the same change without its entry is refused again
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        db.execute("UPDATE accounts SET balance = 5 WHERE id = $1", tampered)
    assert verify(database_url).returncode == 0


def test_a_broken_chain_is_named(database_url: str, db: Db, accounts: list[int]) -> None:
    tampered = accounts[2]

    with tampered_chain(database_url, tampered):
        total = db.fetchval(
            "SELECT sum(amount) FROM ledger_entries WHERE account_id = $1", tampered
        )
        assert total == db.fetchval("SELECT balance FROM accounts WHERE id = $1", tampered)
        result = verify(database_url)

    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    [line] = lines_naming(output, "ledger-gamma")
    assert str(tampered) in line
    assert lines_naming(output, "ledger-alpha") == []
    assert lines_naming(output, "ledger-beta") == []
    # the chain trigger is back
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        db.execute(
            "INSERT INTO ledger_entries (account_id, amount, balance_after, kind)"
            " VALUES ($1, 1, 999, 'correction')",
            tampered,
        )
    assert verify(database_url).returncode == 0
