"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106's recommendation), and
the cap on checks running at once (issue 6)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool

from accounts_api.auth.errors import Overloaded

_hasher = PasswordHasher()
# verified against when the user does not exist, so both paths cost the same time
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class PasswordChecks:
    """Checks run in threads, off the event loop, at most `concurrency` at once per worker: each
    takes 64 MiB, so memory, not CPU, is what an unbounded burst exhausts (200 concurrent logins
    took a worker past 4 GB). At most `queue` more logins wait for a check; beyond, a login is
    refused (503) rather than left to wait longer than its client will."""

    def __init__(self, concurrency: int, queue: int):
        self._running = asyncio.Semaphore(concurrency)
        self._capacity = concurrency + queue
        self._admitted = 0

    @contextmanager
    def place(self) -> Iterator[None]:
        """A login's place, from before its first await to its answer, so that the count is
        right without a lock (the event loop runs one coroutine at a time)."""
        if self._admitted >= self._capacity:
            raise Overloaded()
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def verify(self, password_hash: str | None, password: str) -> bool:
        async with self._running:
            # the thread cannot be cancelled: the slot stays taken until argon2 returns
            return await run_in_threadpool(verify_password, password_hash, password)
