"""Idempotency keys on writes: a client retrying with the same `Idempotency-Key` gets the
first answer again instead of a second effect.

- The key is 1 to 255 printable ASCII characters, scoped to the admin user.
- The first request's status and body are kept, with a fingerprint of the request
  (method, path, query, body), for the configured time (24 hours by default).
- A retry with the same key and the same request replays them with
  `Idempotent-Replayed: true`; the same key with another request is 422; a retry while
  the first still runs is 409.
- A request that fails unexpectedly (500) releases its key: nothing happened, a retry runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.responses import Response

from accounts_api.db import idempotency
from accounts_api.db.pool import Connection
from accounts_api.jsonapi.body import read_body
from accounts_api.jsonapi.declaration import Context
from accounts_api.jsonapi.errors import (
    BadRequest,
    Conflict,
    DoneButNoAnswer,
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
_KEPT_HEADERS = ("content-type", "location", "etag")


@asynccontextmanager
async def write_transaction(request: Request, connection: Connection) -> AsyncIterator[None]:
    """The transaction of a write; once it commits, a failure afterwards (building the
    answer) must not free the key, or a retry would do the write again."""
    async with connection.transaction():
        yield
        claim = getattr(request.state, "idempotency_claim", None)
        if claim is not None:
            await idempotency.mark_committed(connection, *claim)
    request.state.committed = True


async def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode() + b"\n")
    digest.update(await read_body(request))
    return digest.hexdigest()


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
        stored = await idempotency.claim(connection, context.admin_id, key, fingerprint, self.ttl)
        if stored is not None:
            return self._replay(stored, fingerprint)
        request.state.idempotency_claim = (context.admin_id, key)
        try:
            response = await handler()
        except (JsonApiError, ErrorList) as error:
            response = error_response(flatten(error))
        except BaseException:
            if getattr(request.state, "committed", False):
                await self._store(connection, context, key, error_response([DoneButNoAnswer()]))
            else:
                await idempotency.release(connection, context.admin_id, key)
            raise
        if response.status_code >= 500 and not getattr(request.state, "committed", False):
            await idempotency.release(connection, context.admin_id, key)
            return response
        await self._store(connection, context, key, response)
        return response

    @staticmethod
    async def _store(
        connection: Connection, context: Context, key: str, response: Response
    ) -> None:
        kept = response.headers
        headers = {name: kept[name] for name in _KEPT_HEADERS if name in kept}
        await idempotency.complete(
            connection, context.admin_id, key, response.status_code, headers, bytes(response.body)
        )

    @staticmethod
    def _replay(stored: idempotency.Stored, fingerprint: str) -> Response:
        if stored.fingerprint != fingerprint:
            raise UnprocessableRequest(
                "This Idempotency-Key was already used for a different request."
            )
        if stored.status is None and stored.committed:
            # the first request's write committed, then its process died before the answer
            # was kept: say so rather than run it again or answer 409 for a day
            raise DoneButNoAnswer()
        if stored.status is None:
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        headers = dict(stored.headers or {})
        media_type = headers.pop("content-type", None)
        headers["idempotent-replayed"] = "true"
        return Response(stored.body, stored.status, headers=headers, media_type=media_type)
