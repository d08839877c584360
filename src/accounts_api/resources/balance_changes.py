"""One way to change a balance: the ledger entry and the account's audit row (contract §4.3:
an `update` of the Account with its old and new balance), in the caller's transaction, on
an account row the caller has locked."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from accounts_api.db import audit, ledger
from accounts_api.db.pool import Connection
from accounts_api.jsonapi.declaration import Context


async def change_balance(
    connection: Connection,
    context: Context,
    account: Mapping[str, Any],
    amount: Decimal,
    kind: ledger.Kind,
    source: ledger.Source,
) -> Decimal:
    """Add `amount` (signed) to the locked `account`; returns the balance after."""
    before = account["balance"]
    after = await ledger.post(connection, account["id"], amount, kind, source, context.admin_id)
    await audit.record(
        connection,
        context,
        item_type="Account",
        item_id=account["id"],
        event="update",
        previous={"balance": before},
        changes={"balance": (before, after)},
    )
    return after
