"""Row-level SQL shared by resources: lock, insert and update one row of one table.

Table and column names come from the resource modules, never from a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounts_api.db.pool import Connection
from accounts_api.jsonapi.errors import RecordNotFound


async def lock(
    connection: Connection,
    table: str,
    key: object,
    scope: str = "true",
    *,
    deleting: bool = False,
) -> dict[str, Any]:
    """The current row, locked for the rest of the transaction; 404 when it is gone or
    outside `scope`. An update takes FOR NO KEY UPDATE, which does not block rows that
    reference this one (an account created for the contractor being renamed); a delete takes
    FOR UPDATE."""
    mode = "FOR UPDATE" if deleting else "FOR NO KEY UPDATE"
    row = await connection.fetchrow(
        f"SELECT * FROM {table} WHERE id = $1 AND ({scope}) {mode}", key
    )
    if row is None:
        raise RecordNotFound(key)
    return dict(row)


async def insert(connection: Connection, table: str, columns: Mapping[str, Any]) -> Any:
    names = list(columns)
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return await connection.fetchval(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders}) RETURNING id",
        *columns.values(),
    )


async def update(
    connection: Connection, table: str, key: object, changes: Mapping[str, Any]
) -> None:
    if not changes:
        return
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
    await connection.execute(
        f"UPDATE {table} SET {assignments} WHERE id = $1", key, *changes.values()
    )


def changed(before: Mapping[str, Any], clean: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in clean.items() if before.get(key) != value}
