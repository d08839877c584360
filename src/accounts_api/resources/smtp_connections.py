"""SMTP connections (contract §5.1, "SMTP connection resource"): the servers e-mail goes out
through, a contractor's own or the global one. Full CRUD as in Yeti, except that
`auth-password` is write-only: taken on create and update, never rendered (Yeti returns it in
clear text)."""

from __future__ import annotations

import re
from typing import Any

from accounts_api.db.pool import Connection
from accounts_api.domain.validation import (
    BLANK,
    INVALID,
    TAKEN,
    Errors,
    check_boolean,
    check_numericality,
    check_string,
    is_blank,
)
from accounts_api.jsonapi.body import WritePayload
from accounts_api.jsonapi.declaration import (
    Attribute,
    Context,
    FilterFamily,
    Resource,
    Shown,
    ValueType,
    Writer,
)
from accounts_api.jsonapi.errors import ErrorList, ValidationFailed
from accounts_api.resources import records
from accounts_api.resources.validation import raise_invalid, wire_errors

UNIQUE_CONSTRAINTS = {"smtp_connections_name_key": "name"}
# the column defaults, which Yeti's form shows filled in
CREATE_DEFAULTS = {"port": 25, "global": True}
# Yeti's System::SmtpConnection format rule for from_address
_FROM_ADDRESS = re.compile(r"\A([^@\s]+)@((?:[-a-z0-9]+\.)+[a-z]{2,})\Z", re.IGNORECASE)
IN_USE = "Cannot delete record because dependent contractors exist"


async def _validate(
    connection: Connection, values: dict[str, Any], key: object | None
) -> dict[str, Any]:
    """Yeti's rules in their order: presence of name, host, port and from_address, the
    from_address format, the name's uniqueness; then what Yeti leaves to the database."""
    errors = Errors()
    clean: dict[str, Any] = {}
    for field in ("name", "host"):
        clean[field] = check_string(errors, field, values.get(field))
        if is_blank(values.get(field)):
            errors.add(field, BLANK)
    port = values.get("port")
    clean["port"] = None
    if port is None:
        errors.add("port", BLANK)
    else:
        number = check_numericality(
            errors,
            "port",
            port,
            only_integer=True,
            greater_than_or_equal_to=1,
            less_than_or_equal_to=65535,
        )
        clean["port"] = int(number) if number is not None and "port" not in errors else None
    address = check_string(errors, "from_address", values.get("from_address"))
    clean["from_address"] = address
    if "from_address" not in errors:
        if is_blank(address):
            errors.add("from_address", BLANK)
        # Rails' format rule runs on a blank value too: `can't be blank`, then `is invalid`
        if not _FROM_ADDRESS.match(address or ""):
            errors.add("from_address", INVALID)
    if clean["name"] is not None and await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM smtp_connections WHERE name = $1 AND id IS DISTINCT FROM $2)",
        clean["name"],
        key,
    ):
        errors.add("name", TAKEN)
    for field in ("auth_user", "auth_password"):
        clean[field] = check_string(errors, field, values.get(field))
    clean["global"] = check_boolean(errors, "global", values.get("global"))
    # NOT NULL: Yeti would answer 500
    if values.get("global") is None:
        errors.add("global", BLANK)
    raise_invalid(SMTP_CONNECTIONS, errors)
    return clean


async def create(connection: Connection, context: Context, payload: WritePayload) -> Any:
    clean = await _validate(connection, {**CREATE_DEFAULTS, **payload.values()}, None)
    with wire_errors(SMTP_CONNECTIONS, UNIQUE_CONSTRAINTS):
        return await records.insert(connection, "smtp_connections", clean)


async def update(
    connection: Connection, context: Context, key: object, payload: WritePayload
) -> None:
    before = await records.lock(connection, "smtp_connections", key)
    clean = await _validate(connection, {**before, **payload.values()}, key)
    with wire_errors(SMTP_CONNECTIONS, UNIQUE_CONSTRAINTS):
        await records.update(connection, "smtp_connections", key, records.changed(before, clean))


async def delete(connection: Connection, context: Context, key: object) -> None:
    # FOR UPDATE: a contractor being linked to it meanwhile (its foreign key check takes FOR
    # KEY SHARE) waits for this transaction, so what the check below sees stays true
    await records.lock(connection, "smtp_connections", key, deleting=True)
    if await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM contractors WHERE smtp_connection_id = $1)", key
    ):
        # Yeti: has_many :contractors, dependent: :restrict_with_error
        raise ErrorList([ValidationFailed(IN_USE, key=None, pointer="/data")])
    await connection.execute("DELETE FROM smtp_connections WHERE id = $1", key)


STRING = FilterFamily.STRING

SMTP_CONNECTIONS = Resource(
    type="smtp-connections",
    path="smtp-connections",
    from_sql="smtp_connections m",
    id_sql="m.id",
    attributes=(
        Attribute(
            "name",
            ValueType.STRING,
            "m.name",
            filter=STRING,
            description="Unique name of the connection.",
            required=True,
            nullable=False,
            max_length=255,
        ),
        Attribute(
            "host",
            ValueType.STRING,
            "m.host",
            filter=STRING,
            required=True,
            nullable=False,
            max_length=255,
        ),
        Attribute(
            "port",
            ValueType.INTEGER,
            "m.port",
            description="Default 25.",
            nullable=False,
            minimum=1,
            maximum=65535,
        ),
        Attribute(
            "from_address",
            ValueType.STRING,
            "m.from_address",
            description="An e-mail address.",
            required=True,
            nullable=False,
            max_length=255,
        ),
        Attribute("auth_user", ValueType.STRING, "m.auth_user", max_length=255),
        # secrets do not leave the server (docs/compatibility.md)
        Attribute(
            "auth_password",
            ValueType.STRING,
            "m.auth_password",
            shown=Shown.NEVER,
            max_length=255,
        ),
        Attribute(
            "global",
            ValueType.BOOLEAN,
            "m.global",
            filter=FilterFamily.BOOLEAN,
            description="Default true.",
            nullable=False,
        ),
    ),
    plain_filters={"name": "m.name"},
    writer=Writer(create=create, update=update, delete=delete),
)
