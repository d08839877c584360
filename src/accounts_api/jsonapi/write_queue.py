"""Writes to one record take turns inside the worker before they take a database connection,
and those that queued up while the record was busy are done together (issue 10).

Without a queue, writers queued on one locked row each hold a pooled connection while they
wait for the row lock, and thirty of them starve every other request of connections. Here the
writers of one record wait holding nothing but a coroutine, for at most the wait limit (then
409, as a lock wait in the database), while one task per busy record, its runner, takes them
in arrival order: all that are waiting (up to `batch_limit`) form the next batch, which the
engine does on one connection in one transaction (group_commit.py). A writer that finds the
record idle is a batch of one.

A resource names the record a write will lock (`Resource.write_queue`); writes of other
records, and reads, pass straight through. Correctness still rests on the database's row
locks: this only decides who waits where, and which writes share a commit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from starlette.responses import Response

from accounts_api.jsonapi.errors import LockTimeout

Item = TypeVar("Item")
# the writes of one record that wait together (a concurrent PostgreSQL commit takes a few
# milliseconds; more than this many at once only makes the last ones wait longer)
BATCH_LIMIT = 64


class Queued(Generic[Item]):
    """One waiting write: what it is, until when it may wait for its turn, and its answer (a
    response, or the exception the request raises)."""

    __slots__ = ("answer", "deadline", "item", "taken")

    def __init__(self, item: Item, deadline: float):
        self.item = item
        self.deadline = deadline
        self.answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        # in a batch: from here on its answer comes from the runner, whatever the time
        self.taken = False

    def overdue(self) -> bool:
        """Its turn came too late: it is answered as a lock wait past the timeout."""
        return time.monotonic() > self.deadline

    def settle(self, outcome: Response | BaseException) -> None:
        if self.answer.done():  # its request went away (cancelled)
            return
        if isinstance(outcome, BaseException):
            self.answer.set_exception(outcome)
        else:
            self.answer.set_result(outcome)


# Does a batch: must settle every write it is given.
Batch = Callable[[list[Queued[Item]]], Awaitable[None]]


class WriteQueues(Generic[Item]):
    def __init__(self, wait_limit: float, batch_limit: int = BATCH_LIMIT):
        self.wait_limit = wait_limit
        self.batch_limit = batch_limit
        # key -> the writes waiting for the record's runner
        self._queues: dict[str, deque[Queued[Item]]] = {}
        self._runners: set[asyncio.Task[None]] = set()

    async def write(self, key: str, item: Item, run: Batch[Item]) -> Response:
        """`item`'s answer once its batch (done by `run`) has committed or failed."""
        queued = Queued(item, time.monotonic() + self.wait_limit)
        waiting = self._queues.get(key)
        if waiting is None:
            waiting = self._queues[key] = deque()
            runner = asyncio.create_task(self._drain(key, waiting, run))
            self._runners.add(runner)
            runner.add_done_callback(self._runners.discard)
        waiting.append(queued)
        try:
            done, _ = await asyncio.wait((queued.answer,), timeout=self.wait_limit)
            if not done and not queued.taken:
                waiting.remove(queued)
                raise LockTimeout()
            return await queued.answer
        except asyncio.CancelledError:
            if not queued.taken:
                waiting.remove(queued)
            queued.answer.cancel()
            raise

    async def _drain(self, key: str, waiting: deque[Queued[Item]], run: Batch[Item]) -> None:
        """The record's runner: batches of the waiting writes, until none waits."""
        try:
            while waiting:
                batch: list[Queued[Item]] = []
                while waiting and len(batch) < self.batch_limit:
                    queued = waiting.popleft()
                    queued.taken = True
                    batch.append(queued)
                try:
                    await run(batch)
                except BaseException as error:
                    # `run` answers every write; should it fail itself, none may hang
                    for queued in batch:
                        if isinstance(error, Exception):
                            queued.settle(error)
                        else:
                            queued.answer.cancel()
                    if not isinstance(error, Exception):
                        raise
        finally:
            # no await since the loop saw `waiting` empty: no writer joined it meanwhile
            del self._queues[key]
            for queued in waiting:
                queued.answer.cancel()

    async def close(self) -> None:
        """Cancels the runners and waits for them to end: at shutdown, once the requests in
        flight have had their time. A runner is a task of its own, not a request's, so the
        server's cancellation of the requests past that time does not reach it, and its batch
        would hold its connection (and the pool's close) until its statement ended."""
        runners = list(self._runners)
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)

    def __len__(self) -> int:
        """Records with writers being done or waiting for their turn."""
        return len(self._queues)
