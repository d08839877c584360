"""The asyncpg connection pool, with the codecs the app relies on and the time bounds every
database interaction has (contract-free: issue 6)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

# A connection as handlers see it: a plain one or one borrowed from the pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# Told how a pool's maximum, open and borrowed connections changed (issue 9: the metrics'
# gauges; the app passes metrics.pool_changed, so this module does not import the metrics).
PoolWatch: TypeAlias = Callable[[int, int, int], None]

# a client-side bound past the server's statement_timeout, for a connection that went silent
COMMAND_TIMEOUT_MARGIN = 5.0


class DatabaseUnavailable(Exception):
    """No connection could be had in time: the database is down, refusing, or every pooled
    connection is busy."""


async def _init_connection(connection: Connection) -> None:
    await connection.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_encode_json, decoder=msgspec.json.decode
    )


def _encode_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def _keep_session(connection: Connection) -> None:
    """The pool's reset on release (issue 10): nothing to send. asyncpg's default sends
    `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`, one more round trip per
    request, for session state this service never leaves on a pooled connection: no advisory
    locks, cursors, LISTEN or SET there (settings are given at connect, `server_settings`).
    A transaction left open is still rolled back by asyncpg before this is called; LISTEN
    lives on connections of their own (auth/admin_cache.py, delivery/)."""


class Database:
    """The pool as the app uses it: a connection within `acquire_timeout`, else
    DatabaseUnavailable, never an endless wait."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        acquire_timeout: float,
        watch: PoolWatch | None = None,
    ):
        self.pool = pool
        self.acquire_timeout = acquire_timeout
        self.watch = watch
        # the open connections last reported: asyncpg opens and closes them on its own, so
        # the count is brought up to date at every borrow and return
        self._open = 0
        if watch is not None:
            watch(pool.get_max_size(), 0, 0)

    def _report(self, in_use: int) -> None:
        if self.watch is not None:
            size = self.pool.get_size()
            self.watch(0, size - self._open, in_use)
            self._open = size

    async def close(self) -> None:
        try:
            await self.pool.close()
        finally:
            if self.watch is not None:
                self.watch(-self.pool.get_max_size(), -self._open, 0)
                self._open = 0

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        try:
            connection = await self.pool.acquire(timeout=self.acquire_timeout)
        except TimeoutError:
            raise DatabaseUnavailable("no database connection became free in time") from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise DatabaseUnavailable(f"cannot connect to the database: {error}") from None
        self._report(1)
        try:
            yield connection
        finally:
            try:
                await self.pool.release(connection)
            finally:
                self._report(-1)


async def create_pool(
    database_url: str,
    size: int,
    session_settings: Mapping[str, str] | None = None,
    statement_timeout: float | None = None,
) -> asyncpg.Pool[asyncpg.Record]:
    # no connection is opened here: the service starts (and says it is not ready) while
    # the database is down, and connects once it is back
    pool = await asyncpg.create_pool(
        database_url,
        min_size=0,
        max_size=size,
        init=_init_connection,
        reset=_keep_session,
        server_settings=dict(session_settings or {}),
        command_timeout=(
            statement_timeout + COMMAND_TIMEOUT_MARGIN if statement_timeout is not None else None
        ),
    )
    assert pool is not None
    return pool


async def connect(
    database_url: str,
    session_settings: Mapping[str, str] | None = None,
    statement_timeout: float | None = None,
    connect_timeout: float = 60.0,
) -> asyncpg.Connection[asyncpg.Record]:
    """A connection of its own, outside any pool (the delivery workers'), with the pool's
    codecs and time bounds."""
    connection: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
        database_url,
        timeout=connect_timeout,
        server_settings=dict(session_settings or {}),
        command_timeout=(
            statement_timeout + COMMAND_TIMEOUT_MARGIN if statement_timeout is not None else None
        ),
    )
    try:
        await _init_connection(connection)
    except BaseException:
        connection.terminate()
        raise
    return connection
