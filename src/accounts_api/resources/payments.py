"""Payments (contract §5.6): money in. A payment locks its account, adds its amount to the
balance and writes the ledger entry and the audit rows in the same transaction. Rolling one
back (POST /payments/{id}/rollback, our extension) reverses it once."""

from __future__ import annotations

from typing import Any

from accounts_api.db import ledger
from accounts_api.db.pool import Connection
from accounts_api.db.writes import Write
from accounts_api.domain import money
from accounts_api.domain.validation import BIGINT_MAX, is_row_id
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
from accounts_api.jsonapi.errors import RecordNotFound
from accounts_api.resources.balance_changes import linked_account
from accounts_api.resources.validation import raise_invalid

_STATUS_NAME = (
    "CASE p.status_id "
    + " ".join(f"WHEN {value} THEN '{name}'" for name, value in money.PAYMENT_STATUSES.items())
    + " END"
)
_TYPE_NAME = (
    "CASE p.type_id "
    + " ".join(f"WHEN {value} THEN '{name}'" for name, value in money.PAYMENT_TYPES.items())
    + " END"
)


async def create(connection: Connection, context: Context, payload: WritePayload) -> Any:
    values = payload.values()
    account_id: Any = values.get("account_id")
    account = await ledger.lock_account(connection, account_id) if is_row_id(account_id) else None
    errors, payment = money.validate_payment(
        values,
        account_exists=account is not None,
        currency_id=account["currency_id"] if account else None,
    )
    raise_invalid(PAYMENTS, errors)
    assert account is not None and payment is not None
    write = Write(connection, context)
    # contract §4.3: one create for the payment (and one update for the account's balance; the
    # order of the two is not on the wire)
    payment_id = await write.create(
        "INSERT INTO payments (account_id, amount, notes, private_notes, balance_before_payment,"
        " currency_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        [
            account["id"],
            payment.amount,
            payment.notes,
            payment.private_notes,
            account["balance"],
            account["currency_id"],
        ],
        "Payment",
        {"amount": (None, payment.amount), "account_id": (None, account["id"])},
    )
    await write.move_balance(
        account, payment.amount, ledger.Kind.PAYMENT, ledger.Source("Payment", payment_id)
    )
    return payment_id


async def rollback(connection: Connection, context: Context, key: object) -> None:
    # locks in the order every writer takes them, account before payment (an account delete
    # does too), so a rollback cannot deadlock with it
    account_id = await connection.fetchval("SELECT account_id FROM payments WHERE id = $1", key)
    if account_id is None:
        raise RecordNotFound(key)
    account = await ledger.lock_account(connection, account_id)
    payment = await connection.fetchrow("SELECT * FROM payments WHERE id = $1 FOR UPDATE", key)
    if account is None or payment is None:
        raise RecordNotFound(key)  # deleted with its account meanwhile
    raise_invalid(PAYMENTS, money.validate_rollback(payment["status_id"]))
    write = Write(connection, context)
    await write.move_balance(
        account,
        payment["amount"].copy_negate(),  # exact: unary minus would round to 28 digits
        ledger.Kind.PAYMENT_ROLLBACK,
        ledger.Source("Payment", payment["id"]),
    )
    rolled_back_at = await connection.fetchval(
        "UPDATE payments SET status_id = $2, rolledback_at = now() WHERE id = $1"
        " RETURNING rolledback_at",
        key,
        money.ROLLED_BACK,
    )
    await write.audit(
        "Payment",
        key,
        "update",
        previous=dict(payment),
        changes={
            "status_id": (payment["status_id"], money.ROLLED_BACK),
            "rolledback_at": (None, rolled_back_at),
        },
    )


PAYMENTS = Resource(
    type="payments",
    path="payments",
    from_sql="payments p JOIN currencies cur ON cur.id = p.currency_id",
    id_sql="p.id",
    key_max=BIGINT_MAX,
    attributes=(
        Attribute(
            "created_at",
            ValueType.TIMESTAMP,
            "p.created_at",
            creatable=False,
            updatable=False,
            filter=FilterFamily.DATETIME,
        ),
        Attribute(
            "amount",
            ValueType.DECIMAL,
            "p.amount",
            updatable=False,
            filter=FilterFamily.NUMBER,
            description="Added to the account's balance; not 0 (a negative amount takes money).",
            required=True,
            nullable=False,
        ),
        Attribute(
            "currency",
            ValueType.STRING,
            "cur.name",
            creatable=False,
            updatable=False,
            sortable=False,
        ),
        Attribute(
            "notes",
            ValueType.STRING,
            "p.notes",
            updatable=False,
            sortable=False,
            filter=FilterFamily.STRING,
            max_length=money.NOTES_MAX_LENGTH,
        ),
        Attribute(
            "private_notes",
            ValueType.STRING,
            "p.private_notes",
            updatable=False,
            sortable=False,
            filter=FilterFamily.STRING,
            max_length=money.NOTES_MAX_LENGTH,
        ),
        Attribute(
            "status",
            ValueType.STRING,
            _STATUS_NAME,
            creatable=False,
            updatable=False,
            sortable=False,
        ),
        Attribute(
            "type_name",
            ValueType.STRING,
            _TYPE_NAME,
            creatable=False,
            updatable=False,
            sortable=False,
        ),
        Attribute(
            "balance_before_payment",
            ValueType.DECIMAL,
            "p.balance_before_payment",
            creatable=False,
            updatable=False,
            sortable=False,
        ),
        Attribute(
            "rolledback_at",
            ValueType.TIMESTAMP,
            "p.rolledback_at",
            creatable=False,
            updatable=False,
            filter=FilterFamily.DATETIME,
        ),
    ),
    relationships=(
        Relationship(
            "account",
            "accounts",
            "p.account_id",
            updatable=False,
            required=True,
            filterable=True,
            resource_type="accounts",
            immutable_hint="Roll the payment back and create a new one on the other account.",
        ),
    ),
    filter_only=(
        Attribute("id", ValueType.INTEGER, "p.id", filter=FilterFamily.NUMBER),
        Attribute(
            "status",
            ValueType.STRING,
            "p.status_id",
            filter=FilterFamily.ENUM,
            enum_values=money.PAYMENT_STATUSES,
        ),
        Attribute(
            "type_name",
            ValueType.STRING,
            "p.type_id",
            filter=FilterFamily.ENUM,
            enum_values=money.PAYMENT_TYPES,
        ),
    ),
    # contract §5.6: id is not sortable; Yeti's `rollback-at` typo sorts by rolledback-at here
    id_sortable=False,
    extra_sorts={"rollback_at": "p.rolledback_at"},
    # `create` refuses after the account's lock and reads, before its INSERT
    writer=Writer(create=create, create_refuses_before_writing=True),
    actions={"rollback": rollback},
    write_queue=linked_account,
)
