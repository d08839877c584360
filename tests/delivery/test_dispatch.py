"""Dispatch (contract §7, "Who is notified"): outbox events fanned out into e-mail and webhook
deliveries, each event once."""

from __future__ import annotations

import json
from datetime import UTC

import asyncpg
import pytest

from accounts_api.db import pool
from accounts_api.delivery import dispatch
from accounts_api.delivery.dispatch import Dispatched
from accounts_api.domain.thresholds import EVENT_NAMES, Event
from tests.conftest import Db, run
from tests.delivery.conftest import LOW_REACHED, Arrange, account_data

HOOK = "http://127.0.0.1:9/hooks"


async def _connected(url: str) -> asyncpg.Connection[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    await pool._init_connection(connection)
    return connection


def undispatched(db: Db) -> int:
    return int(db.fetchval("SELECT count(*) FROM outbox WHERE dispatched_at IS NULL"))


def test_recipients_are_the_subscriptions_then_the_accounts_each_once(
    arrange: Arrange, db: Db
) -> None:
    ops = arrange.contact("ops@example.com")
    both = arrange.contact("both@example.com")
    owner = arrange.contact("owner@example.com")
    gone = arrange.contact("gone@example.com")
    db.execute("DELETE FROM contacts WHERE id = $1", gone)
    arrange.subscribe(send_to=[ops, both, gone], url=HOOK)
    data = account_data(42, send_to=[both, owner])
    arrange.emit((LOW_REACHED, 42, data))

    assert arrange.dispatch() == Dispatched(events=1, emails=3, webhooks=1)

    emails = arrange.email_deliveries()
    assert [(row["contact_id"], row["to_address"]) for row in emails] == [
        (ops, "ops@example.com"),
        (both, "both@example.com"),
        (owner, "owner@example.com"),
    ]
    sent = {
        **data,
        "send_balance_notifications_to": [
            "ops@example.com",
            "both@example.com",
            "owner@example.com",
        ],
    }
    for row in emails:
        assert row["subject"] == "Account with id 42 low balance"
        assert json.loads(row["body"]) == sent
        assert row["status"] == "pending"
        assert row["attempts"] == 0
    [webhook] = arrange.webhook_deliveries()
    body = json.loads(webhook["body"])
    assert list(body) == ["event_type", "event_data", "event_time"]
    assert body["event_type"] == LOW_REACHED
    assert body["event_data"] == sent
    created = db.fetchval("SELECT created_at FROM outbox")
    assert body["event_time"] == created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert webhook["url"] == HOOK
    assert webhook["event"] == LOW_REACHED
    assert webhook["webhook_id"].startswith("msg_")
    assert undispatched(db) == 0


@pytest.mark.parametrize(
    ("event", "subject"),
    [
        (Event.LOW_REACHED, "Account with id 5 low balance"),
        (Event.HIGH_REACHED, "Account with id 5 high balance"),
        (Event.LOW_CLEARED, "Account with id 5 low balance cleared"),
        (Event.HIGH_CLEARED, "Account with id 5 high balance cleared"),
    ],
)
def test_subjects_are_the_contracts(arrange: Arrange, db: Db, event: Event, subject: str) -> None:
    name = EVENT_NAMES[event]
    arrange.subscribe(name, send_to=[arrange.contact("ops@example.com")])
    arrange.emit((name, 5, account_data(5)))

    arrange.dispatch()

    [email] = arrange.email_deliveries()
    assert email["subject"] == subject
    assert json.loads(email["body"])["send_balance_notifications_to"] == ["ops@example.com"]


def test_without_a_subscription_nothing_is_sent_but_the_event_is_dispatched(
    arrange: Arrange, db: Db
) -> None:
    arrange.subscribe(EVENT_NAMES[Event.HIGH_REACHED], url=HOOK)
    owner = arrange.contact("owner@example.com")
    arrange.emit((LOW_REACHED, 1, account_data(1, send_to=[owner])))

    assert arrange.dispatch() == Dispatched(events=1)
    assert arrange.email_deliveries() == []
    assert arrange.webhook_deliveries() == []
    assert undispatched(db) == 0


def test_without_a_url_no_webhook(arrange: Arrange, db: Db) -> None:
    arrange.subscribe(send_to=[arrange.contact("ops@example.com")])
    arrange.emit((LOW_REACHED, 1, account_data(1)))

    assert arrange.dispatch() == Dispatched(events=1, emails=1)
    assert arrange.webhook_deliveries() == []


def test_without_recipients_no_email_and_the_webhook_lists_none(arrange: Arrange, db: Db) -> None:
    arrange.subscribe(url=HOOK)
    arrange.emit((LOW_REACHED, 1, account_data(1, send_to=None)))

    assert arrange.dispatch() == Dispatched(events=1, webhooks=1)
    assert arrange.email_deliveries() == []
    [webhook] = arrange.webhook_deliveries()
    assert json.loads(webhook["body"])["event_data"]["send_balance_notifications_to"] == []


def test_every_event_of_a_batch_in_order_and_each_webhook_its_own_id(
    arrange: Arrange, db: Db
) -> None:
    low_cleared, high_reached = EVENT_NAMES[Event.LOW_CLEARED], EVENT_NAMES[Event.HIGH_REACHED]
    arrange.subscribe(low_cleared, url=HOOK)
    arrange.subscribe(high_reached, url=HOOK)
    # a jump from low to high: two events of one write (contract §7)
    arrange.emit((low_cleared, 3, account_data(3)), (high_reached, 3, account_data(3)))
    arrange.webhook(low_cleared, 4)

    assert arrange.dispatch() == Dispatched(events=3, webhooks=3)
    webhooks = arrange.webhook_deliveries()
    assert [row["event"] for row in webhooks] == [low_cleared, high_reached, low_cleared]
    assert len({row["webhook_id"] for row in webhooks}) == 3


def test_a_batch_rolled_back_is_dispatched_by_the_next_claim_and_a_claimed_one_is_skipped(
    arrange: Arrange, db: Db
) -> None:
    arrange.subscribe(url=HOOK)
    arrange.webhook(account_id=1)

    async def scenario() -> tuple[Dispatched, Dispatched, Dispatched]:
        first, second = await _connected(db.url), await _connected(db.url)
        try:
            # a worker that dies before its commit: the batch rolls back
            crashed = first.transaction()
            await crashed.start()
            lost = await dispatch.dispatch_batch(first)
            # meanwhile its claim holds the event: another worker skips it, without waiting
            skipped = await dispatch.dispatch_batch(second)
            await crashed.rollback()
            redone = await dispatch.dispatch_batch(second)
            return lost, skipped, redone
        finally:
            await first.close()
            await second.close()

    lost, skipped, redone = run(scenario())

    assert lost == Dispatched(events=1, webhooks=1)
    assert skipped == Dispatched()
    assert redone == Dispatched(events=1, webhooks=1)
    assert len(arrange.webhook_deliveries()) == 1
    assert arrange.dispatch() == Dispatched()


def test_events_without_an_account_snapshot_still_dispatch(arrange: Arrange, db: Db) -> None:
    arrange.subscribe(send_to=[arrange.contact("ops@example.com")], url=HOOK)
    arrange.emit((LOW_REACHED, 9, {"id": 9, "send_balance_notifications_to": "not a list"}))
    arrange.emit((LOW_REACHED, 9, {"send_balance_notifications_to": [True, 2**40, -1, "1"]}))

    assert arrange.dispatch() == Dispatched(events=2, emails=2, webhooks=2)
    first, second = arrange.email_deliveries()
    assert json.loads(first["body"]) == {
        "id": 9,
        "send_balance_notifications_to": ["ops@example.com"],
    }
    assert json.loads(second["body"]) == {"send_balance_notifications_to": ["ops@example.com"]}
    assert first["subject"] == second["subject"] == "Account with id 9 low balance"
