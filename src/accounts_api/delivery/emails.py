"""E-mail deliveries (contract §7): one message per recipient, sent with aiosmtplib through
the SMTP connection of the contact's contractor, else the global one (the lowest id).

How the SMTP connection is spoken to (Yeti's rows say no more than host, port and
credentials): plain SMTP on its port, upgraded with STARTTLS when the server offers it
(certificates verified); port 465 speaks TLS from the start. It logs in only when it has a
user. With no SMTP connection at all the delivery fails at once, saying so.

A due delivery is claimed with FOR UPDATE SKIP LOCKED and sent inside the transaction that
holds the lock, so no two workers send it at once and a worker killed mid-send leaves it
pending. A failed send is retried with backoff until `give_up_at`, then marked failed.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
import asyncpg

from accounts_api.db.pool import Connection
from accounts_api.delivery import retries

logger = logging.getLogger("accounts_api.delivery")

IMPLICIT_TLS_PORT = 465
NO_SMTP_CONNECTION = (
    "no SMTP connection: the contact's contractor has none and none is global"
    " (POST /api/rest/admin/smtp-connections)"
)

_CLAIM = """
SELECT d.id, d.to_address, d.subject, d.body, d.attempts,
       m.host, m.port, m.from_address, m.auth_user, m.auth_password
FROM email_deliveries d
LEFT JOIN contacts k ON k.id = d.contact_id
LEFT JOIN contractors c ON c.id = k.contractor_id
LEFT JOIN smtp_connections m ON m.id = COALESCE(
    c.smtp_connection_id,
    (SELECT g.id FROM smtp_connections g WHERE g.global ORDER BY g.id LIMIT 1)
)
WHERE d.status = 'pending' AND d.next_attempt_at <= now()
ORDER BY d.next_attempt_at
LIMIT 1
FOR UPDATE OF d SKIP LOCKED
"""
# $2: the error, NULL when sent; $3: seconds to the next attempt; $4: give up now
_RECORD = """
UPDATE email_deliveries SET
    attempts = attempts + 1,
    last_error = $2,
    status = CASE
        WHEN $2::text IS NULL THEN 'delivered'
        WHEN $4 OR clock_timestamp() >= give_up_at THEN 'failed'
        ELSE 'pending'
    END,
    delivered_at = CASE WHEN $2::text IS NULL THEN clock_timestamp() END,
    next_attempt_at = CASE
        WHEN $2::text IS NULL THEN next_attempt_at
        ELSE least(clock_timestamp() + make_interval(secs => $3), give_up_at)
    END
WHERE id = $1
"""


async def deliver_one(connection: Connection, timeout: float, retry_base: float) -> bool:
    """Claims one due e-mail and sends it; False when none is due."""
    async with connection.transaction():
        row = await connection.fetchrow(_CLAIM)
        if row is None:
            return False
        error: str | None = NO_SMTP_CONNECTION
        give_up = row["host"] is None
        if not give_up:
            error = await send(row, timeout)
        delay = retries.delay(row["attempts"] + 1, retry_base)
        await connection.execute(_RECORD, row["id"], error, delay, give_up)
    logger.info("e-mail %d attempt %d: %s", row["id"], row["attempts"] + 1, error or "delivered")
    return True


async def send(delivery: asyncpg.Record, timeout: float) -> str | None:
    """Sends one message; the error, or None when the server took it."""
    user = delivery["auth_user"] or None
    implicit_tls = delivery["port"] == IMPLICIT_TLS_PORT
    try:
        message = compose(
            delivery["from_address"], delivery["to_address"], delivery["subject"], delivery["body"]
        )
        async with asyncio.timeout(timeout):
            await aiosmtplib.send(
                message,
                hostname=delivery["host"],
                port=delivery["port"],
                username=user,
                password=delivery["auth_password"] if user else None,
                use_tls=implicit_tls,
                # None: STARTTLS when the server offers it
                start_tls=False if implicit_tls else None,
                timeout=timeout,
            )
    except TimeoutError:
        return f"the SMTP server did not finish within {timeout:g} s"
    except Exception as error:  # refused, unreachable, rejected, a bad address: retried
        return retries.describe(error)
    return None


def compose(from_address: str, to_address: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = to_address
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # the sender's domain: make_msgid's default asks DNS for this host's name on every call
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or "localhost")
    message.set_content(body)
    return message
