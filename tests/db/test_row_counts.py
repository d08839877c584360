"""The count of accounts kept by triggers (migration 0006): exact under concurrent creates,
deletes and rollbacks, as `count(*)` read in the same snapshot.

Runs on a scratch database of its own: it truncates accounts.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import asyncpg
import pytest
from tests.conftest import run, scratch_database

from accounts_api.db import migrate

COUNTED = "SELECT sum(count)::bigint FROM row_counts WHERE table_name = 'accounts'"
# one statement, one snapshot: the counter and the rows it counts, side by side
BOTH = f"SELECT ({COUNTED}), (SELECT count(*) FROM accounts)"
WRITERS = 12
TRANSACTIONS = 25


@pytest.fixture(scope="module")
def url(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "accounts_api_scratch_row_counts") as scratch:
        migrate.upgrade(scratch)
        yield scratch


async def _contractor(connection: asyncpg.Connection) -> int:
    contractor: int = await connection.fetchval(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('c-' || gen_random_uuid(), true, true, true) RETURNING id"
    )
    return contractor


async def _writer(url: str, contractor: int, seed: int, stop: asyncio.Event) -> int:
    """Creates 1-3 accounts per transaction, sometimes deletes one it made earlier, and rolls
    back about one transaction in four; returns how many accounts it left."""
    chance = random.Random(seed)
    connection = await asyncpg.connect(url)
    mine: list[int] = []
    try:
        for number in range(TRANSACTIONS):
            transaction = connection.transaction()
            await transaction.start()
            made = await connection.fetch(
                "INSERT INTO accounts (name, contractor_id, currency_id, currency_name)"
                " SELECT $1 || '-' || g, $2, 0, 'USD' FROM generate_series(1, $3) g"
                " RETURNING id",
                f"w{seed}-{number}",
                contractor,
                chance.randint(1, 3),
            )
            gone = mine[-1:] if mine and chance.random() < 0.3 else []
            if gone:
                await connection.execute("DELETE FROM accounts WHERE id = $1", gone[0])
            await asyncio.sleep(chance.random() / 200)  # hold the slot while others run
            if chance.random() < 0.25:
                await transaction.rollback()
                continue
            await transaction.commit()
            mine = [id for id in mine if id not in gone] + [row[0] for row in made]
        return len(mine)
    finally:
        stop.set()
        await connection.close()


async def _concurrently(url: str) -> tuple[int, list[tuple[int, int]], int, int]:
    setup = await asyncpg.connect(url)
    try:
        await setup.execute("TRUNCATE accounts CASCADE")
        contractor = await _contractor(setup)
        stops = [asyncio.Event() for _ in range(WRITERS)]
        writers = [
            asyncio.create_task(_writer(url, contractor, seed, stop))
            for seed, stop in enumerate(stops)
        ]
        # meanwhile, a reader compares the counter with count(*), snapshot by snapshot
        readings: list[tuple[int, int]] = []
        while not all(stop.is_set() for stop in stops):
            row = await setup.fetchrow(BOTH)
            assert row is not None
            readings.append((row[0], row[1]))
            await asyncio.sleep(0.002)
        left = sum(await asyncio.gather(*writers))
        slots = await setup.fetchval(
            "SELECT count(*) FROM row_counts WHERE table_name = 'accounts' AND count <> 0"
        )
        final = await setup.fetchrow(BOTH)
        assert final is not None
        return left, readings, slots, final[0]
    finally:
        await setup.close()


def test_the_count_is_exact_under_concurrent_creates_deletes_and_rollbacks(url: str) -> None:
    left, readings, slots, counted = run(_concurrently(url))
    assert left > 0
    assert counted == left
    assert readings
    assert all(counter == rows for counter, rows in readings), readings
    # the writers spread over the slots instead of queueing on one row
    assert slots > 1


async def _bulk(url: str) -> list[int]:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("TRUNCATE accounts CASCADE")
        seen = [await connection.fetchval(COUNTED)]
        contractor = await _contractor(connection)
        records = [(f"bulk-{n}", contractor, 0, "USD") for n in range(1000)]
        await connection.copy_records_to_table(
            "accounts",
            records=records,
            columns=["name", "contractor_id", "currency_id", "currency_name"],
        )
        seen.append(await connection.fetchval(COUNTED))
        await connection.execute("DELETE FROM accounts WHERE name LIKE 'bulk-1%'")
        seen.append(await connection.fetchval(COUNTED))
        await connection.execute("DELETE FROM accounts WHERE false")
        seen.append(await connection.fetchval(COUNTED))
        await connection.execute("TRUNCATE accounts CASCADE")
        seen.append(await connection.fetchval(COUNTED))
        return seen
    finally:
        await connection.close()


def test_copy_delete_and_truncate_are_counted(url: str) -> None:
    # 1000 copied; `bulk-1%` is 1, 10-19, 100-199: 111 deleted
    assert run(_bulk(url)) == [0, 1000, 889, 889, 0]
