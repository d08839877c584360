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
# the innermost transaction or savepoint opened here (its callbacks' list stands for it)
_innermost: ContextVar[list[Callback] | None] = ContextVar("after_commit_innermost", default=None)


class OutsideTransaction(RuntimeError):
    """after_commit was called where no engine transaction can tell whether the work commits."""


def innermost() -> object | None:
    """Stands for the innermost transaction or savepoint opened by `transaction` (None outside
    any): the same object as long as no savepoint was opened inside it."""
    return _innermost.get()


def after_commit(callback: Callback) -> None:
    pending = _pending.get()
    if pending is None:
        raise OutsideTransaction("after_commit needs an enclosing after_commit.transaction")
    pending.append(callback)


@asynccontextmanager
async def transaction(connection: Connection, *, savepoint: bool = True) -> AsyncIterator[None]:
    """`connection.transaction()` whose after-commit callbacks run once it commits.

    `savepoint=False`, inside another such transaction: no savepoint, the block is part of the
    enclosing transaction; its callbacks join it when the block ends without an error, and
    when it fails, whatever the block did stays in the enclosing transaction, which its owner
    must then roll back (group_commit.py). Outside any, it opens a transaction as usual."""
    enclosing = _pending.get()
    pending: list[Callback] = []
    token = _pending.set(pending)
    try:
        if savepoint or enclosing is None:
            innermost = _innermost.set(pending)
            try:
                async with connection.transaction():
                    yield
            finally:
                _innermost.reset(innermost)
        else:
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
