"""The ledger: every change of an account's balance, in the transaction that makes it.

`post` moves the balance and writes the entry in one statement; the database checks the
chain and, at commit, that the balance is the latest entry's `balance_after`
(migration 0002). Callers lock the account row first when they need the balance before.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from accounts_api.db.pool import Connection


class Kind(enum.StrEnum):
    OPENING = "opening"
    PAYMENT = "payment"
    PAYMENT_ROLLBACK = "payment_rollback"
    TRANSACTION = "transaction"
    CORRECTION = "correction"
    ABSOLUTE_SET = "absolute_set"
    # an account's delete takes its balance to 0 first: its ledger ends at 0
    CLOSING = "closing"


@dataclass(frozen=True)
class Source:
    """What caused a movement: a payment, a transaction, an account (corrections)."""

    type: str
    id: int


# A movement, as the CTE `moved` of a statement: $2 added to the balance of account $1
MOVED_SQL = """
UPDATE accounts SET balance = balance + $2, updated_at = now()
WHERE id = $1
RETURNING id, balance
"""
# its ledger entry, in the same statement: the account's id and `{balance}`, its balance
# after, from `moved`; $2 the amount, $3 to $6 the kind, the source's type and id, the admin
ENTRY_SQL = """
INSERT INTO ledger_entries (account_id, amount, balance_after, kind, source_type, source_id,
                            admin_id)
SELECT id, $2, {balance}, $3, $4, $5, $6 FROM moved
RETURNING balance_after
"""

_POST = f"WITH moved AS ({MOVED_SQL}) {ENTRY_SQL.format(balance='balance')}"

_OPEN = """
INSERT INTO ledger_entries (account_id, amount, balance_after, kind, source_type, source_id,
                            admin_id)
VALUES ($1::integer, $2, $2, 'opening', 'Account', $1::bigint, $3)
"""


async def post(
    connection: Connection,
    account_id: int,
    amount: Decimal,
    kind: Kind,
    source: Source,
    admin_id: int | None,
) -> Decimal:
    """Add `amount` (signed) to the balance; returns the balance after."""
    balance: Decimal | None = await connection.fetchval(
        _POST, account_id, amount, kind.value, source.type, source.id, admin_id
    )
    if balance is None:
        raise LookupError(f"account {account_id} does not exist")
    return balance


async def open_account(
    connection: Connection, account_id: int, balance: Decimal, admin_id: int | None
) -> None:
    """The opening entry of a new account: its ledger starts at its opening balance."""
    await connection.execute(_OPEN, account_id, balance, admin_id)


async def lock_account(connection: Connection, account_id: int) -> dict[str, Any] | None:
    """The account row, locked until the transaction ends: balance changes serialise here."""
    row = await connection.fetchrow("SELECT * FROM accounts WHERE id = $1 FOR UPDATE", account_id)
    return dict(row) if row else None


# every account against its entries, and the ledgers of deleted accounts, which must end at 0
_DISAGREEING = """
WITH ledgers AS (
    SELECT account_id, sum(amount) AS total, bool_and(balance_after = running) AS chain_ok
    FROM (
        SELECT account_id, amount, balance_after,
               sum(amount) OVER (PARTITION BY account_id ORDER BY id) AS running
        FROM ledger_entries
    ) entries
    GROUP BY account_id
)
SELECT COALESCE(a.id, l.account_id) AS id, a.name, a.balance,
       COALESCE(l.total, 0) AS ledger_total, COALESCE(l.chain_ok, true) AS chain_ok
FROM accounts a
FULL JOIN ledgers l ON l.account_id = a.id
WHERE COALESCE(a.balance, 0) <> COALESCE(l.total, 0) OR NOT COALESCE(l.chain_ok, true)
ORDER BY 1
"""


@dataclass(frozen=True)
class Disagreement:
    account_id: int
    # None for a deleted account whose ledger does not end at 0
    name: str | None
    balance: Decimal | None
    ledger_total: Decimal
    chain_ok: bool


async def disagreements(connection: Connection) -> list[Disagreement]:
    """Accounts whose balance is not the sum of their ledger entries, or whose entries'
    balance_after do not follow each other."""
    rows = await connection.fetch(_DISAGREEING)
    return [Disagreement(*row) for row in rows]


async def count_accounts(connection: Connection) -> int:
    count: int = await connection.fetchval("SELECT count(*) FROM accounts")
    return count
