"""Webhook attempts (issue 7, our extension): read-only, one per attempt to send a webhook
delivery, with the answer's status (null when none came), the error and how long it took.
Listed per delivery at GET /webhook-deliveries/{id}/webhook-attempts."""

from __future__ import annotations

from accounts_api.domain.validation import BIGINT_MAX
from accounts_api.jsonapi.declaration import (
    FilterFamily,
    Relationship,
    Resource,
    ValueType,
    read_only,
)

WEBHOOK_ATTEMPTS = Resource(
    type="webhook-attempts",
    path="webhook-attempts",
    from_sql="webhook_attempts t",
    id_sql="t.id",
    key_max=BIGINT_MAX,
    attributes=(
        read_only("attempt", ValueType.INTEGER, "t.attempt", sortable=True),
        read_only("response_status", ValueType.INTEGER, "t.response_status"),
        read_only("error", ValueType.STRING, "t.error"),
        read_only("duration_ms", ValueType.INTEGER, "t.duration_ms"),
        read_only(
            "created_at",
            ValueType.TIMESTAMP,
            "t.created_at",
            sortable=True,
            filter=FilterFamily.DATETIME,
        ),
    ),
    relationships=(
        Relationship(
            "webhook_delivery",
            "webhook-deliveries",
            "t.webhook_delivery_id",
            creatable=False,
            updatable=False,
            filterable=True,
            resource_type="webhook-deliveries",
        ),
    ),
    nested_under=("webhook-deliveries", "t.webhook_delivery_id"),
)
