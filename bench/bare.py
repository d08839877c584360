"""The bare handler (issue 10): the four benchmark requests answered by a minimal ASGI app that
sends the same statements as the service and renders the same documents, and does nothing else
(no routing table, middleware, authentication, negotiation, headers beyond the body's).

    DATABASE_URL=... .venv/bin/python bench/bare.py --port 8001 --workers 2

It calls the service's own SQL (the resources' writers, `fetch_one`, `fetch_by_keys`, the
list's `list_statements`) and its renderer, so it tracks their changes: what the service
spends beyond it is the per-request overhead bench/overhead.py measures.
tests/test_bench_bare.py checks that both answer the same documents.
Writes are recorded as the admin `BARE_ADMIN_ID` (default 1, the bootstrap admin) from
127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from accounts_api.db import after_commit
from accounts_api.db.pool import Database, create_pool
from accounts_api.jsonapi.body import decode, parse_create, parse_update
from accounts_api.jsonapi.declaration import Context
from accounts_api.jsonapi.document import API_PREFIX, Renderer, encode, page_links
from accounts_api.jsonapi.endpoints import fetch_by_keys, fetch_one, list_statements
from accounts_api.jsonapi.query import QueryParser
from accounts_api.resources import REGISTRY
from accounts_api.resources.accounts import ACCOUNTS
from accounts_api.resources.contractors import CONTRACTORS
from accounts_api.resources.payments import PAYMENTS
from accounts_api.settings import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ACCOUNTS_PATH = f"{API_PREFIX}/accounts"
PAYMENTS_PATH = f"{API_PREFIX}/payments"
_HEADERS = [(b"content-type", b"application/vnd.api+json")]


class Bare:
    def __init__(self, database_url: str, settings: Settings, admin_id: int):
        self.database_url = database_url
        self.settings = settings
        self.context = Context(admin_id=admin_id, ip="127.0.0.1")
        self.database: Database | None = None
        self.list_parser = QueryParser(ACCOUNTS, REGISTRY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        status, body = await self.answer(scope, receive)
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                settings = self.settings
                pool = await create_pool(
                    self.database_url,
                    settings.pool_size,
                    settings.database_session_settings(),
                    settings.statement_timeout,
                )
                self.database = Database(pool, settings.acquire_timeout)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.database is not None:
                    await self.database.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        method, path = scope["method"], scope["path"]
        base = f"{scope['scheme']}://{_host(scope)}"
        assert self.database is not None
        async with self.database.acquire() as connection:
            if path == ACCOUNTS_PATH and method == "GET":
                return 200, await self.accounts_page(connection, scope, base)
            if path == PAYMENTS_PATH and method == "POST":
                payload = parse_create(decode(await _body(receive)), PAYMENTS)
                async with after_commit.transaction(connection):
                    assert PAYMENTS.writer.create is not None
                    key = await PAYMENTS.writer.create(connection, self.context, payload)
                    row = await fetch_one(connection, PAYMENTS, key, created=True)
                renderer = Renderer(PAYMENTS, base, {}, created=True)
                return 201, encode({"data": renderer.resource_object(row)})
            raw_key = path.removeprefix(ACCOUNTS_PATH + "/")
            key = int(raw_key)
            if method == "PUT":
                payload = parse_update(decode(await _body(receive)), ACCOUNTS, raw_key)
                async with after_commit.transaction(connection):
                    assert ACCOUNTS.writer.update is not None
                    # the accounts writer answers with the row it wrote, as Api.update uses it
                    written = await ACCOUNTS.writer.update(connection, self.context, key, payload)
                assert written is not None
                return 200, encode({"data": Renderer(ACCOUNTS, base, {}).resource_object(written)})
            row = await fetch_one(connection, ACCOUNTS, key)
            return 200, encode({"data": Renderer(ACCOUNTS, base, {}).resource_object(row)})

    async def accounts_page(self, connection: Any, scope: Scope, base: str) -> bytes:
        """A page with its count and its contractors, as Api.index sends them."""
        query = self.list_parser.parse(scope["query_string"].decode("latin-1"), index=True)
        page, count = list_statements(ACCOUNTS, query)
        rows = await connection.fetch(page.sql, *page.args)
        total = await connection.fetchval(count.sql, *count.args)
        position = 1 + len(ACCOUNTS.attributes)  # the contractor's key
        keys = sorted({row[position] for row in rows if row[position] is not None})
        contractors = await fetch_by_keys(connection, CONTRACTORS, keys) if keys else []
        renderer = Renderer(ACCOUNTS, base, {})
        included = Renderer(CONTRACTORS, base, {})
        document: dict[str, Any] = {"data": [renderer.resource_object(row) for row in rows]}
        if contractors:
            document["included"] = [included.resource_object(row) for row in contractors]
        document["meta"] = {"total-count": total}
        document["links"] = page_links(
            f"{base}{ACCOUNTS_PATH}", query.echo, query.page_number, query.page_size, total
        )
        return encode(document)


def _host(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            return str(value.decode("latin-1"))
    host, port = scope["server"]
    return f"{host}:{port}"


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def create_app() -> Bare:
    settings = Settings.from_env()
    url = os.environ["DATABASE_URL"]
    return Bare(url, settings, int(os.environ.get("BARE_ADMIN_ID", "1")))


def main() -> int:
    import uvicorn

    from accounts_api import serving

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    uvicorn.run(
        "bare:create_app",
        factory=True,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        http=serving.http_protocol(),
        loop=serving.event_loop(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
