"""The balance notification log (contract §7, issue 7): one row per threshold event, written by
the write that crossed the threshold. Read-only; the rows outlive their account, as in Yeti."""

from __future__ import annotations

from accounts_api.domain.thresholds import EVENT_NAMES
from accounts_api.domain.validation import BIGINT_MAX
from accounts_api.jsonapi.declaration import (
    Attribute,
    FilterFamily,
    Relationship,
    Resource,
    ValueType,
    read_only,
)

_EVENT_NAME = (
    "CASE n.event_id "
    + " ".join(f"WHEN {int(event)} THEN '{name}'" for event, name in EVENT_NAMES.items())
    + " END"
)


BALANCE_NOTIFICATIONS = Resource(
    type="balance-notifications",
    path="balance-notifications",
    from_sql="balance_notifications n",
    id_sql="n.id",
    key_max=BIGINT_MAX,
    attributes=(
        read_only(
            "event_id",
            ValueType.INTEGER,
            "n.event_id",
            description="1 low cleared, 2 high cleared, 3 low reached, 4 high reached.",
            nullable=False,
        ),
        read_only(
            "event",
            ValueType.STRING,
            _EVENT_NAME,
            description="The event's name, spelled as Yeti spells it.",
            nullable=False,
        ),
        read_only(
            "account_balance",
            ValueType.DECIMAL,
            "n.account_balance",
            description="The balance that crossed the threshold.",
            nullable=False,
        ),
        read_only("low_threshold", ValueType.DECIMAL, "n.low_threshold"),
        read_only("high_threshold", ValueType.DECIMAL, "n.high_threshold"),
        read_only("created_at", ValueType.TIMESTAMP, "n.created_at", sortable=True, nullable=False),
    ),
    relationships=(
        # the account may be gone: its linkage stays, as the log row does
        Relationship(
            "account",
            "accounts",
            "n.account_id",
            updatable=False,
            filterable=True,
            resource_type="accounts",
        ),
    ),
    filter_only=(
        Attribute("event_id", ValueType.INTEGER, "n.event_id", filter=FilterFamily.NUMBER),
        Attribute("created_at", ValueType.TIMESTAMP, "n.created_at", filter=FilterFamily.DATETIME),
    ),
)
