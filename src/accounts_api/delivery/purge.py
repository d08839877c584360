"""Purge: notification logs older than ACCOUNTS_API_NOTIFICATION_LOG_DAYS (contract §7: Yeti
deletes balance notifications after `keep_balance_notifications_days`).

- `balance_notifications` rows older than that;
- dispatched `outbox` rows older than that whose deliveries are all finished, none of them
  delivered within that time (a replayed one); their deliveries and webhook attempts go with
  them (ON DELETE CASCADE). A pending delivery keeps its event.

Each statement deletes a bounded batch in its own short transaction, and one run deletes at
most `MAX_BATCHES` batches per table: a large backlog is worked off over several runs without
holding locks or the worker for long.
"""

from __future__ import annotations

from accounts_api.db.pool import Connection

BATCH = 1000
MAX_BATCHES = 50

# A batch is chosen once (MATERIALIZED): a LIMIT in an `id IN (...)` subquery may be run again
# by the plan and choose other rows, deleting more than the batch.
_BALANCE_NOTIFICATIONS = """
WITH batch AS MATERIALIZED (
    SELECT id FROM balance_notifications
    WHERE created_at < now() - make_interval(days => $1)
    ORDER BY created_at, id
    LIMIT $2
)
DELETE FROM balance_notifications n USING batch WHERE n.id = batch.id
"""
_OUTBOX = """
WITH batch AS MATERIALIZED (
    SELECT o.id FROM outbox o
    WHERE o.created_at < now() - make_interval(days => $1)
      AND o.dispatched_at IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries w
          WHERE w.outbox_id = o.id
            AND (w.status = 'pending' OR w.delivered_at >= now() - make_interval(days => $1))
      )
      AND NOT EXISTS (
          SELECT 1 FROM email_deliveries e
          WHERE e.outbox_id = o.id
            AND (e.status = 'pending' OR e.delivered_at >= now() - make_interval(days => $1))
      )
    ORDER BY o.created_at, o.id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM outbox o USING batch WHERE o.id = batch.id
"""


async def purge(connection: Connection, days: int) -> int:
    """Deletes what is older than `days`; the number of rows deleted (cascades not counted)."""
    deleted = 0
    for statement in (_BALANCE_NOTIFICATIONS, _OUTBOX):
        for _ in range(MAX_BATCHES):
            status = await connection.execute(statement, days, BATCH)
            count = int(status.rsplit(" ", 1)[-1])
            deleted += count
            if count < BATCH:
                break
    return deleted
