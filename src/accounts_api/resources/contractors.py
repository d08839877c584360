"""Contractors (contract §5.1); the SMTP connections they point at are in smtp_connections.py."""

from __future__ import annotations

from typing import Any

from accounts_api.db.pool import Connection
from accounts_api.domain.validation import (
    BIGINT_MAX,
    BLANK,
    MUST_EXIST,
    TAKEN,
    Errors,
    check_boolean,
    check_numericality,
    check_string,
    is_blank,
    is_row_id,
)
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
from accounts_api.jsonapi.errors import ErrorList, ValidationFailed
from accounts_api.resources import records
from accounts_api.resources.validation import raise_invalid, wire_errors

UNIQUE_CONSTRAINTS = {"contractors_name_key": "name", "contractors_external_id_key": "external_id"}
FIELDS = (
    "name",
    "enabled",
    "vendor",
    "customer",
    "description",
    "address",
    "phones",
    "external_id",
)
VENDOR_OR_CUSTOMER = "Must be customer and/or vendor"

_LOOKUPS = """
SELECT EXISTS (SELECT 1 FROM contractors WHERE name = $1 AND id IS DISTINCT FROM $4) AS name,
       EXISTS (SELECT 1 FROM contractors WHERE external_id = $2 AND id IS DISTINCT FROM $4)
           AS external_id,
       $3::integer IS NULL OR EXISTS (SELECT 1 FROM smtp_connections WHERE id = $3) AS smtp_exists
"""


async def _validate(
    connection: Connection, values: dict[str, Any], key: object | None
) -> dict[str, Any]:
    errors = Errors()
    clean: dict[str, Any] = {"name": check_string(errors, "name", values.get("name"))}
    for field in ("description", "address", "phones"):
        clean[field] = check_string(errors, field, values.get(field), max_length=4096)
    for field in ("enabled", "vendor", "customer"):
        clean[field] = check_boolean(errors, field, values.get(field))
    external = check_numericality(
        errors,
        "external_id",
        values.get("external_id"),
        allow_nil=True,
        only_integer=True,
        greater_than_or_equal_to=-BIGINT_MAX - 1,
        less_than_or_equal_to=BIGINT_MAX,
    )
    clean["external_id"] = (
        int(external) if external is not None and "external_id" not in errors else None
    )
    smtp = values.get("smtp_connection_id")
    clean["smtp_connection_id"] = smtp
    in_range = smtp is None or is_row_id(smtp)
    found = await connection.fetchrow(
        _LOOKUPS, clean["name"], clean["external_id"], smtp if in_range else None, key
    )
    assert found is not None
    if is_blank(values.get("name")):
        errors.add("name", BLANK)
    if found["name"]:
        errors.add("name", TAKEN)
    if not (clean["vendor"] or clean["customer"]):
        errors.add("vendor", VENDOR_OR_CUSTOMER)
        errors.add("customer", VENDOR_OR_CUSTOMER)
    if found["external_id"]:
        errors.add("external_id", TAKEN)
    # the columns are NOT NULL without defaults: Yeti answers 500 here, we answer 422
    for field in ("enabled", "vendor", "customer"):
        if values.get(field) is None and field not in errors:
            errors.add(field, BLANK)
    if not in_range or not found["smtp_exists"]:
        errors.add("smtp_connection", MUST_EXIST)
    raise_invalid(CONTRACTORS, errors)
    return clean


async def create(connection: Connection, context: Context, payload: WritePayload) -> Any:
    clean = await _validate(connection, payload.values(), None)
    with wire_errors(CONTRACTORS, UNIQUE_CONSTRAINTS):
        return await records.insert(connection, "contractors", clean)


async def update(
    connection: Connection, context: Context, key: object, payload: WritePayload
) -> None:
    before = await records.lock(connection, "contractors", key)
    clean = await _validate(connection, {**before, **payload.values()}, key)
    with wire_errors(CONTRACTORS, UNIQUE_CONSTRAINTS):
        await records.update(connection, "contractors", key, records.changed(before, clean))


async def delete(connection: Connection, context: Context, key: object) -> None:
    await records.lock(connection, "contractors", key, deleting=True)
    if await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE contractor_id = $1)", key
    ):
        message = "Cannot delete record because dependent accounts exist"
        raise ErrorList([ValidationFailed(message, key=None, pointer="/data")])
    # contract §5.1: contacts go with the contractor (ON DELETE CASCADE)
    await connection.execute("DELETE FROM contractors WHERE id = $1", key)


STRING, BOOLEAN = FilterFamily.STRING, FilterFamily.BOOLEAN

CONTRACTORS = Resource(
    type="contractors",
    path="contractors",
    from_sql="contractors c",
    id_sql="c.id",
    attributes=(
        Attribute(
            "name",
            ValueType.STRING,
            "c.name",
            filter=STRING,
            description="Unique name of the contractor.",
            required=True,
            nullable=False,
            max_length=255,
        ),
        Attribute(
            "enabled",
            ValueType.BOOLEAN,
            "c.enabled",
            filter=BOOLEAN,
            required=True,
            nullable=False,
        ),
        Attribute(
            "vendor",
            ValueType.BOOLEAN,
            "c.vendor",
            filter=BOOLEAN,
            description=f"{VENDOR_OR_CUSTOMER}.",
            required=True,
            nullable=False,
        ),
        Attribute(
            "customer",
            ValueType.BOOLEAN,
            "c.customer",
            filter=BOOLEAN,
            description=f"{VENDOR_OR_CUSTOMER}.",
            required=True,
            nullable=False,
        ),
        Attribute("description", ValueType.STRING, "c.description", filter=STRING, max_length=4096),
        Attribute("address", ValueType.STRING, "c.address", filter=STRING, max_length=4096),
        Attribute("phones", ValueType.STRING, "c.phones", filter=STRING, max_length=4096),
        Attribute(
            "external_id",
            ValueType.INTEGER,
            "c.external_id",
            filter=FilterFamily.NUMBER,
            description="Unique id in the operator's own systems.",
            minimum=-BIGINT_MAX - 1,
            maximum=BIGINT_MAX,
        ),
    ),
    relationships=(
        Relationship(
            "smtp_connection",
            "smtp-connections",
            "c.smtp_connection_id",
            filterable=True,
            resource_type="smtp-connections",
        ),
    ),
    plain_filters={"name": "c.name"},
    writer=Writer(create=create, update=update, delete=delete),
)
