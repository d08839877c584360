"""Dispatch (contract §7, "Who is notified"): each outbox event fanned out, once, into the
e-mail and webhook deliveries it causes.

A batch of undispatched events is claimed in id order with FOR UPDATE SKIP LOCKED (several
workers share the work), and in the same transaction its deliveries are inserted and the
events marked dispatched: a crash before the commit leaves the whole batch to the next claim,
and a committed batch is never dispatched again.

- No subscription for the event's name: nothing is sent (Yeti's `find_by!` raises, and its
  job retries for ever); the event is still marked dispatched.
- Recipients: the subscription's `send_to` contacts, then the account's
  (`send_balance_notifications_to` in the event's data), each once, in that order; contacts
  since deleted are left out. One e-mail per recipient, if there is any.
- `send_balance_notifications_to` in what is sent becomes the recipients' e-mail addresses.
- A webhook if the subscription has a URL. Its `webhook-id` (Standard Webhooks) is random,
  chosen here and stored with the delivery: the same on every attempt and replay, and never
  reused, not even by a database restored from a backup or rebuilt.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from accounts_api.db.pool import Connection
from accounts_api.domain import thresholds
from accounts_api.domain.validation import is_row_id

Row = asyncpg.Record
# events claimed per transaction
BATCH = 100
RECIPIENTS_KEY = "send_balance_notifications_to"

_CLAIM = """
SELECT id, account_id, event, data, created_at
FROM outbox
WHERE dispatched_at IS NULL
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED
"""
_SUBSCRIPTIONS = """
SELECT id, event, send_to, url FROM event_subscriptions WHERE event = ANY($1::varchar[])
"""
_CONTACTS = "SELECT id, email FROM contacts WHERE id = ANY($1::integer[])"
_INSERT_EMAILS = """
INSERT INTO email_deliveries (outbox_id, contact_id, to_address, subject, body)
SELECT * FROM unnest($1::bigint[], $2::integer[], $3::varchar[], $4::varchar[], $5::text[])
"""
_INSERT_WEBHOOKS = """
INSERT INTO webhook_deliveries (outbox_id, event_subscription_id, webhook_id, event, url, body)
SELECT *
FROM unnest($1::bigint[], $2::integer[], $3::varchar[], $4::varchar[], $5::varchar[], $6::text[])
"""
_MARK_DISPATCHED = "UPDATE outbox SET dispatched_at = now() WHERE id = ANY($1::bigint[])"


@dataclass(frozen=True)
class Dispatched:
    """What one batch did."""

    events: int = 0
    emails: int = 0
    webhooks: int = 0

    @property
    def deliveries(self) -> int:
        return self.emails + self.webhooks


@dataclass
class _Deliveries:
    """The rows to insert, in the order of the INSERTs' columns."""

    emails: list[tuple[Any, ...]] = field(default_factory=list)
    webhooks: list[tuple[Any, ...]] = field(default_factory=list)


async def dispatch_batch(connection: Connection, batch: int = BATCH) -> Dispatched:
    """Claims up to `batch` undispatched events and fans them out, in one transaction."""
    async with connection.transaction():
        events = await connection.fetch(_CLAIM, batch)
        if not events:
            return Dispatched()
        subscriptions = {
            row["event"]: row
            for row in await connection.fetch(_SUBSCRIPTIONS, sorted({e["event"] for e in events}))
        }
        wanted = {
            contact
            for event in events
            if (subscription := subscriptions.get(event["event"])) is not None
            for contact in recipients(subscription["send_to"], _data(event).get(RECIPIENTS_KEY))
        }
        emails = (
            {row["id"]: row["email"] for row in await connection.fetch(_CONTACTS, sorted(wanted))}
            if wanted
            else {}
        )
        deliveries = _Deliveries()
        for event in events:
            subscription = subscriptions.get(event["event"])
            if subscription is not None:
                _fan_out(deliveries, event, subscription, emails)
        if deliveries.emails:
            await connection.execute(_INSERT_EMAILS, *_columns(deliveries.emails))
        if deliveries.webhooks:
            await connection.execute(_INSERT_WEBHOOKS, *_columns(deliveries.webhooks))
        await connection.execute(_MARK_DISPATCHED, [event["id"] for event in events])
    return Dispatched(len(events), len(deliveries.emails), len(deliveries.webhooks))


def _fan_out(
    deliveries: _Deliveries,
    event: Row,
    subscription: Row,
    emails: Mapping[int, str],
) -> None:
    data = _data(event)
    contacts = [
        contact
        for contact in recipients(subscription["send_to"], data.get(RECIPIENTS_KEY))
        if contact in emails
    ]
    sent = event_data(data, [emails[contact] for contact in contacts])
    account_id = event["account_id"] if event["account_id"] is not None else data.get("id")
    body = encode(sent)
    title = subject(event["event"], account_id)
    for contact in contacts:
        deliveries.emails.append((event["id"], contact, emails[contact], title, body))
    if subscription["url"]:
        deliveries.webhooks.append(
            (
                event["id"],
                subscription["id"],
                new_webhook_id(),
                event["event"],
                subscription["url"],
                webhook_body(event["event"], sent, event["created_at"]),
            )
        )


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


def _data(event: Row) -> dict[str, Any]:
    data = event["data"]
    return dict(data) if isinstance(data, Mapping) else {}


def recipients(subscribed: Sequence[object] | None, account: object) -> list[int]:
    """The subscription's contacts, then the account's, each once, in that order."""
    listed = list(subscribed or []) + (list(account) if isinstance(account, list) else [])
    # anything else in the data could not be a contact (and would fail the batch's lookup)
    return list(dict.fromkeys(c for c in listed if isinstance(c, int) and is_row_id(c)))


def event_data(data: Mapping[str, Any], addresses: list[str]) -> dict[str, Any]:
    """contract §7: the account's attributes with the recipients' e-mail addresses."""
    return {**data, RECIPIENTS_KEY: addresses}


def subject(event: str, account_id: object) -> str:
    known = thresholds.EVENTS_BY_NAME.get(event)
    if known is not None and isinstance(account_id, int):
        return thresholds.subject(known, account_id)
    return f"{event}: account {account_id}"


def webhook_body(event: str, data: Mapping[str, Any], created_at: datetime) -> str:
    """contract §7: `{"event_type", "event_data", "event_time": "YYYY-MM-DD HH:MM:SS <TZ>"}`,
    the time the event was committed, in UTC."""
    moment = created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return encode({"event_type": event, "event_data": data, "event_time": moment})


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def encode(value: Any) -> str:
    return msgspec.json.encode(value).decode()
