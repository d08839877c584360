"""The audit log (contract §4.3): one row per create, update or destroy, written by the
transaction that makes the change, with who (admin id as a string) and from where. Writers
record through db/writes.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from accounts_api.db.pool import Connection


class Actor(Protocol):
    """Who writes, and from where (a request's context)."""

    @property
    def admin_id(self) -> int: ...

    @property
    def ip(self) -> str | None: ...


async def record(
    connection: Connection,
    actor: Actor,
    *,
    item_type: str,
    item_id: object,
    event: str,
    previous: Mapping[str, Any] | None,
    changes: Mapping[str, tuple[Any, Any]],
) -> None:
    await connection.execute(
        insert_sql(1),
        *values(
            actor,
            item_type=item_type,
            item_id=item_id,
            event=event,
            previous=previous,
            changes=changes,
        ),
    )


def insert_sql(first: int) -> str:
    """The INSERT of one row, its 7 parameters numbered from `first` (to run inside a writer's
    own statement, as one of its CTEs)."""
    parameters = ", ".join(f"${number}" for number in range(first, first + 7))
    return (
        "INSERT INTO audit_log (item_type, item_id, event, whodunnit, object, object_changes, ip)"
        f" VALUES ({parameters})"
    )


def insert_created_sql(first: int, inserted: str) -> str:
    """The INSERT of the create rows of the records the CTE `inserted` returns (their `id`),
    its 5 parameters numbered from `first` (`created_values`), to run as a CTE of the
    statement that inserts them (issue 10)."""
    item_type, event, whodunnit, changes, ip = (f"${first + n}" for n in range(5))
    return (
        "INSERT INTO audit_log (item_type, item_id, event, whodunnit, object, object_changes, ip)"
        f" SELECT {item_type}::text, id, {event}::text, {whodunnit}::text, NULL,"
        f" {changes}::jsonb, {ip}::inet"
        f" FROM {inserted}"
    )


def created_values(
    actor: Actor, *, item_type: str, changes: Mapping[str, tuple[Any, Any]]
) -> list[object]:
    """The parameters of `insert_created_sql`, in order."""
    return [
        item_type,
        "create",
        str(actor.admin_id),
        {key: list(pair) for key, pair in changes.items()},
        actor.ip,
    ]


def values(
    actor: Actor,
    *,
    item_type: str,
    item_id: object,
    event: str,
    previous: Mapping[str, Any] | None,
    changes: Mapping[str, tuple[Any, Any]],
) -> list[object]:
    """The parameters of `insert_sql`, in order."""
    return [
        item_type,
        item_id,
        event,
        str(actor.admin_id),
        dict(previous) if previous is not None else None,
        {key: list(pair) for key, pair in changes.items()},
        actor.ip,
    ]


async def record_rows(connection: Connection, actor: Actor, rows_sql: str, *args: object) -> None:
    """Rows for many records in one statement: `rows_sql` selects item_type, item_id, event,
    object and object_changes; its parameters start at $3."""
    await connection.execute(
        "INSERT INTO audit_log (item_type, item_id, event, whodunnit, object, object_changes, ip)"
        " SELECT item_type, item_id, event, $1, object, object_changes, $2::inet"
        f" FROM ({rows_sql}) AS audited",
        str(actor.admin_id),
        actor.ip,
        *args,
    )


def changes_between(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """{column: (old, new)} for the columns whose value differs (all of them on create)."""
    return {
        key: (None if before is None else before.get(key), value)
        for key, value in after.items()
        if before is None or before.get(key) != value
    }
