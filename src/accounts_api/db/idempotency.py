"""Storage of idempotency keys: one row per (admin, key), written in the keyed write's own
transaction together with the answer, so a key exists exactly when its write committed.

A second request with the same key blocks on the first's uncommitted row (the primary key's
unique check waits for the other transaction), then sees the stored answer once the first
commits, or claims the key itself if the first rolled back or its process died.
"""

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

# The answer is filled in by `complete` before the transaction commits; the placeholder
# status is never seen outside it.
_CLAIM = """
INSERT INTO idempotency_keys (admin_id, key, fingerprint, status, expires_at)
VALUES ($1, $2, $3, 0, now() + make_interval(secs => $4))
ON CONFLICT (admin_id, key) DO NOTHING
RETURNING true
"""

_STORED = """
SELECT fingerprint, status, headers, body
FROM idempotency_keys
WHERE admin_id = $1 AND key = $2 AND expires_at > now()
"""


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    status: int
    headers: dict[str, str] | None
    body: bytes | None


async def claim(
    connection: Connection, admin_id: int, key: str, fingerprint: str, ttl: int
) -> Stored | None:
    """Inside the write's transaction: None when the key is now ours; otherwise what the key
    holds. Waits (up to the lock timeout) while another transaction holds the same key."""
    await connection.execute(_FORGET_EXPIRED, admin_id, key)
    if await connection.fetchval(_CLAIM, admin_id, key, fingerprint, float(ttl)):
        return None
    row = await connection.fetchrow(_STORED, admin_id, key)
    if row is None:
        # expired between the two statements (its owner's transaction is long gone)
        raise RuntimeError("idempotency key expired while being claimed")
    return Stored(row["fingerprint"], row["status"], row["headers"], row["body"])


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
