"""Currencies (contract §5.3). The default (system) currency is id 0, USD on a fresh database."""

from __future__ import annotations

from typing import Any

from accounts_api.db.pool import Connection
from accounts_api.domain import currencies as rules
from accounts_api.jsonapi.body import WritePayload
from accounts_api.jsonapi.declaration import (
    Attribute,
    Context,
    FilterFamily,
    Resource,
    ValueType,
    Writer,
)
from accounts_api.jsonapi.errors import ErrorList, ValidationFailed
from accounts_api.resources import records
from accounts_api.resources.validation import raise_invalid, wire_errors

UNIQUE_CONSTRAINTS = {"currencies_name_key": "name"}

_LOOKUPS = """
SELECT EXISTS (SELECT 1 FROM currencies WHERE name = $1 AND id IS DISTINCT FROM $2) AS name_taken,
       (SELECT name FROM currencies WHERE id = $3) AS system_currency,
       (SELECT name FROM currencies WHERE id = $2) AS current_name,
       ARRAY(SELECT DISTINCT rate_provider_id FROM currencies
             WHERE rate_provider_id IS NOT NULL) AS used_providers
"""


async def _validate(
    connection: Connection, values: dict[str, Any], key: object | None
) -> dict[str, Any]:
    name = values.get("name")
    name = name if isinstance(name, str) and "\x00" not in name else None
    row = await connection.fetchrow(_LOOKUPS, name, key, rules.DEFAULT_CURRENCY_ID)
    assert row is not None
    lookups = rules.Lookups(
        name_taken=row["name_taken"],
        system_currency=row["system_currency"],
        used_provider_ids=row["used_providers"],
    )
    errors, clean = rules.validate(
        values,
        lookups,
        is_default=key == rules.DEFAULT_CURRENCY_ID,
        name_changed=name != row["current_name"],
    )
    raise_invalid(CURRENCIES, errors)
    return clean


async def create(connection: Connection, context: Context, payload: WritePayload) -> Any:
    clean = await _validate(connection, payload.attributes, None)
    with wire_errors(CURRENCIES, UNIQUE_CONSTRAINTS):
        return await records.insert(connection, "currencies", clean)


async def update(
    connection: Connection, context: Context, key: object, payload: WritePayload
) -> None:
    # a rename rewrites its accounts' copy of the name: lock them first, in id order, as a
    # payment does (account, then the currency through its foreign key), so the two cannot
    # deadlock
    await connection.execute(
        "SELECT id FROM accounts WHERE currency_id = $1 ORDER BY id FOR NO KEY UPDATE", key
    )
    before = await records.lock(connection, "currencies", key)
    clean = await _validate(connection, {**before, **payload.attributes}, key)
    changes = records.changed(before, clean)
    with wire_errors(CURRENCIES, UNIQUE_CONSTRAINTS):
        await records.update(connection, "currencies", key, changes)
    if "name" in changes:
        # contract §5.3: accounts keep a copy of the name
        await connection.execute(
            "UPDATE accounts SET currency_name = $2 WHERE currency_id = $1", key, changes["name"]
        )


async def delete(connection: Connection, context: Context, key: object) -> None:
    await records.lock(connection, "currencies", key, deleting=True)
    if await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE currency_id = $1)", key
    ):
        message = "Cannot delete record because dependent accounts exist"
    elif key == rules.DEFAULT_CURRENCY_ID:
        message = "Default currency cannot be deleted"
    else:
        await connection.execute("DELETE FROM currencies WHERE id = $1", key)
        return
    raise ErrorList([ValidationFailed(message, key=None, pointer="/data")])


CURRENCIES = Resource(
    type="currencies",
    path="currencies",
    from_sql="currencies c",
    id_sql="c.id",
    attributes=(
        Attribute(
            "name",
            ValueType.STRING,
            "c.name",
            filter=FilterFamily.STRING,
            description="An ISO 4217 code, unique (contract §5.3).",
            required=True,
            nullable=False,
            choices=tuple(sorted(rules.NAMES)),
        ),
        Attribute(
            "rate",
            ValueType.FLOAT,
            "c.rate",
            filter=FilterFamily.NUMBER,
            description="Units of this currency per unit of the default one; 1 for the default.",
            required=True,
            nullable=False,
            minimum=0,
            exclusive_minimum=True,
        ),
        Attribute(
            "rate_provider_id",
            ValueType.INTEGER,
            "c.rate_provider_id",
            filter=FilterFamily.NUMBER,
            description="Where the rate comes from; it must support the currency.",
            choices=tuple(sorted(rules.RATE_PROVIDERS)),
        ),
    ),
    key_max=32767,
    writer=Writer(create=create, update=update, delete=delete),
)
