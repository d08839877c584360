"""Group commit (issue 10): the writes of one record that queued up together (write_queue.py)
are done in arrival order on one connection, in one transaction, and commit once.

Each write runs exactly as it would alone: its own transaction (`write_transaction`, and the
keyed one of an Idempotency-Key) opens inside the batch's transaction, so asyncpg makes it a
SAVEPOINT. A write that fails rolls back to its savepoint and keeps its own answer; the others
go on, and each sees the state the writes before it left (If-Match included): the batch is the
serial order of arrival. Its after-commit work joins the batch's and runs once the batch has
committed (db/after_commit.py); a savepoint rolled back drops its share.

No answer leaves before the commit. When the batch cannot commit, nothing of it did, and each
write runs again alone, so that each gets the answer it would have had unbatched:
- the commit is refused (a deferred constraint, a serialization failure);
- an error escaped a write's savepoints (a statement timeout while it authenticated or read
  its answer), which left the transaction aborted: a COMMIT would silently roll back.
When the connection is lost at the commit, whether it committed is unknown: every write of the
batch is answered with that error, as each would be alone (503); idempotency keys keep their
retries safe.

A batch of one is a write alone: the same statements as without batching.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import asyncpg
from starlette.responses import Response

from accounts_api.db import after_commit
from accounts_api.db.pool import Connection
from accounts_api.jsonapi.errors import ErrorList, JsonApiError, LockTimeout
from accounts_api.jsonapi.write_queue import Queued

Item = TypeVar("Item")
# does one write on a connection, opening its own transaction; its answer or its exception
Write = Callable[[Item, Connection], Awaitable[Response]]
Acquire = Callable[[], AbstractAsyncContextManager[Connection]]
Outcome = Response | Exception


class _RolledBack(Exception):
    """Nothing of the batch committed, and its writes may run again."""


async def run(batch: list[Queued[Item]], acquire: Acquire, write: Write[Item]) -> None:
    """Does the batch and settles every write's answer."""
    live: list[Queued[Item]] = []
    for queued in batch:
        if queued.answer.done():  # its request went away while it waited
            continue
        if queued.overdue():
            queued.settle(LockTimeout())
        else:
            live.append(queued)
    if len(live) == 1:
        await _alone(live[0], acquire, write)
        return
    if not live:
        return
    outcomes: list[tuple[Queued[Item], Outcome]] | None = None
    try:
        async with acquire() as connection:
            outcomes = await _together(live, connection, write)
    except _RolledBack:
        for queued in live:
            await _alone(queued, acquire, write)
        return
    except Exception as error:
        if outcomes is None:  # no connection, or lost at the commit: unknown outcome
            for queued in live:
                queued.settle(error)
            return
        # committed; only giving the connection back failed (the pool replaces it)
    assert outcomes is not None
    for queued, outcome in outcomes:
        queued.settle(outcome)


async def _alone(queued: Queued[Item], acquire: Acquire, write: Write[Item]) -> None:
    outcome: Outcome
    try:
        async with acquire() as connection:
            outcome = await write(queued.item, connection)
    except Exception as error:
        outcome = error
    queued.settle(outcome)


async def _together(
    live: list[Queued[Item]], connection: Connection, write: Write[Item]
) -> list[tuple[Queued[Item], Outcome]]:
    outcomes: list[tuple[Queued[Item], Outcome]] = []
    committing = False
    try:
        async with after_commit.transaction(connection):
            for queued in live:
                # a write's turn is its place in the batch: past its wait limit, as alone
                if queued.overdue():
                    outcomes.append((queued, LockTimeout()))
                    continue
                try:
                    outcomes.append((queued, await write(queued.item, connection)))
                except (JsonApiError, ErrorList) as refused:
                    # refused before it wrote, or inside its savepoint, rolled back
                    outcomes.append((queued, refused))
                except Exception as error:
                    if not await _usable(connection):
                        raise _RolledBack() from error
                    # raised in its savepoint (a lock timeout, a deadlock past its retries)
                    outcomes.append((queued, error))
            if not await _usable(connection):
                raise _RolledBack()
            committing = True
    except Exception as error:
        if committing and not _refused_by_server(error, connection):
            raise
        raise _RolledBack() from error
    return outcomes


async def _usable(connection: Connection) -> bool:
    """The batch's transaction can go on: no error aborted it outside a savepoint (a COMMIT
    would then roll it all back without an error)."""
    if connection.is_closed():
        return False
    try:
        await connection.execute("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        return False
    return True


def _refused_by_server(error: Exception, connection: Connection) -> bool:
    """The COMMIT failed with the server's answer: the transaction was rolled back."""
    return (
        isinstance(error, asyncpg.PostgresError)
        and not isinstance(error, asyncpg.PostgresConnectionError)
        and not connection.is_closed()
    )
