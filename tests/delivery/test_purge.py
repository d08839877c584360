"""Purge: the notification log, dispatched events and their finished deliveries older than
ACCOUNTS_API_NOTIFICATION_LOG_DAYS go; everything newer, or still to be sent, stays."""

from __future__ import annotations

import asyncpg
import pytest

from accounts_api.delivery import purge
from tests.conftest import Db, run
from tests.delivery.conftest import LOW_REACHED, Arrange

DAYS = 30


def purged(db: Db) -> int:
    async def go() -> int:
        connection = await asyncpg.connect(db.url)
        try:
            return await purge.purge(connection, DAYS)
        finally:
            await connection.close()

    deleted: int = run(go())
    return deleted


def notification(db: Db, age_days: float) -> int:
    return int(
        db.fetchval(
            "INSERT INTO balance_notifications (event_id, account_id, account_balance, created_at)"
            " VALUES (3, 1, -1, now() - make_interval(secs => $1 * 86400)) RETURNING id",
            age_days,
        )
    )


def event(db: Db, age_days: float, *, dispatched: bool = True) -> int:
    return int(
        db.fetchval(
            "INSERT INTO outbox (account_id, event, data, created_at, dispatched_at)"
            " VALUES (1, $1, '{}', now() - make_interval(secs => $2 * 86400),"
            " CASE WHEN $3 THEN now() - make_interval(secs => $2 * 86400) END) RETURNING id",
            LOW_REACHED,
            age_days,
            dispatched,
        )
    )


def webhook(db: Db, outbox_id: int, status: str, delivered_days_ago: float | None = None) -> int:
    delivery = int(
        db.fetchval(
            "INSERT INTO webhook_deliveries (outbox_id, webhook_id, event, url, body, status,"
            " created_at, delivered_at)"
            " SELECT id, 'msg_' || id || $2, event, 'http://127.0.0.1/', '{}', $2, created_at,"
            " now() - make_interval(secs => $3 * 86400) FROM outbox WHERE id = $1 RETURNING id",
            outbox_id,
            status,
            delivered_days_ago,
        )
    )
    db.execute(
        "INSERT INTO webhook_attempts (webhook_delivery_id, attempt, duration_ms)"
        " VALUES ($1, 1, 5)",
        delivery,
    )
    return delivery


def email(db: Db, outbox_id: int, status: str) -> None:
    db.execute(
        "INSERT INTO email_deliveries (outbox_id, to_address, subject, body, status, created_at)"
        " SELECT id, 'a@example.com', 's', '{}', $2, created_at FROM outbox WHERE id = $1",
        outbox_id,
        status,
    )


def ids(db: Db, table: str) -> set[int]:
    return {row["id"] for row in db.fetch(f"SELECT id FROM {table}")}


def test_purge_removes_old_rows_only(arrange: Arrange, db: Db) -> None:
    old_notification, new_notification = notification(db, 31), notification(db, 29)
    finished = event(db, 31)
    webhook(db, finished, "delivered", delivered_days_ago=31)
    email(db, finished, "failed")
    bare = event(db, 40)  # no subscription: nothing was sent
    pending = event(db, 31)
    webhook(db, pending, "pending")
    email(db, pending, "delivered")
    replayed = event(db, 31)  # replayed and delivered again recently
    webhook(db, replayed, "delivered", delivered_days_ago=1)
    pending_email = event(db, 31)
    email(db, pending_email, "pending")
    undispatched = event(db, 31, dispatched=False)
    recent = event(db, 29)
    kept_delivery = webhook(db, recent, "failed")

    assert purged(db) == 3

    assert ids(db, "balance_notifications") == {new_notification}
    assert old_notification not in ids(db, "balance_notifications")
    assert ids(db, "outbox") == {pending, replayed, pending_email, undispatched, recent}
    assert finished not in ids(db, "outbox") and bare not in ids(db, "outbox")
    # the deliveries and attempts of the purged events went with them
    assert {row["outbox_id"] for row in db.fetch("SELECT outbox_id FROM email_deliveries")} == {
        pending,
        pending_email,
    }
    assert kept_delivery in ids(db, "webhook_deliveries")
    assert db.fetchval("SELECT count(*) FROM webhook_attempts") == 3


def test_purge_works_in_bounded_batches(
    arrange: Arrange, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        notification(db, 31)
        event(db, 31)
    notification(db, 1)
    monkeypatch.setattr(purge, "BATCH", 2)

    monkeypatch.setattr(purge, "MAX_BATCHES", 2)
    assert purged(db) == 8  # two batches of two for each table in one run
    monkeypatch.setattr(purge, "MAX_BATCHES", 50)
    assert purged(db) == 2  # the rest in the next run

    assert db.fetchval("SELECT count(*) FROM balance_notifications") == 1
    assert db.fetchval("SELECT count(*) FROM outbox") == 0
