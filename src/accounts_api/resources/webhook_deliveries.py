"""Webhook deliveries (issue 7, our extension): the log of the webhooks the notifications
caused, read-only, and POST /webhook-deliveries/{id}/replay to send one again.

A replay makes the delivery pending and due at once, with as long again before it gives up
as it first had (24 hours by default); its webhook-id and body stay the same, so a receiver
that has it already recognises it.
"""

from __future__ import annotations

from accounts_api.db import audit, outbox
from accounts_api.db.pool import Connection
from accounts_api.domain.thresholds import EVENT_NAMES
from accounts_api.domain.validation import BIGINT_MAX
from accounts_api.jsonapi.declaration import (
    Context,
    FilterFamily,
    Relationship,
    Resource,
    ValueType,
    read_only,
)
from accounts_api.resources import records

STATUSES = ("pending", "delivered", "failed")

_REPLAY = """
UPDATE webhook_deliveries
SET status = 'pending',
    next_attempt_at = now(),
    give_up_at = now() + (give_up_at - created_at),
    delivered_at = NULL
WHERE id = $1
RETURNING status, next_attempt_at, give_up_at, delivered_at
"""


async def replay(connection: Connection, context: Context, key: object) -> None:
    before = await records.lock(connection, "webhook_deliveries", key)
    after = await connection.fetchrow(_REPLAY, key)
    assert after is not None
    # the workers wake at commit, as for a new event
    await connection.execute("SELECT pg_notify($1, '')", outbox.CHANNEL)
    await audit.record(
        connection,
        context,
        item_type="WebhookDelivery",
        item_id=key,
        event="update",
        previous=before,
        changes=audit.changes_between(before, dict(after)),
    )


WEBHOOK_DELIVERIES = Resource(
    type="webhook-deliveries",
    path="webhook-deliveries",
    from_sql="webhook_deliveries w",
    id_sql="w.id",
    key_max=BIGINT_MAX,
    attributes=(
        read_only("webhook_id", ValueType.STRING, "w.webhook_id"),
        read_only(
            "event",
            ValueType.STRING,
            "w.event",
            filter=FilterFamily.ENUM,
            enum_values={name: name for name in EVENT_NAMES.values()},
        ),
        read_only("url", ValueType.STRING, "w.url"),
        read_only(
            "status",
            ValueType.STRING,
            "w.status",
            filter=FilterFamily.ENUM,
            enum_values={status: status for status in STATUSES},
        ),
        read_only("attempts", ValueType.INTEGER, "w.attempts", sortable=True),
        read_only("response_status", ValueType.INTEGER, "w.response_status"),
        read_only("last_error", ValueType.STRING, "w.last_error"),
        read_only("next_attempt_at", ValueType.TIMESTAMP, "w.next_attempt_at", sortable=True),
        read_only("delivered_at", ValueType.TIMESTAMP, "w.delivered_at", sortable=True),
        read_only(
            "created_at",
            ValueType.TIMESTAMP,
            "w.created_at",
            sortable=True,
            filter=FilterFamily.DATETIME,
        ),
    ),
    relationships=(
        # the event-subscriptions resource is served by its own module; no related route here
        Relationship(
            "event_subscription",
            "event-subscriptions",
            "w.event_subscription_id",
            creatable=False,
            updatable=False,
            filterable=True,
            resource_type="event-subscriptions",
        ),
    ),
    # what a receiver knows a delivery by
    plain_filters={"webhook_id": "w.webhook_id"},
    actions={"replay": replay},
)
