"""Idempotency keys on writes: a client retrying with the same `Idempotency-Key` gets the
first answer again instead of a second effect.

- The key is 1 to 255 printable ASCII characters, scoped to the admin user.
- The key is claimed, the write done and its answer (status and body, with a fingerprint
  of the request: method, path, query, body) kept in ONE transaction, for the configured
  time (24 hours by default). So a key exists exactly when its write committed: a write
  cut off by a crash or a lost connection left nothing, and its retry runs afresh.
- A retry with the same key and the same request replays the answer with
  `Idempotent-Replayed: true`; the same key with another request is 422. A retry while the
  first still runs waits for it (its claim is an uncommitted row), up to the lock timeout,
  then answers 409 with `Retry-After`.
- An unexpected failure (500) or an outage (503) rolls the whole transaction back, the
  claim with it: a retry runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from accounts_api.db import after_commit, idempotency
from accounts_api.db.pool import Connection
from accounts_api.jsonapi import group_commit
from accounts_api.jsonapi.body import read_body
from accounts_api.jsonapi.declaration import Context
from accounts_api.jsonapi.errors import (
    BadRequest,
    Conflict,
    ErrorList,
    JsonApiError,
    UnprocessableRequest,
    flatten,
)
from accounts_api.jsonapi.responses import error_response

HEADER = "idempotency-key"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_TTL = 24 * 60 * 60
_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
# headers of the first answer a replay repeats
_KEPT_HEADERS = ("content-type", "location", "etag", "cache-control")


class InFlight(Conflict):
    retry_after = 1

    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is still being processed.")


@asynccontextmanager
async def write_transaction(
    request: Request, connection: Connection, *, refusals_checked: bool = False
) -> AsyncIterator[None]:
    """The transaction of a write (a savepoint inside a keyed request's transaction). Once
    it is over, a deadlock retry must not run the write again. Its after-commit work
    (after_commit.py) runs once it, or the keyed request's transaction around it, commits.

    `refusals_checked`: the write refuses (JsonApiError) inside the block only before it has
    changed anything. In a batch it then opens no savepoint of its own (group_commit.py: any
    other failure makes the batch run again, this write in a savepoint)."""
    if refusals_checked and group_commit.batched():
        async with group_commit.without_savepoint(connection):
            yield
    else:
        async with after_commit.transaction(connection):
            yield
    request.state.written = True


async def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode() + b"\n")
    digest.update(await read_body(request))
    return digest.hexdigest()


class _Abandon(Exception):
    """Leaves the keyed transaction with a rollback, answering `response`."""

    def __init__(self, response: Response):
        self.response = response


class Idempotency:
    def __init__(self, ttl: int = DEFAULT_TTL):
        self.ttl = ttl

    async def run(
        self,
        request: Request,
        context: Context,
        connection: Connection,
        handler: Callable[[], Awaitable[Response]],
    ) -> Response:
        key = request.headers.get(HEADER)
        if key is None or request.method not in WRITES:
            return await handler()
        if not _VALID_KEY.fullmatch(key):
            raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters.")
        fingerprint = await _fingerprint(request)
        try:
            async with after_commit.transaction(connection):
                return await self._keyed(request, context, connection, key, fingerprint, handler)
        except _Abandon as abandoned:
            return abandoned.response

    async def _keyed(
        self,
        request: Request,
        context: Context,
        connection: Connection,
        key: str,
        fingerprint: str,
        handler: Callable[[], Awaitable[Response]],
    ) -> Response:
        try:
            stored = await idempotency.claim(
                connection, context.admin_id, key, fingerprint, self.ttl
            )
        except asyncpg.LockNotAvailableError:
            raise InFlight() from None
        if stored is not None:
            return self._replay(stored, fingerprint)
        try:
            response = await handler()
        except (JsonApiError, ErrorList) as error:
            # the write's own savepoint is rolled back; its refusal is the key's answer
            response = error_response(flatten(error))
        if response.status_code >= 500:
            raise _Abandon(response)
        kept = response.headers
        headers = {name: kept[name] for name in _KEPT_HEADERS if name in kept}
        await idempotency.complete(
            connection, context.admin_id, key, response.status_code, headers, bytes(response.body)
        )
        return response

    @staticmethod
    def _replay(stored: idempotency.Stored, fingerprint: str) -> Response:
        if stored.fingerprint != fingerprint:
            raise UnprocessableRequest(
                "This Idempotency-Key was already used for a different request."
            )
        headers = dict(stored.headers or {})
        media_type = headers.pop("content-type", None)
        headers["idempotent-replayed"] = "true"
        return Response(stored.body, stored.status, headers=headers, media_type=media_type)
