"""One pipeline for every write (issue 7): inside the write's own transaction, the audit rows
(contract §4.3), the ledger entry where money moves, and the events the change causes (the
threshold state machine of contract §7: its log row and its outbox event). What a write that
rolls back did here is rolled back with it; a write that commits has all of it.

Every writer takes a `Write` for its connection and the request's actor and records through
it; nothing else writes `audit_log`, `ledger_entries`, `balance_notifications` or `outbox`.

Thresholds are evaluated after every balance change and every threshold change, under the
account's row lock (the caller took it in an earlier statement, so what is read here is what
the previous holder of the lock committed): `state_id` only changes under that lock.

Money movements are counted for the metrics (issue 9) once their write commits: the count is
an after-commit callback of the engine's transaction (db/after_commit.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeAlias

import asyncpg

from accounts_api import metrics
from accounts_api.db import audit, ledger, outbox
from accounts_api.db.after_commit import after_commit
from accounts_api.db.pool import Connection
from accounts_api.domain import thresholds
from accounts_api.domain.validation import decimal_text

# a row as read (asyncpg) or as a writer holds it
Row: TypeAlias = "Mapping[str, Any] | asyncpg.Record"

# The audit row of a balance change (contract §4.3) is written by the statement that moves the
# balance (issue 10: one round trip less). Its JSON must be what `audit.record` writes:
# msgspec writes a Decimal as str(Decimal), which is numeric's text except in scientific
# notation: below 1e-6 in magnitude, a zero of more than 6 decimals, and a whole number of
# scale 0 ending in four zeros or more (asyncpg decodes 10000 as Decimal("1E+4")). A balance
# like that gets no audit row here (`audited` is false) and the writer records it from
# Python, as before.
_PLAIN = (
    "(({0} <> 0 AND abs({0}) >= 0.000001 AND (scale({0}) > 0 OR mod({0}, 10000) <> 0))"
    " OR ({0} = 0 AND scale({0}) <= 6))"
)
_AUDITED = (
    "INSERT INTO audit_log (item_type, item_id, event, whodunnit, object, object_changes, ip)"
    " SELECT 'Account', id, 'update', $7, jsonb_build_object('balance', {before}),"
    " jsonb_build_object('balance', jsonb_build_array({before}, {after}::text)), $8::inet"
    " FROM moved WHERE {plain}"
    " RETURNING id"
)

# the balance moves and the entry is written (ledger.post), the account's audit row, and in the
# same statement the account's thresholds and state are read for the state machine ($9: the
# balance before, as the audit row tells it)
_MOVE = f"""
WITH moved AS ({ledger.MOVED_SQL}), entry AS (
    {ledger.ENTRY_SQL.format(balance="balance")}
), audited AS (
    {_AUDITED.format(before="$9::text", after="balance", plain=_PLAIN.format("balance"))}
)
SELECT e.balance_after, EXISTS (SELECT FROM audited) AS audited,
       s.low_threshold, s.high_threshold, s.state_id
FROM entry e
LEFT JOIN account_balance_notification_settings s ON s.account_id = $1
"""

# issue 10: `move_balance` in one statement with the account's row, for a writer that has the
# account's id but not its row (the balance correction): one round trip where `lock_account` +
# `move_balance` send two. The caller holds the row's lock already (taken by an earlier
# statement of its transaction): a statement's snapshot is taken when it starts, so the
# thresholds it reads are current only if nobody could change them meanwhile. The row is read
# FOR UPDATE all the same, in a MATERIALIZED CTE taken before the UPDATE, so that the balance
# before is the one the UPDATE adds to whatever the caller did.
_MOVE_WITH_AUDIT = f"""
WITH account AS MATERIALIZED (
    SELECT id, balance FROM accounts WHERE id = $1 FOR UPDATE
), moved AS (
    UPDATE accounts a SET balance = a.balance + $2, updated_at = now()
    FROM account
    WHERE a.id = account.id
    RETURNING a.id, a.name, account.balance AS before, a.balance AS after
), entry AS (
    {ledger.ENTRY_SQL.format(balance="after")}
), audited AS (
    {
    _AUDITED.format(
        before="before::text",
        after="after",
        plain=f"{_PLAIN.format('before')} AND {_PLAIN.format('after')}",
    )
}
)
SELECT m.id, m.name, m.before, e.balance_after, EXISTS (SELECT FROM audited) AS audited,
       s.low_threshold, s.high_threshold, s.state_id
FROM moved m
CROSS JOIN entry e
LEFT JOIN account_balance_notification_settings s ON s.account_id = m.id
"""

# contract §7: the new state and one log row per event, in order; with each row, the account
# as its event tells it (outbox.py), after the write
_RECORD_EVENTS = """
WITH state AS (
    UPDATE account_balance_notification_settings SET state_id = $2 WHERE account_id = $1
    RETURNING send_to
), logged AS (
    INSERT INTO balance_notifications
        (event_id, account_id, account_balance, low_threshold, high_threshold)
    SELECT event_id, $1, $3, $4, $5
    FROM unnest($6::smallint[]) WITH ORDINALITY AS e (event_id, position)
    ORDER BY position
    RETURNING id, event_id
)
SELECT logged.id AS notification_id, logged.event_id, a.*,
       state.send_to AS send_balance_notifications_to
FROM logged CROSS JOIN accounts a CROSS JOIN state
WHERE a.id = $1
ORDER BY logged.id
"""


class Write:
    """The side effects of one write, recorded in its transaction."""

    def __init__(self, connection: Connection, actor: audit.Actor):
        self.connection = connection
        self.actor = actor

    # -- audit --------------------------------------------------------------------------

    async def audit(
        self,
        item_type: str,
        item_id: object,
        event: str,
        previous: Mapping[str, Any] | None,
        changes: Mapping[str, tuple[Any, Any]],
    ) -> None:
        await audit.record(
            self.connection,
            self.actor,
            item_type=item_type,
            item_id=item_id,
            event=event,
            previous=previous,
            changes=changes,
        )

    def audit_within(
        self,
        first_parameter: int,
        item_type: str,
        item_id: object,
        event: str,
        previous: Mapping[str, Any] | None,
        changes: Mapping[str, tuple[Any, Any]],
    ) -> tuple[str, list[object]]:
        """The audit row as an INSERT and its parameters, numbered from `first_parameter`, for
        the writer to run as a CTE of its own statement: the change and its record in one round
        trip (issue 10)."""
        return audit.insert_sql(first_parameter), audit.values(
            self.actor,
            item_type=item_type,
            item_id=item_id,
            event=event,
            previous=previous,
            changes=changes,
        )

    async def create(
        self,
        insert_sql: str,
        args: Sequence[object],
        item_type: str,
        changes: Mapping[str, tuple[Any, Any]],
    ) -> int:
        """Runs `insert_sql` (an INSERT of one record RETURNING its id, parameters from $1)
        with the record's create audit row in the same statement (issue 10: one round trip);
        the record's id."""
        sql = (
            f"WITH inserted AS ({insert_sql}), audited AS"
            f" ({audit.insert_created_sql(len(args) + 1, 'inserted')})"
            " SELECT id FROM inserted"
        )
        created = audit.created_values(self.actor, item_type=item_type, changes=changes)
        key: int = await self.connection.fetchval(sql, *args, *created)
        return key

    async def audit_rows(self, rows_sql: str, *args: object) -> None:
        """Audit rows for many records at once: `rows_sql` selects item_type, item_id, event,
        object and object_changes (its parameters start at $3)."""
        await audit.record_rows(self.connection, self.actor, rows_sql, *args)

    # -- money --------------------------------------------------------------------------

    async def open_account(self, account_id: int) -> None:
        """A new account's ledger starts at 0 (balance is not writable, contract §2.2)."""
        await ledger.open_account(self.connection, account_id, Decimal(0), self.actor.admin_id)

    async def move_balance(
        self,
        account: Row,
        amount: Decimal,
        kind: ledger.Kind,
        source: ledger.Source,
    ) -> Decimal:
        """Add `amount` (signed) to the locked `account`: the ledger entry, the account's
        audit row (an `update` of its balance, contract §4.3) and the threshold events.
        Returns the balance after."""
        before = account["balance"]
        row = await self.connection.fetchrow(
            _MOVE,
            *self._movement(account["id"], amount, kind, source),
            str(before),  # the text msgspec writes for it
        )
        if row is None:
            raise LookupError(f"account {account['id']} does not exist")
        after: Decimal = row["balance_after"]
        await self._moved(account["id"], kind, before, after, row)
        return after

    def _movement(
        self, account_id: int, amount: Decimal, kind: ledger.Kind, source: ledger.Source
    ) -> tuple[object, ...]:
        """$1 to $8 of both movement statements: the account, the amount, the ledger entry's
        kind and source, who (as the ledger and the audit log write it) and from where."""
        actor = self.actor
        return (
            account_id,
            amount,
            kind.value,
            source.type,
            source.id,
            actor.admin_id,
            str(actor.admin_id),
            actor.ip,
        )

    async def _moved(
        self, account_id: int, kind: ledger.Kind, before: Decimal, after: Decimal, row: Row
    ) -> None:
        """What follows a movement's statement: its count once it commits, the audit row the
        statement left to Python (_AUDITED), and the threshold events."""
        after_commit(metrics.money_moved(kind.value))
        if not row["audited"]:
            await self.audit(
                "Account",
                account_id,
                "update",
                previous={"balance": before},
                changes={"balance": (before, after)},
            )
        await self.check_thresholds(account_id, after, row)

    async def move_balance_of(
        self, account_id: int, amount: Decimal, kind: ledger.Kind, source: ledger.Source
    ) -> Row | None:
        """`move_balance` of the account `account_id`, whose row lock the transaction holds,
        without its row: the same ledger entry, audit row and threshold events (issue 10). The
        account's id, name, balance `before` and `balance_after`; None when there is no such
        account (nothing was written)."""
        row = await self.connection.fetchrow(
            _MOVE_WITH_AUDIT, *self._movement(account_id, amount, kind, source)
        )
        if row is None:
            return None
        await self._moved(account_id, kind, row["before"], row["balance_after"], row)
        return row

    async def close_account(self, account: Row) -> None:
        """An account's delete takes its balance to 0 first: its ledger ends at 0. Its
        thresholds go with it, unevaluated."""
        if account["balance"]:
            await ledger.post(
                self.connection,
                account["id"],
                account["balance"].copy_negate(),
                ledger.Kind.CLOSING,
                ledger.Source("Account", account["id"]),
                self.actor.admin_id,
            )
            after_commit(metrics.money_moved(ledger.Kind.CLOSING.value))

    # -- thresholds ---------------------------------------------------------------------

    async def check_thresholds(
        self, account_id: int, balance: Decimal, settings: Row | None
    ) -> None:
        """contract §7 after a balance or threshold change: `settings` holds the account's
        low_threshold, high_threshold and state_id as stored now (None: no settings row)."""
        if settings is None or settings["state_id"] is None:
            return
        limits = thresholds.Thresholds(settings["low_threshold"], settings["high_threshold"])
        outcome = thresholds.evaluate(thresholds.State(settings["state_id"]), limits, balance)
        if not outcome.events and outcome.state == settings["state_id"]:
            return
        logged = await self.connection.fetch(
            _RECORD_EVENTS,
            account_id,
            int(outcome.state),
            balance,
            limits.low,
            limits.high,
            [int(event) for event in outcome.events],
        )
        if not logged:
            return
        data = event_data(logged[0], limits)
        await outbox.emit(
            self.connection,
            [
                (
                    account_id,
                    thresholds.Event(row["event_id"]).event_name,
                    data,
                    row["notification_id"],
                )
                for row in logged
            ],
        )


def event_data(account: Row, limits: thresholds.Thresholds) -> dict[str, Any]:
    """The account as an event tells it (outbox.py): its stored columns as JSON values, and
    its notification settings."""
    data = {
        key: _json_value(value)
        for key, value in account.items()
        if key not in ("notification_id", "event_id")
    }
    data["balance_low_threshold"] = _json_value(limits.low)
    data["balance_high_threshold"] = _json_value(limits.high)
    return data


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_json_value(item) for item in value]
    return value
