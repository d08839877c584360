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

A write that refuses only before it has written anything (`write_transaction(...,
refusals_checked=True)`) opens no savepoint in a batch (two round trips less: SAVEPOINT,
RELEASE): a refusal leaves nothing of it behind but row locks the batch takes anyway. Anything
else that fails it (a database error, a bug) may leave part of it in the batch's transaction,
which is then rolled back and run again, that write in a savepoint this time: it fails alone,
as it would have in its savepoint, and the others still commit together, in the same order.
After GUARDED_LIMIT such writes in one batch, each write runs alone instead.

A batch of one is a write alone: the same statements as without batching.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
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


# writes of one batch that may fail without a savepoint before its writes run alone instead
GUARDED_LIMIT = 3


class _RolledBack(Exception):
    """Nothing of the batch committed, and its writes may run again; `guard`: the position of
    a write that failed without a savepoint, to run in one next time."""

    def __init__(self, guard: int | None = None):
        super().__init__()
        self.guard = guard


class _Unguarded(Exception):
    """A write without a savepoint of its own failed: the batch's transaction holds part of it
    and must not commit."""

    def __init__(self, position: int):
        super().__init__()
        self.position = position


class _Batch:
    """What the writes of a batch share, while they run in its transaction."""

    __slots__ = ("guarded", "held", "position", "transaction")

    def __init__(self, transaction: object | None, guarded: frozenset[int]):
        # after_commit's token for the batch's own transaction (not a write's savepoint)
        self.transaction = transaction
        # the row locks its writes took in it outside any savepoint, held until it ends
        self.held: set[Hashable] = set()
        # the positions of the writes that run in a savepoint whatever they promise
        self.guarded = guarded
        # the position of the write running now
        self.position = 0


# set while a batch's writes run in its transaction (their task's context)
_batch: ContextVar[_Batch | None] = ContextVar("group_commit_batch", default=None)


def batched() -> bool:
    """The current write is one of a batch of several (a batch of one is a write alone)."""
    return _batch.get() is not None


def holds(lock: Hashable) -> bool:
    """An earlier write of the batch took this row lock (`took`): the batch's transaction holds
    it, so what is under it changed since only by the batch's own writes, and a statement of
    this write reads it as of now without locking it first."""
    batch = _batch.get()
    return batch is not None and lock in batch.held


def took(lock: Hashable) -> None:
    """The current write took this row lock. Kept for the batch's later writes only when no
    savepoint of the write can give it back (a savepoint rolled back releases its locks): the
    write runs in the batch's transaction itself (`without_savepoint`, not keyed)."""
    batch = _batch.get()
    if batch is not None and after_commit.innermost() is batch.transaction:
        batch.held.add(lock)


@asynccontextmanager
async def without_savepoint(connection: Connection) -> AsyncIterator[None]:
    """A write's transaction inside the batch's, without a savepoint: its refusals pass (the
    caller refuses only before it writes); whatever else fails it makes the batch run again,
    with this write in a savepoint."""
    batch = _batch.get()
    if batch is None or batch.position in batch.guarded:
        async with after_commit.transaction(connection):
            yield
        return
    try:
        async with after_commit.transaction(connection, savepoint=False):
            yield
    except (JsonApiError, ErrorList):
        raise
    except Exception as error:
        raise _Unguarded(batch.position) from error


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
    guarded: set[int] = set()
    try:
        while outcomes is None:
            try:
                async with acquire() as connection:
                    outcomes = await _together(live, connection, write, frozenset(guarded))
            except _RolledBack as rolled_back:
                guard = rolled_back.guard
                if guard is None or guard in guarded or len(guarded) >= GUARDED_LIMIT:
                    raise
                guarded.add(guard)
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
    live: list[Queued[Item]],
    connection: Connection,
    write: Write[Item],
    guarded: frozenset[int],
) -> list[tuple[Queued[Item], Outcome]]:
    outcomes: list[tuple[Queued[Item], Outcome]] = []
    committing = False
    token = _batch.set(None)
    try:
        async with after_commit.transaction(connection):
            batch = _Batch(after_commit.innermost(), guarded)
            _batch.set(batch)
            for position, queued in enumerate(live):
                batch.position = position
                # a write's turn is its place in the batch: past its wait limit, as alone
                if queued.overdue():
                    outcomes.append((queued, LockTimeout()))
                    continue
                try:
                    outcomes.append((queued, await write(queued.item, connection)))
                except _Unguarded as error:
                    raise _RolledBack(error.position) from error
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
        if isinstance(error, _RolledBack):
            raise
        raise _RolledBack() from error
    finally:
        _batch.reset(token)
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
