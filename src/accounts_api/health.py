"""Liveness and readiness for orchestrators and load balancers, outside the API prefix and
without authentication.

- `GET /healthz`: the process answers; the database is not consulted, so a database outage
  does not get healthy processes restarted.
- `GET /readyz`: the database answers within the pool's acquire timeout and its schema is at
  the migrations' head, or past it; 503 otherwise, so a balancer sends no traffic to an
  instance that cannot serve it. It turns ready again by itself once the database is back.
  A schema past this release's head is one a newer release migrated during a rolling
  upgrade: migrations only add to the schema the release before uses, so the instances not
  yet restarted keep serving (failing them would take every old instance out at once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounts_api.db import migrate
from accounts_api.db.pool import Database, DatabaseUnavailable
from accounts_api.jsonapi.errors import ServiceUnavailable

JSON = "application/json"
# how long readiness waits for the database's answer (a probe must not hang either)
CHECK_TIMEOUT = 2.0


def _status(document: dict[str, Any], status: int) -> Response:
    headers = {"cache-control": "no-store"}
    if status == 503:
        headers["retry-after"] = str(ServiceUnavailable.retry_after)
    return Response(msgspec.json.encode(document), status, headers=headers, media_type=JSON)


def health_routes(database: Callable[[Request], Database]) -> list[Route]:
    head = migrate.head_revision()
    known = set(migrate.revisions())

    async def healthz(request: Request) -> Response:
        return _status({"status": "ok"}, 200)

    async def readyz(request: Request) -> Response:
        try:
            async with database(request).acquire() as connection:
                revision = await connection.fetchval(
                    "SELECT version_num FROM alembic_version", timeout=CHECK_TIMEOUT
                )
        except asyncpg.UndefinedTableError:
            revision = None
        except (DatabaseUnavailable, asyncpg.PostgresError, OSError, TimeoutError) as error:
            return _status({"status": "unavailable", "database": str(error)}, 503)
        if revision == head:
            return _status({"status": "ok", "migrations": head}, 200)
        if revision is not None and revision not in known:
            # migrated by a newer release (a rolling upgrade): see the module's docstring
            return _status({"status": "ok", "migrations": revision, "release_head": head}, 200)
        detail = {"status": "unavailable", "database": "reachable"}
        detail["migrations"] = f"at {revision or 'none'}, head is {head}"
        return _status(detail, 503)

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
    ]
