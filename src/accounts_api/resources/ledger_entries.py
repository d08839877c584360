"""Ledger entries: read-only, one per change of an account's balance. Listed per account at
GET /accounts/{id}/ledger-entries (paginated, filterable by created-at and kind)."""

from __future__ import annotations

from accounts_api.db.ledger import Kind
from accounts_api.domain.validation import BIGINT_MAX
from accounts_api.jsonapi.declaration import (
    Attribute,
    FilterFamily,
    Relationship,
    Resource,
    ValueType,
    read_only,
)

LEDGER_ENTRIES = Resource(
    type="ledger-entries",
    path="ledger-entries",
    from_sql="ledger_entries l",
    id_sql="l.id",
    key_max=BIGINT_MAX,
    attributes=(
        read_only("created_at", ValueType.TIMESTAMP, "l.created_at", sortable=True),
        read_only("kind", ValueType.STRING, "l.kind"),
        read_only("amount", ValueType.DECIMAL, "l.amount"),
        read_only("balance_after", ValueType.DECIMAL, "l.balance_after"),
        read_only("source_type", ValueType.STRING, "l.source_type"),
        read_only("source_id", ValueType.INTEGER, "l.source_id"),
        read_only("admin_id", ValueType.INTEGER, "l.admin_id"),
    ),
    relationships=(
        Relationship(
            "account", "accounts", "l.account_id", updatable=False, resource_type="accounts"
        ),
    ),
    filter_only=(
        Attribute("created_at", ValueType.TIMESTAMP, "l.created_at", filter=FilterFamily.DATETIME),
        Attribute(
            "kind",
            ValueType.STRING,
            "l.kind",
            filter=FilterFamily.ENUM,
            enum_values={kind.value: kind.value for kind in Kind},
        ),
    ),
    nested_under=("accounts", "l.account_id"),
)
