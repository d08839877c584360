"""E-mail deliveries (contract §7) through real SMTP servers: the contact's contractor's SMTP
connection, else the global one; login when a user is set; retries and giving up."""

from __future__ import annotations

import json

import asyncpg

from accounts_api.db import pool
from accounts_api.delivery import dispatch, emails
from tests.conftest import Db, free_port, run
from tests.delivery.conftest import LOW_REACHED, Arrange, account_data
from tests.delivery.servers import SmtpServer

TIMEOUT = 10.0
RETRY_BASE = 0.05


def deliver(db: Db) -> int:
    """Dispatches, then sends every e-mail due; how many were tried."""

    async def go() -> int:
        connection = await asyncpg.connect(db.url)
        try:
            await pool._init_connection(connection)
            await dispatch.dispatch_batch(connection)
            tried = 0
            while await emails.deliver_one(connection, TIMEOUT, RETRY_BASE):
                tried += 1
            return tried
        finally:
            await connection.close()

    tried: int = run(go())
    return tried


def test_each_contact_is_mailed_through_its_contractors_smtp_else_the_lowest_global_one(
    arrange: Arrange, db: Db
) -> None:
    with SmtpServer() as own, SmtpServer() as shared:
        global_id = arrange.smtp(shared.port)
        arrange.smtp(free_port())  # a second global one: the lowest id is the one
        own_id = arrange.smtp(own.port, global_=False)
        with_smtp = arrange.contact("a@example.com", arrange.contractor(own_id))
        without = arrange.contact("b@example.com", arrange.contractor())
        assert global_id < own_id
        arrange.subscribe(send_to=[with_smtp])
        data = account_data(11, send_to=[without])
        arrange.emit((LOW_REACHED, 11, data))

        assert deliver(db) == 2

    assert [mail.rcpt_tos for mail in own.mails] == [["a@example.com"]]
    assert [mail.rcpt_tos for mail in shared.mails] == [["b@example.com"]]
    for mail in own.mails + shared.mails:
        assert mail.mail_from == "billing@example.com"
        assert mail.message["Subject"] == "Account with id 11 low balance"
        assert mail.message["From"] == "billing@example.com"
        assert mail.login is None
        payload = mail.message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        assert json.loads(payload) == {
            **data,
            "send_balance_notifications_to": ["a@example.com", "b@example.com"],
        }
    for row in arrange.email_deliveries():
        assert row["status"] == "delivered"
        assert row["attempts"] == 1
        assert row["delivered_at"] is not None
        assert row["last_error"] is None


def test_logs_in_when_the_connection_has_a_user(arrange: Arrange, db: Db) -> None:
    with SmtpServer(users={"mailer": "s3cret"}) as server:
        arrange.smtp(server.port, user="mailer", password="s3cret")
        arrange.subscribe(send_to=[arrange.contact("a@example.com")])
        arrange.emit((LOW_REACHED, 1, account_data(1)))

        assert deliver(db) == 1

    assert [mail.login for mail in server.mails] == [("mailer", "s3cret")]
    assert [row["status"] for row in arrange.email_deliveries()] == ["delivered"]


def test_a_refused_login_is_a_failed_attempt(arrange: Arrange, db: Db) -> None:
    with SmtpServer(users={"mailer": "s3cret"}) as server:
        arrange.smtp(server.port, user="mailer", password="wrong")
        arrange.subscribe(send_to=[arrange.contact("a@example.com")])
        arrange.emit((LOW_REACHED, 1, account_data(1)))

        assert deliver(db) == 1

    assert server.mails == []
    [row] = arrange.email_deliveries()
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert "535" in row["last_error"]


def test_without_any_smtp_connection_the_email_fails_saying_so(arrange: Arrange, db: Db) -> None:
    arrange.subscribe(send_to=[arrange.contact("a@example.com")])
    arrange.emit((LOW_REACHED, 1, account_data(1)))

    assert deliver(db) == 1

    [row] = arrange.email_deliveries()
    assert row["status"] == "failed"
    assert row["last_error"] == emails.NO_SMTP_CONNECTION
    assert row["delivered_at"] is None


def test_a_server_down_is_retried_with_backoff_until_up_or_past_give_up_at(
    arrange: Arrange, db: Db
) -> None:
    arrange.smtp(free_port())
    arrange.subscribe(send_to=[arrange.contact("a@example.com"), arrange.contact("b@example.com")])
    arrange.emit((LOW_REACHED, 1, account_data(1)))

    assert deliver(db) == 2
    rows = arrange.email_deliveries()
    for row in rows:
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert row["next_attempt_at"] > row["created_at"]
        assert row["last_error"].startswith("SMTPConnectError: ")
    # the second is past its time to give up: its next failure is its last
    db.execute("UPDATE email_deliveries SET give_up_at = now() WHERE id = $1", rows[1]["id"])
    db.execute("UPDATE email_deliveries SET next_attempt_at = now()")
    assert deliver(db) == 2
    assert [(row["status"], row["attempts"]) for row in arrange.email_deliveries()] == [
        ("pending", 2),
        ("failed", 2),
    ]

    with SmtpServer() as server:
        db.execute("UPDATE smtp_connections SET port = $1", server.port)
        db.execute("UPDATE email_deliveries SET next_attempt_at = now()")
        assert deliver(db) == 1

    assert [mail.rcpt_tos for mail in server.mails] == [["a@example.com"]]
    assert [(row["status"], row["attempts"]) for row in arrange.email_deliveries()] == [
        ("delivered", 3),
        ("failed", 2),
    ]
