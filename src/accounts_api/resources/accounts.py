"""Accounts (contract §2, §3, §4): the declaration and its SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from accounts_api.db import audit
from accounts_api.db.pool import Connection
from accounts_api.db.writes import Write
from accounts_api.domain import accounts as rules
from accounts_api.domain.invoice_periods import InvoicePeriod
from accounts_api.domain.validation import BIGINT_MAX, INTEGER_MAX, Errors
from accounts_api.jsonapi.body import WritePayload
from accounts_api.jsonapi.declaration import (
    Attribute,
    Context,
    FilterFamily,
    Relationship,
    Resource,
    ValueType,
    Writer,
)
from accounts_api.jsonapi.document import Row
from accounts_api.jsonapi.endpoints import select_columns
from accounts_api.jsonapi.errors import RecordNotFound
from accounts_api.resources.balance_changes import account_in_url
from accounts_api.resources.timezones import valid_timezones
from accounts_api.resources.validation import raise_invalid, wire_errors

NUMBER = FilterFamily.NUMBER

UNIQUE_CONSTRAINTS = {
    "accounts_name_key": "name",
    "accounts_uuid_key": "uuid",
    "accounts_external_id_key": "external_id",
}

# the values no two accounts may share, as the lookups name them
_TAKEN = tuple(UNIQUE_CONSTRAINTS.values())


def _lookups_sql(contractor: str, values: tuple[str, str, str], account: str) -> str:
    """The lookups a write's values need, as select expressions: whether the contractor exists
    (`contractor_exists`) and, for each of _TAKEN, whether an account other than `account`
    (NULL on a create) holds the value (named after it). The arguments are the statement's
    parameters (`$5`)."""
    taken = [
        f"EXISTS (SELECT 1 FROM accounts WHERE {column} = {value}"
        f"{'::uuid' if column == 'uuid' else ''} AND id IS DISTINCT FROM {account}) AS {column}"
        for column, value in zip(_TAKEN, values, strict=True)
    ]
    contractor_exists = f"EXISTS (SELECT 1 FROM contractors WHERE id = {contractor})"
    return ", ".join([f"{contractor_exists} AS contractor_exists", *taken])


_LOOKUPS = (
    f"SELECT {_lookups_sql('$1', ('$3', '$4', '$5'), '$6')},"
    " (SELECT id FROM currencies WHERE name = $2) AS currency_id"
)
# an update's lookups, as a CTE of its write statement ($1: the account, $5 to $8: the values)
_UPDATE_LOOKUPS = f"SELECT {_lookups_sql('$5', ('$6', '$7', '$8'), '$1')}"
_UPDATE_LOOKUPS_PASS = "l.contractor_exists AND NOT (l.name OR l.uuid OR l.external_id)"

_SAVE_SETTINGS = """
INSERT INTO account_balance_notification_settings
    (account_id, low_threshold, high_threshold, send_to)
VALUES ($1, $2, $3, $4)
ON CONFLICT (account_id) DO UPDATE
SET low_threshold = EXCLUDED.low_threshold, high_threshold = EXCLUDED.high_threshold,
    send_to = EXCLUDED.send_to
RETURNING *
"""

# contract §4.4: what goes with a deleted account is audited as destroyed
_DESTROYED_WITH_ACCOUNT = """
SELECT 'Payment' AS item_type, p.id AS item_id, 'destroy' AS event, to_jsonb(p) AS object,
       NULL::jsonb AS object_changes
FROM payments p WHERE p.account_id = $3
UNION ALL
SELECT 'Service', s.id, 'destroy', to_jsonb(s), NULL FROM services s WHERE s.account_id = $3
"""


async def _lookups(
    connection: Connection, values: dict[str, Any], account_id: int | None
) -> rules.Lookups:
    wanted = rules.candidates(values)
    row = await connection.fetchrow(
        _LOOKUPS,
        wanted.contractor_id,
        wanted.currency,
        wanted.name,
        wanted.uuid,
        wanted.external_id,
        account_id,
    )
    assert row is not None
    taken = {key for key in _TAKEN if row[key]}
    return rules.Lookups(
        contractor_exists=row["contractor_exists"],
        currency_id=row["currency_id"],
        taken=taken,
        timezones=await valid_timezones(connection),
    )


async def create(connection: Connection, context: Context, payload: WritePayload) -> int:
    values = {**CREATE_DEFAULTS, **payload.values()}
    lookups = await _lookups(connection, values, None)
    errors, clean = rules.validate(values, lookups, creating=True)
    raise_invalid(ACCOUNTS, errors)
    columns = {key: clean[key] for key in STORED if key != "uuid" or clean["uuid"]}
    columns["next_invoice_at"], columns["next_invoice_type_id"] = rules.invoice_schedule(
        clean["invoice_period_id"], clean["timezone"], datetime.now(UTC)
    )
    columns["currency_id"] = clean["currency_id"]
    names = list(columns)
    with wire_errors(ACCOUNTS, UNIQUE_CONSTRAINTS):
        row = await connection.fetchrow(
            f"INSERT INTO accounts ({', '.join(names)}, currency_name)"
            f" VALUES ({', '.join(f'${i}' for i in range(1, len(names) + 1))},"
            f" (SELECT name FROM currencies WHERE id = ${names.index('currency_id') + 1}))"
            " RETURNING id, uuid, currency_name",
            *columns.values(),
        )
        assert row is not None
    account_id: int = row["id"]
    write = Write(connection, context)
    await write.open_account(account_id)
    settings = await _save_settings(connection, account_id, clean)
    stored = {**columns, "uuid": row["uuid"], "currency_name": row["currency_name"]}
    await write.audit(
        "Account",
        account_id,
        "create",
        previous=None,
        changes=audit.changes_between(None, stored),
    )
    # contract §7: thresholds set at creation are checked against the opening balance at once
    await write.check_thresholds(account_id, Decimal(0), settings)
    return account_id


async def update(
    connection: Connection, context: Context, key: object, payload: WritePayload
) -> Row:
    """Two statements (issue 10): the row locked, then one that checks the lookups its new
    values need, writes the change, its audit row and the settings row, and returns the
    answer's row. The lookups are in the second statement, not the first: a statement that
    waited for the lock still reads what was committed before it began (READ COMMITTED), so a
    contractor deleted, or a name taken or freed, while it waited would be judged on stale
    data; the second begins after the lock is held.

    The values are validated first as if every lookup passed (as far as the values allow):
    input the rules refuse without them costs one more statement, the lookups, so that the
    errors come in the contract's order with the lookups' among them."""
    given = payload.values()
    current = await connection.fetchrow(_CURRENT, key)
    if current is None:
        raise RecordNotFound(key)
    before = dict(current)
    account_id: int = before.pop("id")
    balance: Decimal = before.pop("balance")
    previous = before.pop("previous")
    values = {**before, **given}
    timezones = await valid_timezones(connection)
    wanted = rules.candidates(values)
    # what the lookups say at best: a contractor id no row can have exists for none of them
    passing = rules.Lookups(
        wanted.contractor_id is not None, before["currency_id"], timezones=timezones
    )
    errors, clean = _validate_update(values, passing)
    if errors:
        lookups = await _lookups(connection, values, account_id)
        lookups.currency_id = before["currency_id"]
        raise_invalid(ACCOUNTS, _validate_update(values, lookups)[0])
    changes = {key: clean[key] for key in STORED if clean[key] != before[key]}
    if rules.needs_invoice_schedule(before, clean):
        next_at, next_type = rules.invoice_schedule(
            clean["invoice_period_id"], clean["timezone"], datetime.now(UTC)
        )
        if (next_at, next_type) != (before["next_invoice_at"], before["next_invoice_type_id"]):
            changes["next_invoice_at"], changes["next_invoice_type_id"] = next_at, next_type
    args: list[object] = [
        account_id,
        # contract §4.1: the settings row is rewritten on every update
        clean["balance_low_threshold"],
        clean["balance_high_threshold"],
        clean["send_balance_notifications_to"],
        wanted.contractor_id,
        wanted.name,
        wanted.uuid,
        wanted.external_id,
    ]
    write = Write(connection, context)
    if changes:
        assignments = ", ".join(
            f"{name} = ${number}" for number, name in enumerate(changes, start=len(args) + 1)
        )
        args += changes.values()
        audit_sql, audit_args = write.audit_within(
            len(args) + 1,
            "Account",
            account_id,
            "update",
            previous=previous,
            changes=audit.changes_between(before, changes),
        )
        args += audit_args
        sql = _update_sql(assignments, audit_sql)
    else:
        sql = _update_sql(None, "")
    with wire_errors(ACCOUNTS, UNIQUE_CONSTRAINTS):
        row = await connection.fetchrow(sql, *args)
    assert row is not None
    answer, found = row[:_ANSWER_LENGTH], row[_ANSWER_LENGTH:]
    lookups = rules.Lookups(
        contractor_exists=found[0],
        currency_id=before["currency_id"],
        taken={name for name, taken in zip(_TAKEN, found[1:4], strict=True) if taken},
        timezones=timezones,
    )
    if not lookups.contractor_exists or lookups.taken:
        # the change was not made; what the statement wrote besides (audit, settings) rolls
        # back with the 422: an update always runs in a transaction or savepoint of its own
        # (Api.update's write_transaction), never in a batch's without one (group_commit.py)
        raise_invalid(ACCOUNTS, _validate_update(values, lookups)[0])
    # §7 (issue 7): new thresholds are checked against the balance at once
    settings = dict(zip(("low_threshold", "high_threshold", "state_id"), found[4:], strict=True))
    await write.check_thresholds(account_id, balance, settings)
    return answer


def _validate_update(
    values: dict[str, Any], lookups: rules.Lookups
) -> tuple[Errors, dict[str, Any]]:
    errors, clean = rules.validate(values, lookups, creating=False)
    if clean["uuid"] is None and "uuid" not in errors:
        errors.add("uuid", "can't be blank")
    return errors, clean


async def _save_settings(
    connection: Connection, account_id: int, clean: dict[str, Any]
) -> asyncpg.Record | None:
    return await connection.fetchrow(
        _SAVE_SETTINGS,
        account_id,
        clean["balance_low_threshold"],
        clean["balance_high_threshold"],
        clean["send_balance_notifications_to"],
    )


async def delete(connection: Connection, context: Context, key: object) -> None:
    """contract §4.4, for the tables we have: payments (audited), services and transactions
    go with the account; the settings row cascades."""
    row = await connection.fetchrow("SELECT * FROM accounts WHERE id = $1 FOR UPDATE", key)
    if row is None:
        raise RecordNotFound(key)
    write = Write(connection, context)
    # the ledger outlives the account and ends at 0 (verify-ledger checks it)
    await write.close_account(row)
    await write.audit_rows(_DESTROYED_WITH_ACCOUNT, key)
    await connection.execute(
        "WITH t AS (DELETE FROM transactions WHERE account_id = $1),"
        " p AS (DELETE FROM payments WHERE account_id = $1)"
        " SELECT 1",
        key,
    )
    await connection.execute("DELETE FROM services WHERE account_id = $1", key)
    await connection.execute("DELETE FROM accounts WHERE id = $1", key)
    await write.audit("Account", key, "destroy", previous=dict(row), changes={})


ACCOUNTS = Resource(
    type="accounts",
    path="accounts",
    from_sql="accounts a LEFT JOIN account_balance_notification_settings s ON s.account_id = a.id",
    # at most one settings row per account: the join adds no row
    base_from_sql="accounts a",
    # migration 0006: kept by triggers, exact
    unfiltered_count_sql=(
        "SELECT sum(count)::bigint FROM row_counts WHERE table_name = 'accounts'"
    ),
    id_sql="a.id",
    attributes=(
        Attribute(
            "name",
            ValueType.STRING,
            "a.name",
            filter=FilterFamily.STRING,
            description="Unique name of the account.",
            required=True,
            nullable=False,
            unique=True,
        ),
        Attribute(
            "balance",
            ValueType.DECIMAL,
            "a.balance",
            creatable=False,
            updatable=False,
            filter=NUMBER,
            description="Changed only by payments, transactions and the balance endpoints.",
            nullable=False,
        ),
        Attribute(
            "min_balance",
            ValueType.DECIMAL,
            "a.min_balance",
            filter=NUMBER,
            description="The lowest balance the account may reach (default 0).",
            nullable=False,
            default=0,
        ),
        Attribute(
            "max_balance",
            ValueType.DECIMAL,
            "a.max_balance",
            filter=NUMBER,
            description="The highest balance; at least min-balance (default 0).",
            nullable=False,
            default=0,
        ),
        Attribute(
            "vat",
            ValueType.DECIMAL,
            "a.vat",
            filter=NUMBER,
            description="VAT in percent (default 0).",
            nullable=False,
            minimum=0,
            maximum=100,
            default=0,
        ),
        Attribute(
            "balance_low_threshold",
            ValueType.DECIMAL,
            "s.low_threshold",
            joined=True,
            sortable=False,
            filter=NUMBER,
            description="A balance below it notifies; less than balance-high-threshold.",
        ),
        Attribute(
            "balance_high_threshold",
            ValueType.DECIMAL,
            "s.high_threshold",
            joined=True,
            sortable=False,
            filter=NUMBER,
            description="A balance above it notifies.",
        ),
        Attribute(
            "send_balance_notifications_to",
            ValueType.INT_ARRAY,
            "s.send_to",
            joined=True,
            sortable=False,
            description="Contact ids told of threshold events; [] is stored as null.",
        ),
        Attribute(
            "destination_rate_limit",
            ValueType.DECIMAL,
            "a.destination_rate_limit",
            filter=NUMBER,
            description="The highest rate a call may cost.",
            minimum=0,
        ),
        Attribute(
            "max_call_duration",
            ValueType.INTEGER,
            "a.max_call_duration",
            filter=NUMBER,
            description="Seconds; a fraction is cut to its integer (contract §3.1 #13).",
            minimum=0,
            exclusive_minimum=True,
            maximum=INTEGER_MAX,
        ),
        Attribute(
            "external_id",
            ValueType.INTEGER,
            "a.external_id",
            filter=NUMBER,
            description="Unique id in another system; addresses the balance endpoint.",
            minimum=-BIGINT_MAX - 1,
            maximum=BIGINT_MAX,
        ),
        Attribute(
            "uuid",
            ValueType.UUID,
            "a.uuid",
            filter=FilterFamily.UUID,
            description="Unique; generated when a create gives none.",
            nullable=False,
            unique=True,
        ),
        *(
            Attribute(
                name,
                ValueType.INTEGER,
                f"a.{name}",
                filter=NUMBER,
                description=f"Concurrent calls allowed ({what}).",
                minimum=0,
                exclusive_minimum=True,
                maximum=rules.SMALLINT_MAX,
            )
            for name, what in (
                ("origination_capacity", "origination"),
                ("termination_capacity", "termination"),
                ("total_capacity", "both ways"),
            )
        ),
        Attribute(
            "send_invoices_to",
            ValueType.INT_ARRAY,
            "a.send_invoices_to",
            description="Contact ids invoices are sent to; [] is stored as null.",
        ),
        Attribute(
            "invoice_period_id",
            ValueType.INTEGER,
            "a.invoice_period_id",
            description="1 Daily, 2 Weekly, 3 BiWeekly, 4 Monthly, 5 BiWeekly split by new "
            "month, 6 Weekly split by new month, 7 SemiMonthly (contract §5.11).",
            choices=tuple(int(period) for period in InvoicePeriod),
        ),
        Attribute(
            "timezone",
            ValueType.STRING,
            "a.timezone",
            description="An IANA time zone name, as listed by /timezones (default UTC).",
            nullable=False,
            default="UTC",
        ),
        # contract §2.2: written by name on create only; sorting by it sorts by the name
        Attribute(
            "currency",
            ValueType.STRING,
            "a.currency_name",
            updatable=False,
            description="The currency's name (USD); set on create only.",
            required=True,
            nullable=False,
        ),
    ),
    relationships=(
        Relationship(
            "contractor",
            "contractors",
            "a.contractor_id",
            filterable=True,
            resource_type="contractors",
            required=True,
            description="Whose account it is.",
        ),
        Relationship(
            "invoice_template",
            "invoice-templates",
            "a.invoice_template_id",
            extra_types=("invoice_templates",),
            filterable=True,
            resource_type="invoice-templates",
        ),
    ),
    plain_filters={"name": "a.name"},
    filter_only=(
        Attribute(
            "currency_id", ValueType.INTEGER, "a.currency_id", filter=FilterFamily.FOREIGN_KEY
        ),
    ),
    writer=Writer(create=create, update=update, delete=delete),
    versioned=True,
    write_queue=account_in_url,
    row_lock="FOR UPDATE OF a",
    description="Billing accounts: balance, limits, capacity, invoicing and notifications.",
)

# Derived from the declaration (one fact, one place):
# - the account's own columns a write stores, in contract order (§2.2): its writable attributes
#   that are columns of `accounts`, then its relationships' foreign keys (currency is stored as
#   an id and a name, the thresholds in the settings row);
STORED = tuple(
    [a.name for a in ACCOUNTS.attributes if (a.creatable or a.updatable) and a.sql == f"a.{a.name}"]
    + [r.fk_sql.removeprefix("a.") for r in ACCOUNTS.relationships]
)
# - what a create that leaves them out stores (contract §2.9);
CREATE_DEFAULTS = {a.name: a.default for a in ACCOUNTS.attributes if a.default is not None}
# - the row an update starts from, locked: the stored columns, the hidden invoice schedule,
#   the settings row's attributes, and the whole row as the audit log's `object`.
_SETTINGS = [a for a in ACCOUNTS.attributes if a.joined]
_CURRENT = (
    "SELECT a.id, a.balance, "
    + ", ".join(f"a.{column}" for column in STORED)
    + ", a.currency_id, a.next_invoice_at, a.next_invoice_type_id, "
    + ", ".join(f"{a.sql} AS {a.name}" for a in _SETTINGS)
    + ", to_jsonb(a) AS previous"
    + f" FROM {ACCOUNTS.from_sql} WHERE a.id = $1 FOR UPDATE OF a"
)
# - the update's second statement: the lookups, then (when a stored column changes) the change
#   with its audit row, made only if the lookups pass, and the settings row; it answers with
#   the row as `select_sql` would read it after the write (the same columns, under the same
#   aliases), the lookups and the settings' state.
_ANSWER_COLUMNS = select_columns(ACCOUNTS)
_ANSWER_LENGTH = 1 + len(ACCOUNTS.attributes) + len(ACCOUNTS.relationships)


def _update_sql(assignments: str | None, audit_sql: str) -> str:
    changed = ""
    if assignments is not None:
        changed = (
            f", changed AS (UPDATE accounts SET {assignments}, updated_at = now()"
            f" WHERE id = $1 AND (SELECT {_UPDATE_LOOKUPS_PASS} FROM lookups l) RETURNING *)"
            f", audited AS ({audit_sql})"
        )
    return (
        f"WITH lookups AS ({_UPDATE_LOOKUPS}){changed}, saved AS ({_SAVE_SETTINGS})"
        f" SELECT {_ANSWER_COLUMNS}, l.*, s.low_threshold, s.high_threshold, s.state_id"
        f" FROM lookups l LEFT JOIN {'changed' if changed else 'accounts'} a ON a.id = $1"
        " LEFT JOIN saved s ON true"
    )
