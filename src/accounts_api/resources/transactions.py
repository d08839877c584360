"""Transactions (contract §5.7): charges. A positive amount takes money from the account."""

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
from accounts_api.resources.balance_changes import linked_account
from accounts_api.resources.validation import raise_invalid


async def create(connection: Connection, context: Context, payload: WritePayload) -> Any:
    values = payload.values()
    account_id: Any = values.get("account_id")
    service_id: Any = values.get("service_id")
    account = await ledger.lock_account(connection, account_id) if is_row_id(account_id) else None
    service_account_id = (
        await connection.fetchval("SELECT account_id FROM services WHERE id = $1", service_id)
        if is_row_id(service_id, BIGINT_MAX)
        else None
    )
    errors, transaction = money.validate_transaction(
        values, account_exists=account is not None, service_account_id=service_account_id
    )
    raise_invalid(TRANSACTIONS, errors)
    assert account is not None and transaction is not None
    transaction_id: int = await connection.fetchval(
        "INSERT INTO transactions (account_id, service_id, amount, description)"
        " VALUES ($1, $2, $3, $4) RETURNING id",
        account["id"],
        service_id,
        transaction.amount,
        transaction.description,
    )
    # contract §5.7: the opposite sign to payments, a positive amount is a charge; transactions
    # are not versioned (§4.3), the account's balance is
    await Write(connection, context).move_balance(
        account,
        transaction.amount.copy_negate(),  # exact: unary minus would round to 28 digits
        ledger.Kind.TRANSACTION,
        ledger.Source("Transaction", transaction_id),
    )
    return transaction_id


TRANSACTIONS = Resource(
    type="transactions",
    path="transactions",
    from_sql="transactions t",
    id_sql="t.id",
    key_max=BIGINT_MAX,
    attributes=(
        Attribute(
            "description",
            ValueType.STRING,
            "t.description",
            updatable=False,
            sortable=False,
            filter=FilterFamily.STRING,
            max_length=money.NOTES_MAX_LENGTH,
        ),
        Attribute(
            "amount",
            ValueType.DECIMAL,
            "t.amount",
            updatable=False,
            filter=FilterFamily.NUMBER,
            description="Taken from the account's balance (contract §5.7); not 0.",
            required=True,
            nullable=False,
        ),
        Attribute(
            "created_at",
            ValueType.TIMESTAMP,
            "t.created_at",
            creatable=False,
            updatable=False,
            filter=FilterFamily.DATETIME,
        ),
        Attribute(
            "uuid",
            ValueType.UUID,
            "t.uuid",
            creatable=False,
            updatable=False,
            sortable=False,
            filter=FilterFamily.UUID,
        ),
    ),
    relationships=(
        Relationship(
            "account",
            "accounts",
            "t.account_id",
            updatable=False,
            required=True,
            resource_type="accounts",
        ),
        Relationship("service", "services", "t.service_id", updatable=False, related_route=False),
    ),
    filter_only=(
        Attribute("account_id", ValueType.INTEGER, "t.account_id", filter=FilterFamily.FOREIGN_KEY),
        Attribute("service_id", ValueType.INTEGER, "t.service_id", filter=FilterFamily.FOREIGN_KEY),
    ),
    extra_sorts={"account_id": "t.account_id", "service_id": "t.service_id"},
    # `create` refuses after the account's lock and reads, before its INSERT
    writer=Writer(create=create, create_refuses_before_writing=True),
    write_queue=linked_account,
)
