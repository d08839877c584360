"""Contacts (contract §5.2): what accounts' `send-invoices-to` and
`send-balance-notifications-to` refer to. Only contacts of a contractor are visible."""

from __future__ import annotations

from typing import Any

from accounts_api.db.pool import Connection
from accounts_api.db.writes import Write
from accounts_api.domain.validation import BLANK, MUST_EXIST, Errors, check_string, is_row_id
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
from accounts_api.resources import records
from accounts_api.resources.validation import raise_invalid

# contract §5.2: contacts of admin users are invisible here
SCOPE = "contractor_id IS NOT NULL"

# contract §5.2: deleting a contact removes it from every account list that names it; each
# changed account gets an audit row, as Yeti re-saves them
_FORGET_IN_ACCOUNTS = """
UPDATE accounts a
SET send_invoices_to = NULLIF(array_remove(a.send_invoices_to, $1), '{}'), updated_at = now()
FROM accounts old
WHERE old.id = a.id AND $1 = ANY (a.send_invoices_to)
RETURNING a.id, to_jsonb(old) AS previous,
          jsonb_build_object('send_invoices_to',
                             jsonb_build_array(old.send_invoices_to, a.send_invoices_to))
              AS changes
"""
_CHANGED_ACCOUNTS = """
SELECT 'Account' AS item_type, item_id, 'update' AS event, object, object_changes
FROM unnest($3::bigint[], $4::jsonb[], $5::jsonb[]) AS changed (item_id, object, object_changes)
"""
_LOCK_ACCOUNTS = """
SELECT a.id FROM accounts a
LEFT JOIN account_balance_notification_settings s ON s.account_id = a.id
WHERE $1 = ANY (a.send_invoices_to) OR $1 = ANY (s.send_to)
ORDER BY a.id
FOR UPDATE OF a
"""
_FORGET_IN_SETTINGS = """
UPDATE account_balance_notification_settings
SET send_to = NULLIF(array_remove(send_to, $1), '{}')
WHERE $1 = ANY (send_to)
"""
_FORGET_IN_SUBSCRIPTIONS = """
UPDATE event_subscriptions
SET send_to = NULLIF(array_remove(send_to, $1), '{}'), updated_at = now()
WHERE $1 = ANY (send_to)
"""


async def _validate(connection: Connection, values: dict[str, Any]) -> dict[str, Any]:
    errors = Errors()
    clean = {
        "email": check_string(errors, "email", values.get("email")),
        "notes": check_string(errors, "notes", values.get("notes"), max_length=4096),
        "contractor_id": values.get("contractor_id"),
    }
    # NOT NULL in the database: Yeti answers 500 when it is missing, we answer 422
    if values.get("email") is None:
        errors.add("email", BLANK)
    contractor: Any = clean["contractor_id"]
    # a contact without a contractor could never be read back (contract §5.2), so it is refused
    exists = (
        contractor is not None
        and is_row_id(contractor)
        and await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM contractors WHERE id = $1)", contractor
        )
    )
    if not exists:
        errors.add("contractor", MUST_EXIST)
    raise_invalid(CONTACTS, errors)
    return clean


async def create(connection: Connection, context: Context, payload: WritePayload) -> Any:
    clean = await _validate(connection, payload.values())
    return await records.insert(connection, "contacts", clean)


async def update(
    connection: Connection, context: Context, key: object, payload: WritePayload
) -> None:
    before = await records.lock(connection, "contacts", key, SCOPE)
    clean = await _validate(connection, {**before, **payload.values()})
    changes = records.changed(before, clean)
    if changes:
        changes["updated_at"] = await connection.fetchval("SELECT now()")
    await records.update(connection, "contacts", key, changes)


async def delete(connection: Connection, context: Context, key: object) -> None:
    await records.lock(connection, "contacts", key, SCOPE, deleting=True)
    # lock the accounts naming it, in id order as every writer does, before changing them:
    # an account update running meanwhile would otherwise write the contact back
    await connection.execute(_LOCK_ACCOUNTS, key)
    changed = await connection.fetch(_FORGET_IN_ACCOUNTS, key)
    if changed:
        await Write(connection, context).audit_rows(
            _CHANGED_ACCOUNTS,
            [row["id"] for row in changed],
            [row["previous"] for row in changed],
            [row["changes"] for row in changed],
        )
    await connection.execute(_FORGET_IN_SETTINGS, key)
    await connection.execute(_FORGET_IN_SUBSCRIPTIONS, key)
    await connection.execute("DELETE FROM contacts WHERE id = $1", key)


CONTACTS = Resource(
    type="contacts",
    path="contacts",
    from_sql="contacts k",
    id_sql="k.id",
    attributes=(
        Attribute(
            "email",
            ValueType.STRING,
            "k.email",
            filter=FilterFamily.STRING,
            required=True,
            nullable=False,
            max_length=255,
        ),
        Attribute(
            "notes", ValueType.STRING, "k.notes", filter=FilterFamily.STRING, max_length=4096
        ),
    ),
    relationships=(
        Relationship(
            "contractor",
            "contractors",
            "k.contractor_id",
            resource_type="contractors",
            # contract §5.2: a contact without a contractor could never be read back
            required=True,
        ),
    ),
    scope_sql=f"k.{SCOPE}",
    writer=Writer(create=create, update=update, delete=delete),
)
