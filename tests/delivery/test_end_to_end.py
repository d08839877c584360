"""From a write to an inbox and a receiver (issue 7): everything arranged through the API (an
SMTP connection, contacts, subscriptions with their secrets, an account with thresholds),
money moved through the API, and a delivery worker sending to a real SMTP server and a real
HTTP receiver. Every crossing arrives once, by e-mail to every recipient and as a webhook
whose Standard Webhooks signature verifies with its subscription's secret."""

from __future__ import annotations

import json
import re
from typing import Any

from standardwebhooks import Webhook

from tests.api.conftest import account_body
from tests.api.contract import PREFIX
from tests.conftest import Api, Db, wait_until
from tests.delivery.conftest import Arrange
from tests.delivery.servers import Receiver, SmtpServer, worker_running

EVENTS = (
    "AccountLowThesholdCleared",
    "AccountHighThesholdCleared",
    "AccountLowThesholdReached",
    "AccountHighThesholdReached",
)
SUBJECTS = {
    "AccountLowThesholdCleared": "Account with id {} low balance cleared",
    "AccountHighThesholdCleared": "Account with id {} high balance cleared",
    "AccountLowThesholdReached": "Account with id {} low balance",
    "AccountHighThesholdReached": "Account with id {} high balance",
}


def created(api: Api, path: str, attributes: dict[str, Any], **relationships: Any) -> Any:
    data: dict[str, Any] = {"type": path, "attributes": attributes}
    if relationships:
        data["relationships"] = {
            name: {"data": {"type": kind, "id": str(key)}}
            for name, (kind, key) in relationships.items()
        }
    response = api.post(f"{PREFIX}/{path}", {"data": data})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_crossings_arrive_by_email_and_signed_webhook(
    api: Api, db: Db, database_url: str, arrange: Arrange
) -> None:
    with SmtpServer() as smtp, Receiver() as receiver:
        connection = created(
            api,
            "smtp-connections",
            {
                "name": "local",
                "host": "127.0.0.1",
                "port": smtp.port,
                "from-address": "billing@example.com",
                "auth-password": "never-shown",
                "global": True,
            },
        )
        assert "auth-password" not in connection["attributes"]
        contractor = arrange.contractor()
        ops = created(
            api, "contacts", {"email": "ops@example.com"}, contractor=("contractors", contractor)
        )
        customer = created(
            api,
            "contacts",
            {"email": "customer@example.com"},
            contractor=("contractors", contractor),
        )
        secrets = {}
        for event in EVENTS:
            subscription = created(
                api,
                "event-subscriptions",
                {"event": event, "send-to": [int(ops["id"])], "url": receiver.url},
            )
            secrets[event] = subscription["attributes"]["secret"]
        response = api.post(
            f"{PREFIX}/accounts",
            account_body(
                contractor,
                name="watched",
                **{
                    "balance-low-threshold": "10",
                    "balance-high-threshold": "100",
                    "send-balance-notifications-to": [int(customer["id"])],
                },
            ),
        )
        assert response.status_code == 201, response.text
        account = response.json()["data"]["id"]
        # created at 0: low reached; a payment of 200: low cleared and high reached; a charge
        # of 150: high cleared; a correction of -45: low reached again
        payment = {
            "data": {
                "type": "payments",
                "attributes": {"amount": "200"},
                "relationships": {"account": {"data": {"type": "accounts", "id": account}}},
            }
        }
        assert api.post(f"{PREFIX}/payments", payment).status_code == 201
        charge = {
            "data": {
                "type": "transactions",
                "attributes": {"amount": "150"},
                "relationships": {"account": {"data": {"type": "accounts", "id": account}}},
            }
        }
        assert api.post(f"{PREFIX}/transactions", charge).status_code == 201
        correction = {
            "data": {
                "type": "balance-correction",
                "id": account,
                "attributes": {"correction": "-45"},
            }
        }
        assert (
            api.put(f"{PREFIX}/accounts/{account}/balance-correction", correction).status_code
            == 200
        )
        expected = [
            ("AccountLowThesholdReached", "0.0"),
            ("AccountLowThesholdCleared", "200.0"),
            ("AccountHighThesholdReached", "200.0"),
            ("AccountHighThesholdCleared", "50.0"),
            ("AccountLowThesholdReached", "5.0"),
        ]

        with worker_running(database_url):
            assert wait_until(lambda: len(receiver.requests) >= 5 and len(smtp.mails) >= 10)
            # nothing more arrives: each crossing once
            assert not wait_until(lambda: len(receiver.requests) > 5 or len(smtp.mails) > 10, 1.0)

    # webhooks: one per crossing, signed with the secret of the event's subscription
    hooks = []
    for request in receiver.requests:
        body = request.body.decode()
        payload = Webhook(secrets[json.loads(body)["event_type"]]).verify(body, request.headers)
        assert list(payload) == ["event_type", "event_data", "event_time"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", payload["event_time"])
        assert request.headers["content-type"] == "application/json"
        hooks.append(payload)
    assert len({request.webhook_id for request in receiver.requests}) == 5
    assert sorted(_key(hook) for hook in hooks) == sorted(expected)
    for hook in hooks:
        data = hook["event_data"]
        assert data["id"] == int(account)
        assert data["name"] == "watched"
        assert data["balance_low_threshold"] == "10.0"
        assert data["balance_high_threshold"] == "100.0"
        # the subscription's contacts, then the account's, as e-mail addresses
        assert data["send_balance_notifications_to"] == ["ops@example.com", "customer@example.com"]

    # e-mails: one per crossing and recipient, with the contract's subjects and the event's data
    received = sorted(
        (
            mail.message["To"],
            mail.message["Subject"],
            json.loads(mail.message.get_payload(decode=True))["balance"],
        )
        for mail in smtp.mails
    )
    assert received == sorted(
        (to, SUBJECTS[event].format(account), balance)
        for event, balance in expected
        for to in ("ops@example.com", "customer@example.com")
    )
    for mail in smtp.mails:
        body = json.loads(mail.message.get_payload(decode=True))
        assert body["id"] == int(account)
        assert body["send_balance_notifications_to"] == ["ops@example.com", "customer@example.com"]
        assert mail.mail_from == "billing@example.com"

    # the delivery log says the same
    delivered = api.get(f"{PREFIX}/webhook-deliveries", params={"filter[status_eq]": "delivered"})
    assert delivered.json()["meta"] == {"total-count": 5}
    assert db.fetchval("SELECT count(*) FROM email_deliveries WHERE status = 'delivered'") == 10


def _key(hook: dict[str, Any]) -> tuple[str, str]:
    return hook["event_type"], hook["event_data"]["balance"]
