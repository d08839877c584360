"""Work that may happen only once a write has committed (issue 9: metrics count the money moves
that happened, not those that were tried).

A writer calls `after_commit(callback)` inside a write. The engine opens its transactions with
`transaction(connection)`, which keeps the callbacks registered inside it in a context variable:
- its block fails (rollback, or a savepoint rolled back): they are dropped;
- it is a savepoint inside another such transaction (a keyed write, idempotency.py): they
  join the enclosing one, which decides;
- it is the outermost one and committed: they run, in order.

A context variable, not an argument, so that the writers' signatures stay the engine's: the
request's task runs the handler, its transactions and the writer in one context.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

from accounts_api.db.pool import Connection

logger = logging.getLogger(__name__)

Callback = Callable[[], None]

_pending: ContextVar[list[Callback] | None] = ContextVar("after_commit", default=None)


class OutsideTransaction(RuntimeError):
    """after_commit was called where no engine transaction can tell whether the work commits."""


def after_commit(callback: Callback) -> None:
    pending = _pending.get()
    if pending is None:
        raise OutsideTransaction("after_commit needs an enclosing after_commit.transaction")
    pending.append(callback)


@asynccontextmanager
async def transaction(connection: Connection) -> AsyncIterator[None]:
    """`connection.transaction()` whose after-commit callbacks run once it commits."""
    enclosing = _pending.get()
    pending: list[Callback] = []
    token = _pending.set(pending)
    try:
        async with connection.transaction():
            yield
    finally:
        _pending.reset(token)
    if enclosing is not None:
        enclosing.extend(pending)
        return
    for callback in pending:
        try:
            callback()
        except Exception:
            # the write committed: its answer must say so whatever a callback does
            logger.exception("after-commit callback failed")
