"""Login throttling's counts (auth/throttle.py, issue 6); its HTTP behaviour is tested in
tests/api/test_auth.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from tests.conftest import Db, run

from accounts_api.auth import throttle
from accounts_api.auth.errors import TooManyFailures

LIMITS = throttle.Limits(max_failures=10, window=900)


@pytest.fixture
def empty_throttle(db: Db) -> Iterator[None]:
    db.execute("DELETE FROM login_throttle")
    yield
    db.execute("DELETE FROM login_throttle")


async def concurrent_attempts(url: str, count: int) -> list[throttle.Attempt | BaseException]:
    """`count` attempts on one username from as many addresses, each on its own connection."""
    connections = [await asyncpg.connect(url) for _ in range(count)]
    try:
        return await asyncio.gather(
            *(
                throttle.attempt(connection, LIMITS, "victim", f"198.51.100.{number}")
                for number, connection in enumerate(connections)
            ),
            return_exceptions=True,
        )
    finally:
        for connection in connections:
            await connection.close()


def test_concurrent_guesses_never_pass_the_limit(
    database_url: str, db: Db, empty_throttle: None
) -> None:
    results = run(concurrent_attempts(database_url, 3 * LIMITS.max_failures))

    counted = [result for result in results if isinstance(result, throttle.Attempt)]
    refused = [result for result in results if isinstance(result, TooManyFailures)]
    assert len(counted) == LIMITS.max_failures
    assert len(counted) + len(refused) == len(results)


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:0:1:aaaa::1", "2001:db8:0:1::/64"),
        ("2001:DB8:0:1::2", "2001:db8:0:1::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("", ""),
        ("testclient", "testclient"),
    ],
)
def test_address_keys(ip: str, key: str) -> None:
    assert throttle.address_key(ip) == key
