"""Timezones (contract §5.5): read-only, the id is the zone name, no links, no pagination.

The list is PostgreSQL's `pg_timezone_names` without its `posix/` and `right/` copies and
aliases that are not zones; accounts accept a name when Python's zoneinfo can also load it,
since the invoice schedule is computed here.
"""

from __future__ import annotations

import zoneinfo

from accounts_api.db.pool import Connection
from accounts_api.jsonapi.declaration import Attribute, Resource, ValueType

ZONE_SCOPE = "z.name !~ '^(posix|right)/' AND z.name NOT IN ('localtime', 'posixrules', 'Factory')"

_cache: frozenset[str] | None = None


async def valid_timezones(connection: Connection) -> frozenset[str]:
    """Cached per process: one query on first use."""
    global _cache
    if _cache is None:
        rows = await connection.fetch(f"SELECT z.name FROM pg_timezone_names z WHERE {ZONE_SCOPE}")
        _cache = frozenset(row[0] for row in rows) & zoneinfo.available_timezones()
    return _cache


TIMEZONES = Resource(
    type="timezones",
    path="timezones",
    from_sql="pg_timezone_names z",
    id_sql="z.name",
    attributes=(Attribute("name", ValueType.STRING, "z.name", creatable=False, updatable=False),),
    plain_filters={"name": "z.name"},
    scope_sql=ZONE_SCOPE,
    integer_keys=False,
    paginated=False,
    self_links=False,
    count_ignores_filters=True,
    sort_ignored=True,
)
