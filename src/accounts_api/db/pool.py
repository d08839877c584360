"""The asyncpg connection pool, with the codecs the app relies on."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_encode_json, decoder=msgspec.json.decode
    )


def _encode_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def create_pool(database_url: str, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=size, init=_init_connection)
    assert pool is not None
    return pool
