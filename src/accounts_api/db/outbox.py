"""The outbox: events of committed writes, for the delivery workers (delivery/).

A write emits its events into `outbox` in its own transaction, so an event exists exactly
when its write committed; `NOTIFY` in the same transaction wakes the workers at commit. A
worker fans each event out into e-mail and webhook deliveries, once (`dispatched_at`).

Threshold events (contract §7) carry in `data` the account as it is after the write:
its stored columns (decimals as strings, as the API writes them: "10.0"; timestamps in ISO
8601), `balance_low_threshold`, `balance_high_threshold` (strings or null) and
`send_balance_notifications_to` (the account's contact ids, or null). The dispatcher adds the
subscription's contacts and replaces those ids with the recipients' e-mail addresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounts_api.db.pool import Connection

# LISTEN/NOTIFY channel the delivery workers wait on
CHANNEL = "accounts_api_outbox"

_EMIT = """
WITH emitted AS (
    INSERT INTO outbox (account_id, event, data, balance_notification_id)
    SELECT * FROM unnest($1::integer[], $2::varchar[], $3::jsonb[], $4::bigint[])
)
SELECT pg_notify($5, '')
"""


async def emit(
    connection: Connection,
    events: list[tuple[int | None, str, Mapping[str, Any], int | None]],
) -> None:
    """(account id, event name, data, balance notification id) for each event, in order."""
    if not events:
        return
    accounts, names, data, notifications = zip(*events, strict=True)
    await connection.execute(
        _EMIT, list(accounts), list(names), [dict(d) for d in data], list(notifications), CHANNEL
    )
