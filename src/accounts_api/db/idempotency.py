"""Storage of idempotency keys: one row per (admin, key), claimed before the request runs
(committed at once, so a concurrent duplicate sees it) and completed with the response."""

from __future__ import annotations

from dataclasses import dataclass

from accounts_api.db.pool import Connection

_FORGET_EXPIRED = """
DELETE FROM idempotency_keys
WHERE expires_at <= now()
  AND ((admin_id = $1 AND key = $2)
       OR ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys
                            WHERE expires_at <= now() LIMIT 20)))
"""

_CLAIM = """
INSERT INTO idempotency_keys (admin_id, key, fingerprint, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (admin_id, key) DO NOTHING
RETURNING true
"""

_STORED = """
SELECT fingerprint, status, headers, body, committed_at IS NOT NULL AS committed
FROM idempotency_keys
WHERE admin_id = $1 AND key = $2 AND expires_at > now()
"""


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    # None while the first request is still running
    status: int | None
    headers: dict[str, str] | None
    body: bytes | None
    # the first request's write committed (its answer may still be missing)
    committed: bool


async def claim(
    connection: Connection, admin_id: int, key: str, fingerprint: str, ttl: int
) -> Stored | None:
    """None when the key is now ours; otherwise what the key already holds."""
    for _ in range(2):
        await connection.execute(_FORGET_EXPIRED, admin_id, key)
        if await connection.fetchval(_CLAIM, admin_id, key, fingerprint, float(ttl)):
            return None
        row = await connection.fetchrow(_STORED, admin_id, key)
        if row is not None:
            return Stored(
                row["fingerprint"], row["status"], row["headers"], row["body"], row["committed"]
            )
        # it expired or was released between the two statements: claim again
    raise RuntimeError("idempotency key could not be claimed")


async def mark_committed(connection: Connection, admin_id: int, key: str) -> None:
    """Inside the write's own transaction: the key then says the effect happened, whatever
    becomes of the answer (a crash before `complete` leaves no doubt about the money)."""
    await connection.execute(
        "UPDATE idempotency_keys SET committed_at = now() WHERE admin_id = $1 AND key = $2",
        admin_id,
        key,
    )


async def complete(
    connection: Connection,
    admin_id: int,
    key: str,
    status: int,
    headers: dict[str, str],
    body: bytes,
) -> None:
    await connection.execute(
        "UPDATE idempotency_keys SET status = $3, headers = $4, body = $5"
        " WHERE admin_id = $1 AND key = $2",
        admin_id,
        key,
        status,
        headers,
        body,
    )


async def release(connection: Connection, admin_id: int, key: str) -> None:
    """The request failed unexpectedly: nothing was done, a retry may run it."""
    await connection.execute(
        "DELETE FROM idempotency_keys WHERE admin_id = $1 AND key = $2", admin_id, key
    )
