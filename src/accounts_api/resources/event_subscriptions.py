"""Event subscriptions (issue 7; Yeti's notifications.event_subscriptions, contract §7): one per
threshold event, naming the contacts e-mailed and the URL a signed webhook is posted to.

The webhook secret is shown once, in the answer to the create that stored it (generated when
the create gives none), as webhook providers do; every other answer leaves it out. An update
may replace it without echoing it.
"""

from __future__ import annotations

from typing import Any

from accounts_api.db.pool import Connection
from accounts_api.domain import event_subscriptions as rules
from accounts_api.domain.validation import (
    BLANK,
    INVALID,
    NOT_INCLUDED,
    TAKEN,
    Errors,
    check_id_list,
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
from accounts_api.resources import records
from accounts_api.resources.validation import raise_invalid, wire_errors

UNIQUE_CONSTRAINTS = {"event_subscriptions_event_key": "event"}

# Yeti counts every contact, those of admin users too (`Billing::Contact.where(id: send_to)`).
# FOR KEY SHARE: a contact being deleted meanwhile either waits for this write (and then
# removes itself from the list) or is gone before the count.
_LOOKUPS = """
SELECT EXISTS (SELECT 1 FROM event_subscriptions WHERE event = $1 AND id IS DISTINCT FROM $2)
           AS taken,
       (SELECT count(*) FROM (SELECT 1 FROM contacts WHERE id = ANY ($3::integer[])
                              FOR KEY SHARE) found) AS contacts
"""


async def _validate(
    connection: Connection, values: dict[str, Any], key: object | None
) -> dict[str, Any]:
    errors = Errors()
    event = values.get("event")
    clean: dict[str, Any] = {"event": event if event in rules.EVENTS else None}
    if event is None:
        errors.add("event", BLANK)
    elif clean["event"] is None:
        errors.add("event", NOT_INCLUDED)
    send_to = check_id_list(errors, "send_to", values.get("send_to"))
    clean["send_to"] = send_to
    found = await connection.fetchrow(_LOOKUPS, clean["event"], key, send_to or [])
    assert found is not None
    if found["taken"]:
        errors.add("event", TAKEN)
    # Yeti: `contacts.count != send_to.count`, so a repeated id is invalid too
    if send_to and found["contacts"] != len(send_to):
        errors.add("send_to", INVALID)
    clean["url"] = rules.check_url(errors, "url", values.get("url"))
    clean["secret"] = rules.check_secret(errors, "secret", values.get("secret"))
    if values.get("secret") is None:
        errors.add("secret", BLANK)
    raise_invalid(EVENT_SUBSCRIPTIONS, errors)
    return clean


async def create(connection: Connection, context: Context, payload: WritePayload) -> Any:
    values = payload.values()
    if values.get("secret") is None:
        values["secret"] = rules.generate_secret()
    clean = await _validate(connection, values, None)
    with wire_errors(EVENT_SUBSCRIPTIONS, UNIQUE_CONSTRAINTS):
        return await records.insert(connection, "event_subscriptions", clean)


async def update(
    connection: Connection, context: Context, key: object, payload: WritePayload
) -> None:
    before = await records.lock(connection, "event_subscriptions", key)
    clean = await _validate(connection, {**before, **payload.values()}, key)
    changes = records.changed(before, clean)
    if changes:
        changes["updated_at"] = await connection.fetchval("SELECT now()")
    with wire_errors(EVENT_SUBSCRIPTIONS, UNIQUE_CONSTRAINTS):
        await records.update(connection, "event_subscriptions", key, changes)


async def delete(connection: Connection, context: Context, key: object) -> None:
    await records.lock(connection, "event_subscriptions", key, deleting=True)
    # webhook deliveries keep their rows (ON DELETE SET NULL)
    await connection.execute("DELETE FROM event_subscriptions WHERE id = $1", key)


EVENT_SUBSCRIPTIONS = Resource(
    type="event-subscriptions",
    path="event-subscriptions",
    from_sql="event_subscriptions e",
    id_sql="e.id",
    attributes=(
        Attribute(
            "event",
            ValueType.STRING,
            "e.event",
            filter=FilterFamily.ENUM,
            enum_values={event: event for event in rules.EVENTS},
            description="The balance threshold event (contract §7, Yeti's spelling); unique.",
            required=True,
            nullable=False,
            choices=rules.EVENTS,
        ),
        Attribute(
            "send_to",
            ValueType.INT_ARRAY,
            "e.send_to",
            sortable=False,
            description="Contact ids e-mailed, beside the account's own; [] is stored as null.",
        ),
        Attribute(
            "url",
            ValueType.STRING,
            "e.url",
            sortable=False,
            filter=FilterFamily.STRING,
            description="Where webhooks are POSTed (absolute http or https), or null for none.",
            max_length=rules.MAX_URL_LENGTH,
        ),
        Attribute(
            "secret",
            ValueType.STRING,
            "e.secret",
            sortable=False,
            shown=Shown.ON_CREATE,
            description="The Standard Webhooks signing secret (whsec_ and base64); generated"
            " when a create leaves it out.",
            nullable=False,
        ),
        Attribute(
            "created_at",
            ValueType.TIMESTAMP,
            "e.created_at",
            creatable=False,
            updatable=False,
            sortable=False,
        ),
        Attribute(
            "updated_at",
            ValueType.TIMESTAMP,
            "e.updated_at",
            creatable=False,
            updatable=False,
            sortable=False,
        ),
    ),
    writer=Writer(create=create, update=update, delete=delete),
)
