"""Writes to one record take turns inside the worker before they take a database connection.

Without this, writers queued on one locked row each hold a pooled connection while they
wait for the row lock, and thirty of them starve every other request of connections. With
it, one writer per record waits on the database; the others wait here, holding nothing but
a coroutine, for at most the lock timeout (then 409, as a lock wait in the database).

A resource names the record a write will lock (`Resource.write_queue`); writes of other
records, and reads, pass straight through. Correctness still rests on the database's row
locks: this only decides who waits where.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from accounts_api.jsonapi.errors import LockTimeout


class WriteQueues:
    def __init__(self, wait_limit: float):
        self.wait_limit = wait_limit
        # key -> (its lock, how many requests hold or wait for it)
        self._queues: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def turn(self, key: str | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        lock, users = self._queues.get(key) or (asyncio.Lock(), 0)
        self._queues[key] = (lock, users + 1)
        try:
            try:
                async with asyncio.timeout(self.wait_limit):
                    await lock.acquire()
            except TimeoutError:
                raise LockTimeout() from None
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._queues[key]
            if users == 1:
                del self._queues[key]
            else:
                self._queues[key] = (lock, users - 1)

    def __len__(self) -> int:
        """Records with writers holding or waiting for their turn."""
        return len(self._queues)
