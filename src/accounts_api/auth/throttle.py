"""Login throttling (issue 6): failed logins counted per username and per client address in a
fixed window, in PostgreSQL (`login_throttle`), so every worker and instance shares the counts.

An attempt is counted as a failure before its password is checked and given back when the
password was right: concurrent guesses cannot all pass a check made before any of them failed,
and past the limit no attempt reaches argon2. A success resets its username's count; the
address keeps its failures (several users behind one address do not forgive each other's).
Rows whose window ended are purged a few at a time as logins come, so made-up usernames cannot
grow the table.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from accounts_api.auth.errors import TooManyFailures
from accounts_api.db.pool import Connection

# admin_users.username is varchar(255): a longer name is no admin's, and a key this long
# stays far below the limit of a btree index entry
_KEY_LENGTH = 255

_FORGET_ENDED = """
DELETE FROM login_throttle
WHERE ctid = ANY (ARRAY(SELECT ctid FROM login_throttle
                        WHERE window_started_at <= now() - make_interval(secs => $1)
                        LIMIT 20 FOR UPDATE SKIP LOCKED))
  AND window_started_at <= now() - make_interval(secs => $1)
"""

# read-only, so that an attacker past the limit costs no writes; the scope that keeps the
# client waiting longest (the username's on a tie) is the one that refused it
_RETRY_AFTER = """
SELECT scope,
       ceil(extract(epoch FROM window_started_at + make_interval(secs => $3) - now()))::integer
           AS seconds_left
FROM login_throttle
WHERE ((scope = 'username' AND key = $1) OR (scope = 'address' AND key = $2))
  AND failures >= $4
  AND window_started_at > now() - make_interval(secs => $3)
ORDER BY seconds_left DESC, scope DESC
LIMIT 1
"""

# the username's row first, always: two attempts lock their rows in the same order
_COUNT = """
INSERT INTO login_throttle AS t (scope, key, failures, window_started_at)
VALUES ('username', $1, 1, now()), ('address', $2, 1, now())
ON CONFLICT (scope, key) DO UPDATE SET
    failures = CASE WHEN t.window_started_at > now() - make_interval(secs => $3)
                    THEN t.failures + 1 ELSE 1 END,
    window_started_at = CASE WHEN t.window_started_at > now() - make_interval(secs => $3)
                             THEN t.window_started_at ELSE now() END
RETURNING scope, failures, window_started_at,
    ceil(extract(epoch FROM t.window_started_at + make_interval(secs => $3) - now()))::integer
        AS seconds_left
"""

_GIVE_BACK = """
WITH reset AS (
    DELETE FROM login_throttle WHERE scope = 'username' AND key = $1
), last AS (
    DELETE FROM login_throttle
    WHERE scope = 'address' AND key = $2 AND window_started_at = $3 AND failures = 1
)
UPDATE login_throttle SET failures = failures - 1
WHERE scope = 'address' AND key = $2 AND window_started_at = $3 AND failures > 1
"""


@dataclass(frozen=True)
class Limits:
    max_failures: int
    # seconds
    window: int


@dataclass(frozen=True)
class Attempt:
    """A login counted as a failure until `succeeded` gives it back."""

    username_key: str
    address_key: str
    address_window: datetime


def address_key(ip: str) -> str:
    """IPv6 clients by their /64, the block one host usually gets; IPv4 by address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:_KEY_LENGTH]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


async def attempt(connection: Connection, limits: Limits, username: str, ip: str) -> Attempt:
    """Count the attempt as a failure, or raise TooManyFailures when the username or the
    address has reached the limit; then no password may be checked."""
    user, address = username[:_KEY_LENGTH], address_key(ip)
    window = float(limits.window)
    limited = await connection.fetchrow(_RETRY_AFTER, user, address, window, limits.max_failures)
    if limited is not None:
        raise TooManyFailures(max(limited["seconds_left"], 1), limited["scope"])
    await connection.execute(_FORGET_ENDED, window)
    rows = await connection.fetch(_COUNT, user, address, window)
    # another attempt may have counted since the check: the last ones past the limit lose
    over = [row for row in rows if row["failures"] > limits.max_failures]
    if over:
        longest = max(over, key=lambda row: row["seconds_left"])
        raise TooManyFailures(max(longest["seconds_left"], 1), longest["scope"])
    address_window = next(row["window_started_at"] for row in rows if row["scope"] == "address")
    return Attempt(user, address, address_window)


async def succeeded(connection: Connection, counted: Attempt) -> None:
    """The password was right: the username starts afresh and the address gets its attempt back
    (unless its window has ended since)."""
    await connection.execute(
        _GIVE_BACK, counted.username_key, counted.address_key, counted.address_window
    )
