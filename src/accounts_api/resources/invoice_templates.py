"""Invoice templates (contract §5.4): routed at the singular `invoice-template`, typed and
linked as `invoice-templates`. Yeti's links point at the unrouted plural path; we emit the
same links and serve both paths."""

from __future__ import annotations

import dataclasses
from typing import Any

from accounts_api.db.pool import Connection
from accounts_api.domain.validation import BLANK, TAKEN, Errors, check_string, is_blank
from accounts_api.jsonapi.body import WritePayload
from accounts_api.jsonapi.declaration import (
    Attribute,
    Context,
    FilterFamily,
    Resource,
    ValueType,
    Writer,
)
from accounts_api.resources import records
from accounts_api.resources.validation import raise_invalid, wire_errors

MAX_TEMPLATE_LENGTH = 256 * 1024
UNIQUE_CONSTRAINTS = {"invoice_templates_name_key": "name"}


async def _validate(
    connection: Connection, values: dict[str, Any], key: object | None
) -> dict[str, Any]:
    errors = Errors()
    clean = {
        "name": check_string(errors, "name", values.get("name")),
        "html_template": check_string(
            errors, "html_template", values.get("html_template"), max_length=MAX_TEMPLATE_LENGTH
        ),
    }
    if is_blank(values.get("name")):
        errors.add("name", BLANK)
    elif clean["name"] is not None and await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM invoice_templates"
        " WHERE name = $1 AND id IS DISTINCT FROM $2)",
        clean["name"],
        key,
    ):
        errors.add("name", TAKEN)
    if is_blank(values.get("html_template")):
        errors.add("html_template", BLANK)
    raise_invalid(INVOICE_TEMPLATES, errors)
    return clean


async def create(connection: Connection, context: Context, payload: WritePayload) -> Any:
    clean = await _validate(connection, payload.attributes, None)
    with wire_errors(INVOICE_TEMPLATES, UNIQUE_CONSTRAINTS):
        return await records.insert(connection, "invoice_templates", clean)


async def update(
    connection: Connection, context: Context, key: object, payload: WritePayload
) -> None:
    before = await records.lock(connection, "invoice_templates", key)
    clean = await _validate(connection, {**before, **payload.attributes}, key)
    with wire_errors(INVOICE_TEMPLATES, UNIQUE_CONSTRAINTS):
        await records.update(connection, "invoice_templates", key, records.changed(before, clean))


async def delete(connection: Connection, context: Context, key: object) -> None:
    # contract §5.4: nothing blocks it; accounts keep the dangling id
    await records.lock(connection, "invoice_templates", key, deleting=True)
    await connection.execute("DELETE FROM invoice_templates WHERE id = $1", key)


INVOICE_TEMPLATES = Resource(
    type="invoice-templates",
    path="invoice-template",
    link_path="invoice-templates",
    from_sql="invoice_templates t",
    id_sql="t.id",
    attributes=(
        Attribute(
            "name",
            ValueType.STRING,
            "t.name",
            filter=FilterFamily.STRING,
            description="Unique name of the template.",
            required=True,
            nullable=False,
            max_length=255,
        ),
        Attribute(
            "html_template",
            ValueType.STRING,
            "t.html_template",
            required=True,
            nullable=False,
            max_length=MAX_TEMPLATE_LENGTH,
        ),
    ),
    writer=Writer(create=create, update=update, delete=delete),
)

# The plural path Yeti's own links point at, served too.
INVOICE_TEMPLATES_PLURAL = dataclasses.replace(INVOICE_TEMPLATES, path="invoice-templates")
