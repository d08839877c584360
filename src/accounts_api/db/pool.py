"""The asyncpg connection pool, with the codecs the app relies on."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

# A connection as handlers see it: a plain one or one borrowed from the pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


async def _init_connection(connection: Connection) -> None:
    await connection.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_encode_json, decoder=msgspec.json.decode
    )


def _encode_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def create_pool(database_url: str, size: int) -> asyncpg.Pool[asyncpg.Record]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=size, init=_init_connection)
    assert pool is not None
    return pool
