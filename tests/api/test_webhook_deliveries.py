"""Webhook deliveries and their attempts (issue 7, our extension): read-only logs, filters,
the attempts nested under their delivery, and the replay action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.contract import PREFIX, ResourceContract, ids
from tests.conftest import BASE_URL, Api, Db

DELIVERIES = f"{PREFIX}/webhook-deliveries"
ATTEMPTS = f"{PREFIX}/webhook-attempts"
LOW = "AccountLowThesholdReached"
HIGH = "AccountHighThesholdReached"


def subscription(db: Db, event: str = LOW) -> int:
    return int(
        db.fetchval(
            "INSERT INTO event_subscriptions (event, url, secret)"
            " VALUES ($1, 'http://127.0.0.1/hooks', 'whsec_c2VjcmV0') RETURNING id",
            event,
        )
    )


def delivery(
    db: Db, *, event: str = LOW, subscription_id: int | None = None, **columns: Any
) -> int:
    outbox_id = db.fetchval(
        "INSERT INTO outbox (account_id, event, data, dispatched_at)"
        " VALUES (1, $1, '{}', now()) RETURNING id",
        event,
    )
    values = {
        "outbox_id": outbox_id,
        "event_subscription_id": subscription_id,
        "webhook_id": f"msg_{outbox_id}",
        "event": event,
        "url": "http://127.0.0.1/hooks",
        "body": '{"event_type":"x"}',
        **columns,
    }
    names = ", ".join(values)
    placeholders = ", ".join(f"${n}" for n in range(1, len(values) + 1))
    return int(
        db.fetchval(
            f"INSERT INTO webhook_deliveries ({names}) VALUES ({placeholders}) RETURNING id",
            *values.values(),
        )
    )


def attempt(db: Db, delivery_id: int, number: int, status: int | None, error: str | None) -> int:
    return int(
        db.fetchval(
            "INSERT INTO webhook_attempts"
            " (webhook_delivery_id, attempt, response_status, error, duration_ms)"
            " VALUES ($1, $2, $3, $4, 12) RETURNING id",
            delivery_id,
            number,
            status,
            error,
        )
    )


class TestWebhookDeliveries(ResourceContract):
    path = "webhook-deliveries"
    type = "webhook-deliveries"
    creatable = False

    @pytest.fixture(autouse=True)
    def _database(self, db: Db) -> None:
        self.db = db

    def make(self, api: Api) -> str:
        return str(delivery(self.db))


class TestWebhookAttempts(ResourceContract):
    path = "webhook-attempts"
    type = "webhook-attempts"
    creatable = False

    @pytest.fixture(autouse=True)
    def _database(self, db: Db) -> None:
        self.db = db

    def make(self, api: Api) -> str:
        return str(attempt(self.db, delivery(self.db), 1, 200, None))


def test_a_delivery_shows_its_state_and_subscription(api: Api, db: Db) -> None:
    subscribed = subscription(db)
    key = delivery(
        db,
        subscription_id=subscribed,
        status="failed",
        attempts=3,
        response_status=500,
        last_error="HTTP 500",
    )

    response = api.get(f"{DELIVERIES}/{key}")

    assert response.status_code == 200
    data = response.json()["data"]
    row = db.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", key)
    assert row is not None
    stamp = "%Y-%m-%dT%H:%M:%S.%f"
    assert data["attributes"] == {
        "webhook-id": row["webhook_id"],
        "event": LOW,
        "url": "http://127.0.0.1/hooks",
        "status": "failed",
        "attempts": 3,
        "response-status": 500,
        "last-error": "HTTP 500",
        "next-attempt-at": row["next_attempt_at"].astimezone(UTC).strftime(stamp)[:-3] + "Z",
        "delivered-at": None,
        "created-at": row["created_at"].astimezone(UTC).strftime(stamp)[:-3] + "Z",
    }
    own = f"{BASE_URL}{DELIVERIES}/{key}"
    assert data["relationships"] == {
        "event-subscription": {
            "links": {
                "self": f"{own}/relationships/event-subscription",
                "related": f"{own}/event-subscription",
            },
            "data": {"type": "event-subscriptions", "id": str(subscribed)},
        }
    }
    # the related link serves the subscription, its secret not shown
    related = api.get(f"{DELIVERIES}/{key}/event-subscription")
    assert related.status_code == 200
    assert related.json()["data"]["id"] == str(subscribed)
    assert "secret" not in related.json()["data"]["attributes"]
    included = api.get(f"{DELIVERIES}/{key}", params={"include": "event-subscription"}).json()
    assert [item["type"] for item in included["included"]] == ["event-subscriptions"]


def test_deliveries_filter_by_status_event_subscription_time_and_webhook_id(
    api: Api, db: Db
) -> None:
    low, high = subscription(db, LOW), subscription(db, HIGH)
    pending = delivery(db, subscription_id=low)
    failed = delivery(db, subscription_id=low, status="failed")
    done = delivery(db, subscription_id=high, event=HIGH, status="delivered")
    old = delivery(db, status="delivered", created_at=datetime.now(UTC) - timedelta(days=3))

    def listed(**params: str) -> list[int]:
        return ids(api.get(DELIVERIES, params={f"filter[{k}]": v for k, v in params.items()}))

    assert listed(status_eq="pending") == [pending]
    assert listed(status_in="failed,delivered") == [failed, done, old]
    assert listed(event_eq=HIGH) == [done]
    assert listed(**{"event_subscription.id": str(low)}) == [pending, failed]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert listed(created_at_gteq=since) == [pending, failed, done]
    done_id = db.fetchval("SELECT webhook_id FROM webhook_deliveries WHERE id = $1", done)
    assert listed(webhook_id=done_id) == [done]
    response = api.get(DELIVERIES, params={"filter[status_eq]": "lost"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "107"  # Invalid filter value


def test_deliveries_and_attempts_are_read_only(api: Api, db: Db) -> None:
    key = delivery(db)
    body = {"data": {"type": "webhook-deliveries", "attributes": {"status": "delivered"}}}

    assert api.post(DELIVERIES, body).status_code == 405
    assert api.patch(f"{DELIVERIES}/{key}", body).status_code == 405
    assert api.delete(f"{DELIVERIES}/{key}").status_code == 405
    assert api.post(ATTEMPTS, body).status_code == 405
    assert db.fetchval("SELECT status FROM webhook_deliveries WHERE id = $1", key) == "pending"


def test_the_attempts_of_one_delivery(api: Api, db: Db) -> None:
    key, other = delivery(db), delivery(db)
    first = attempt(db, key, 1, None, "ConnectError: refused")
    second = attempt(db, key, 2, 204, None)
    elsewhere = attempt(db, other, 1, 200, None)

    response = api.get(f"{DELIVERIES}/{key}/webhook-attempts")

    assert ids(response) == [first, second]
    document = response.json()
    assert document["meta"] == {"total-count": 2}
    assert document["links"]["first"].startswith(f"{BASE_URL}{DELIVERIES}/{key}/webhook-attempts?")
    assert [item["attributes"] for item in document["data"]] == [
        {
            "attempt": 1,
            "response-status": None,
            "error": "ConnectError: refused",
            "duration-ms": 12,
            "created-at": document["data"][0]["attributes"]["created-at"],
        },
        {
            "attempt": 2,
            "response-status": 204,
            "error": None,
            "duration-ms": 12,
            "created-at": document["data"][1]["attributes"]["created-at"],
        },
    ]
    assert ids(api.get(ATTEMPTS)) == [first, second, elsewhere]
    assert ids(api.get(ATTEMPTS, params={"filter[webhook_delivery.id]": str(other)})) == [elsewhere]
    included = api.get(ATTEMPTS, params={"include": "webhook-delivery"}).json()["included"]
    assert {item["id"] for item in included} == {str(key), str(other)}
    assert api.get(f"{DELIVERIES}/999999/webhook-attempts").status_code == 404


def test_replay_makes_a_delivery_due_again_with_the_same_id_and_body(
    api: Api, db: Db, admin_id: int
) -> None:
    created = datetime.now(UTC) - timedelta(days=2)
    key = delivery(
        db,
        status="delivered",
        attempts=1,
        response_status=200,
        created_at=created,
        next_attempt_at=created,
        give_up_at=created + timedelta(hours=24),
        delivered_at=created,
    )
    before = db.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", key)
    assert before is not None

    response = api.post(f"{DELIVERIES}/{key}/replay")

    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert attributes["status"] == "pending"
    assert attributes["delivered-at"] is None
    assert attributes["webhook-id"] == before["webhook_id"]
    after = db.fetchrow("SELECT *, now() AS checked FROM webhook_deliveries WHERE id = $1", key)
    assert after is not None
    assert after["body"] == before["body"]
    assert after["attempts"] == 1
    assert after["next_attempt_at"] <= after["checked"]
    assert after["next_attempt_at"] > created
    # as long again as it first had
    assert after["give_up_at"] - after["next_attempt_at"] == timedelta(hours=24)
    audit = db.fetchrow(
        "SELECT item_type, event, whodunnit, object_changes FROM audit_log WHERE item_id = $1",
        key,
    )
    assert audit is not None
    assert (audit["item_type"], audit["event"], audit["whodunnit"]) == (
        "WebhookDelivery",
        "update",
        str(admin_id),
    )
    assert audit["object_changes"]["status"] == ["delivered", "pending"]


def test_replay_of_a_missing_delivery_is_404(api: Api) -> None:
    response = api.post(f"{DELIVERIES}/999999/replay")

    assert response.status_code == 404
    assert response.json()["errors"][0]["detail"] == (
        "The record identified by 999999 could not be found."
    )
