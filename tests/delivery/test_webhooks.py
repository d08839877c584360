"""Webhook deliveries through a real HTTP receiver: Standard Webhooks headers and signature,
retries while the receiver is down, giving up, replay; every attempt logged."""

from __future__ import annotations

import time

import httpx
import pytest
from standardwebhooks import Webhook

from accounts_api.delivery import webhooks
from tests.conftest import Api, Db, free_port, run, wait_until
from tests.delivery.conftest import LOW_REACHED, Arrange, account_data
from tests.delivery.servers import Receiver, new_secret, worker_running

PREFIX = "/api/rest/admin"


def delivered(arrange: Arrange, count: int = 1) -> bool:
    statuses = arrange.statuses()
    return len(statuses) == count and set(statuses) == {"delivered"}


def test_a_webhook_is_signed_per_standard_webhooks(
    arrange: Arrange, receiver: Receiver, database_url: str
) -> None:
    secret = new_secret()
    owner = arrange.contact("owner@example.com")
    arrange.subscribe(url=receiver.url, secret=secret)
    data = account_data(8, send_to=[owner])
    before = int(time.time())
    arrange.emit((LOW_REACHED, 8, data))

    with worker_running(database_url):
        assert wait_until(lambda: delivered(arrange))

    [request] = receiver.requests
    [delivery] = arrange.webhook_deliveries()
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == delivery["webhook_id"]
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    assert headers["webhook-signature"].startswith("v1,")
    body = Webhook(secret).verify(request.body, headers)
    assert list(body) == ["event_type", "event_data", "event_time"]
    assert body["event_type"] == LOW_REACHED
    assert body["event_data"] == {**data, "send_balance_notifications_to": ["owner@example.com"]}
    assert request.body.decode() == delivery["body"]
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(request.body, headers)
    [attempt] = arrange.attempts(delivery["id"])
    assert (attempt["attempt"], attempt["response_status"], attempt["error"]) == (1, 200, None)
    assert attempt["duration_ms"] >= 0
    assert (delivery["attempts"], delivery["response_status"]) == (1, 200)
    assert delivery["delivered_at"] is not None


def test_a_receiver_down_for_a_while_gets_every_event_once_up_under_the_same_ids(
    arrange: Arrange, database_url: str
) -> None:
    secret = new_secret()
    # down (nothing listens), then up but failing the first request of each webhook, then fine
    receiver = Receiver(answer=lambda webhook_id, n: 503 if n == 1 else 204)
    arrange.subscribe(url=receiver.url, secret=secret)
    for account in range(1, 6):
        arrange.webhook(account_id=account)

    with worker_running(database_url):
        assert wait_until(
            lambda: (
                all(row["attempts"] >= 2 for row in arrange.webhook_deliveries())
                and len(arrange.webhook_deliveries()) == 5
            )
        )
        with receiver:
            assert wait_until(lambda: delivered(arrange, 5))

    received = receiver.by_id()
    deliveries = arrange.webhook_deliveries()
    assert set(received) == {row["webhook_id"] for row in deliveries}
    for row in deliveries:
        requests = received[row["webhook_id"]]
        assert [request.status for request in requests] == [503, 204]
        for request in requests:
            Webhook(secret).verify(request.body, request.headers)
            assert request.body.decode() == row["body"]
        attempts = arrange.attempts(row["id"])
        assert [attempt["attempt"] for attempt in attempts] == list(range(1, row["attempts"] + 1))
        refused, answered = attempts[:-2], attempts[-2:]
        assert refused, "attempts while nothing listened"
        for attempt in refused:
            assert attempt["response_status"] is None
            assert attempt["error"].startswith("ConnectError")
        assert [(a["response_status"], a["error"]) for a in answered] == [
            (503, "HTTP 503"),
            (204, None),
        ]
        assert (row["response_status"], row["last_error"]) == (204, None)


def test_past_give_up_at_a_failing_webhook_is_failed(
    arrange: Arrange, database_url: str, db: Db
) -> None:
    receiver = Receiver(answer=lambda webhook_id, n: 500)
    arrange.subscribe(url=receiver.url)
    arrange.webhook()

    with receiver, worker_running(database_url):
        assert wait_until(lambda: arrange.statuses() == ["pending"])
        db.execute("UPDATE webhook_deliveries SET give_up_at = now() + interval '300 ms'")
        assert wait_until(lambda: arrange.statuses() == ["failed"])

    [row] = arrange.webhook_deliveries()
    attempts = arrange.attempts(row["id"])
    assert row["attempts"] == len(attempts) == len(receiver.requests) >= 1
    assert {(a["response_status"], a["error"]) for a in attempts} == {(500, "HTTP 500")}
    assert (row["last_error"], row["delivered_at"]) == ("HTTP 500", None)
    assert len({request.webhook_id for request in receiver.requests}) == 1


def test_replay_sends_the_same_webhook_again(
    api: Api, arrange: Arrange, receiver: Receiver, database_url: str
) -> None:
    secret = new_secret()
    arrange.subscribe(url=receiver.url, secret=secret)
    arrange.webhook()
    with worker_running(database_url):
        assert wait_until(lambda: delivered(arrange))
        [row] = arrange.webhook_deliveries()

        response = api.post(f"{PREFIX}/webhook-deliveries/{row['id']}/replay")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["attributes"]["webhook-id"] == row["webhook_id"]

        assert wait_until(lambda: len(receiver.requests) == 2 and delivered(arrange))

    first, second = receiver.requests
    assert first.webhook_id == second.webhook_id == row["webhook_id"]
    assert first.body == second.body
    Webhook(secret).verify(second.body, second.headers)
    [after] = arrange.webhook_deliveries()
    assert after["attempts"] == 2
    assert [a["attempt"] for a in arrange.attempts(row["id"])] == [1, 2]


def test_a_deleted_subscription_leaves_nothing_to_sign_with(
    arrange: Arrange, database_url: str, db: Db
) -> None:
    receiver = Receiver()
    arrange.subscribe(url=receiver.url)
    arrange.webhook()
    arrange.dispatch()
    db.execute("DELETE FROM event_subscriptions")

    with receiver, worker_running(database_url):
        assert wait_until(lambda: arrange.statuses() == ["failed"])

    assert receiver.requests == []
    [row] = arrange.webhook_deliveries()
    assert row["last_error"] == webhooks.SUBSCRIPTION_GONE


@pytest.mark.parametrize("answer", ["refused", "timeout", "redirect"])
def test_a_post_that_gets_no_2xx_is_a_failure(answer: str) -> None:
    stalled = Receiver(stall_first=True)
    redirecting = Receiver(answer=lambda webhook_id, n: 302)
    url = {
        "refused": f"http://127.0.0.1:{free_port()}/",
        "timeout": stalled.url,
        "redirect": redirecting.url,
    }[answer]

    async def post() -> webhooks.Outcome:
        async with httpx.AsyncClient() as client:
            return await webhooks.post(client, url, "msg_1", "{}", new_secret(), 0.5)

    with stalled, redirecting:
        outcome = run(post())

    expected = {
        "refused": (None, "ConnectError"),
        "timeout": (None, "no answer within 0.5 s"),
        "redirect": (302, "HTTP 302"),
    }[answer]
    assert (outcome.response_status, outcome.error and outcome.error.split(":")[0]) == expected
