"""Webhook deliveries (contract §7), signed per Standard Webhooks (standardwebhooks.com).

Each attempt POSTs the stored body with `content-type: application/json` and the headers
`webhook-id` (the delivery's, the same on every attempt and replay: receivers deduplicate by
it), `webhook-timestamp` (the attempt's time, unix seconds) and `webhook-signature`
(`v1,` + base64 of HMAC-SHA256 over `<id>.<timestamp>.<body>`, keyed with the subscription's
secret). A 2xx answer delivers it; any other status, a refused connection or no answer within
the timeout is a failed attempt, retried with backoff until `give_up_at`. Every attempt is
logged in `webhook_attempts`.

A due delivery is claimed with FOR UPDATE SKIP LOCKED and sent inside the transaction that
holds the lock: no two workers send it at once, and a worker killed mid-send leaves it
pending for the next claim (which sends it again, with the same webhook-id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from accounts_api.db.pool import Connection
from accounts_api.delivery import retries

logger = logging.getLogger("accounts_api.delivery")

USER_AGENT = "accounts-api webhooks"
SUBSCRIPTION_GONE = "its event subscription was deleted: there is no secret to sign with"

_CLAIM = """
SELECT w.id, w.webhook_id, w.url, w.body, w.attempts, s.secret
FROM webhook_deliveries w
LEFT JOIN event_subscriptions s ON s.id = w.event_subscription_id
WHERE w.status = 'pending' AND w.next_attempt_at <= now()
ORDER BY w.next_attempt_at
LIMIT 1
FOR UPDATE OF w SKIP LOCKED
"""
# $2 attempt number, $3 HTTP status, $4 error (NULL: delivered), $5 duration,
# $6 seconds to the next attempt, $7 give up now
_RECORD = """
WITH attempt AS (
    INSERT INTO webhook_attempts
        (webhook_delivery_id, attempt, response_status, error, duration_ms)
    VALUES ($1, $2, $3, $4, $5)
)
UPDATE webhook_deliveries SET
    attempts = $2,
    response_status = $3,
    last_error = $4,
    status = CASE
        WHEN $4::text IS NULL THEN 'delivered'
        WHEN $7 OR clock_timestamp() >= give_up_at THEN 'failed'
        ELSE 'pending'
    END,
    delivered_at = CASE WHEN $4::text IS NULL THEN clock_timestamp() END,
    next_attempt_at = CASE
        WHEN $4::text IS NULL THEN next_attempt_at
        ELSE least(clock_timestamp() + make_interval(secs => $6), give_up_at)
    END
WHERE id = $1
"""


@dataclass(frozen=True)
class Outcome:
    """One attempt: the answer's status (None when none came) and the error (None: 2xx)."""

    response_status: int | None
    error: str | None
    duration_ms: int


async def deliver_one(
    connection: Connection, client: httpx.AsyncClient, timeout: float, retry_base: float
) -> bool:
    """Claims one due webhook and sends it; False when none is due."""
    async with connection.transaction():
        row = await connection.fetchrow(_CLAIM)
        if row is None:
            return False
        if row["secret"] is None:
            outcome, give_up = Outcome(None, SUBSCRIPTION_GONE, 0), True
        else:
            outcome = await post(
                client, row["url"], row["webhook_id"], row["body"], row["secret"], timeout
            )
            give_up = False
        attempt = row["attempts"] + 1
        await connection.execute(
            _RECORD,
            row["id"],
            attempt,
            outcome.response_status,
            outcome.error,
            outcome.duration_ms,
            retries.delay(attempt, retry_base),
            give_up,
        )
    logger.info(
        "webhook %s attempt %d: %s",
        row["webhook_id"],
        attempt,
        outcome.error or f"delivered ({outcome.response_status})",
    )
    return True


async def post(
    client: httpx.AsyncClient, url: str, webhook_id: str, body: str, secret: str, timeout: float
) -> Outcome:
    """One attempt, bounded by `timeout` from the first byte to the answer's status line."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        headers = signed_headers(secret, webhook_id, body, int(time.time()))
        async with (
            asyncio.timeout(timeout),
            client.stream("POST", url, content=body.encode(), headers=headers) as response,
        ):
            # the answer's body is not read: its status is all that counts
            status = response.status_code
    except TimeoutError:
        return Outcome(None, f"no answer within {timeout:g} s", elapsed())
    except Exception as error:  # refused, unreachable, reset, a bad URL or secret: retried
        return Outcome(None, retries.describe(error), elapsed())
    if 200 <= status < 300:
        return Outcome(status, None, elapsed())
    return Outcome(status, f"HTTP {status}", elapsed())


def signed_headers(secret: str, webhook_id: str, body: str, timestamp: int) -> dict[str, str]:
    """Standard Webhooks' headers for `body` sent at `timestamp` (unix seconds)."""
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), body)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
