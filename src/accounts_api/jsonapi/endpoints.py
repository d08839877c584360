"""Generic JSON:API endpoints built from resource declarations.

Every handler follows the contract's precedence (§6.3): authentication (401) ->
Content-Type (415, writes only) -> Accept (406) -> parameters and body (400) ->
the operation (404/422), each write in one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from accounts_api.db.pool import Connection, Database
from accounts_api.jsonapi import group_commit
from accounts_api.jsonapi.body import (
    WritePayload,
    decode,
    parse_create,
    parse_key,
    parse_relationship_body,
    parse_update,
    read_body,
)
from accounts_api.jsonapi.declaration import (
    Context,
    Relationship,
    Resource,
    Shown,
    WriteQueueKey,
)
from accounts_api.jsonapi.document import API_PREFIX, Renderer, Row, page_links
from accounts_api.jsonapi.errors import (
    Forbidden,
    JsonApiError,
    RecordNotFound,
)
from accounts_api.jsonapi.filters import MAX_VALUES as MAX_FILTER_VALUES
from accounts_api.jsonapi.idempotency import WRITES, Idempotency, write_transaction
from accounts_api.jsonapi.negotiation import (
    base_url,
    check_accept,
    check_content_type,
)
from accounts_api.jsonapi.query import Query, QueryParser
from accounts_api.jsonapi.read_only import check_unchanged
from accounts_api.jsonapi.responses import json_response
from accounts_api.jsonapi.routing import ResourceRoute, RouteKind
from accounts_api.jsonapi.versioning import check_if_match, entity_tag, if_match
from accounts_api.jsonapi.write_queue import Queued, WriteQueues

Handler = Callable[[Request, Context, Connection], Awaitable[Response]]
# how long a write waits for its turn on a record when the app does not say
DEFAULT_QUEUE_WAIT = 5.0


@dataclass(frozen=True)
class QueuedWrite:
    """A write waiting for its record's turn (write_queue.py)."""

    request: Request
    handler: Handler


class Authenticator(Protocol):
    async def __call__(self, request: Request, connection: Connection) -> Context: ...


def select_columns(resource: Resource, *, created: bool = False) -> str:
    """The id, the attributes and the foreign keys, by position. An attribute this answer does
    not show is selected as NULL: its stored value never leaves the database. A writer that
    returns the answer's row from its own statement selects these, under the same aliases."""
    columns = [resource.id_sql]
    columns += [
        attribute.sql if attribute.rendered(created=created) else "NULL"
        for attribute in resource.attributes
    ]
    columns += [relationship.fk_sql for relationship in resource.relationships]
    return ", ".join(columns)


# (resource id, created) -> (the resource, its select): made once per resource (issue 10: it
# was joined again on every read); holding the resource keeps its id from being reused
_SELECTS: dict[tuple[int, bool], tuple[Resource, str]] = {}


def select_sql(resource: Resource, *, created: bool = False) -> str:
    known = _SELECTS.get((id(resource), created))
    if known is None:
        sql = f"SELECT {select_columns(resource, created=created)} FROM {resource.from_sql}"
        known = _SELECTS[id(resource), created] = (resource, sql)
    return known[1]


def _where(resource: Resource, conditions: Sequence[str]) -> str:
    clauses = [f"({resource.scope_sql})"] if resource.scope_sql else []
    clauses += [f"({condition})" for condition in conditions]
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


@dataclass(frozen=True)
class Statement:
    sql: str
    args: list[object]


def list_statements(
    resource: Resource, query: Query, scope: tuple[str, object] | None = None
) -> tuple[Statement, Statement]:
    """A list's two statements: its page and its total. `scope` (SQL, value) narrows it to one
    parent's records.

    A resource with `base_from_sql` pages that table alone, then joins `from_sql` for the page's
    rows only, in the page's order (`WITH ORDINALITY`): `page[number]=10000` no longer joins
    the skipped rows, and a filter or sort served by an index of the table stops at the page.
    A filter or sort reading a joined attribute needs the join first: then `from_sql` is paged
    as it is."""
    args: list[object] = []
    conditions = [sql for c in query.filters if (sql := c.sql(args)) is not None]
    if scope is not None:
        args.append(scope[1])
        conditions.append(f"{scope[0]} = ${len(args)}")
    where = _where(resource, conditions)
    order = [f"{s.sql} {'DESC' if s.descending else 'ASC'}" for s in query.sort]
    if not any(s.sql in resource.tieless_sql for s in query.sort):
        # records with equal sort values come in id order, so that pages neither repeat nor
        # skip them (Yeti adds no tiebreaker; its order of ties is the database's whim). The id
        # goes the last field's way: an index of (balance, id) serves `-balance` backwards.
        descending = bool(query.sort) and query.sort[-1].descending
        order.append(f"{resource.id_sql} {'DESC' if descending else 'ASC'}")
    order_by = f" ORDER BY {', '.join(order)}"
    joined = resource.joined_sql
    base = resource.base_from_sql
    if any(c.joined for c in query.filters) or any(s.sql in joined for s in query.sort):
        base = None
    offset = (query.page_number - 1) * query.page_size
    page_args = [*args, query.page_size, offset] if resource.paginated else list(args)
    limit = f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}" if resource.paginated else ""
    if base is not None and resource.paginated:
        ids = f"SELECT {resource.id_sql} FROM {base}{where}{order_by}{limit}"
        page_sql = (
            select_sql(resource)
            + f" JOIN unnest(ARRAY({ids})) WITH ORDINALITY AS page_ids (id, position)"
            + f" ON page_ids.id = {resource.id_sql} ORDER BY page_ids.position"
        )
    else:
        page_sql = select_sql(resource) + where + order_by + limit
    if resource.count_ignores_filters:
        conditions, args = [], []
    if not conditions and resource.unfiltered_count_sql is not None:
        count = Statement(resource.unfiltered_count_sql, [])
    else:
        counted = base or resource.from_sql
        count = Statement(f"SELECT count(*) FROM {counted}{_where(resource, conditions)}", args)
    return Statement(page_sql, page_args), count


async def fetch_by_keys(
    connection: Connection,
    resource: Resource,
    keys: Sequence[object],
    *,
    lock: bool = False,
    created: bool = False,
) -> list[asyncpg.Record]:
    cast = "bigint" if resource.integer_keys else "text"
    sql = (
        select_sql(resource, created=created)
        + _where(resource, [f"{resource.id_sql} = ANY($1::{cast}[])"])
        + f" ORDER BY {resource.id_sql}"
        + (f" {resource.row_lock}" if lock else "")
    )
    return list(await connection.fetch(sql, list(keys)))


async def fetch_one(
    connection: Connection,
    resource: Resource,
    key: object,
    *,
    lock: bool = False,
    created: bool = False,
) -> asyncpg.Record:
    if not key_in_range(resource, key):
        raise RecordNotFound(key)
    rows = await fetch_by_keys(connection, resource, [key], lock=lock, created=created)
    if not rows:
        raise RecordNotFound(key)
    return rows[0]


def key_in_range(resource: Resource, key: object) -> bool:
    return not isinstance(key, int) or 0 <= key <= resource.key_max


@dataclass
class Api:
    """The engine bound to one registry of resources, a pool getter and an auth policy."""

    registry: dict[str, Resource]
    authenticate: Authenticator
    database: Callable[[Request], Database]
    idempotency: Idempotency = field(default_factory=Idempotency)
    write_queues: WriteQueues[QueuedWrite] = field(
        default_factory=lambda: WriteQueues(DEFAULT_QUEUE_WAIT)
    )
    # the values one filter takes (issue 6); the application passes its setting
    max_filter_values: int = MAX_FILTER_VALUES

    def query_parser(self, resource: Resource) -> QueryParser:
        return QueryParser(resource, self.registry, max_filter_values=self.max_filter_values)

    def routes(self, resource: Resource) -> list[ResourceRoute]:
        base = f"{API_PREFIX}/{resource.path}"
        member = f"{base}/{{key}}" if resource.integer_keys else f"{base}/{{key:path}}"
        writer = resource.writer
        collection_methods = ["GET"] + (["POST"] if writer.create else [])
        member_methods = ["GET"] + (["PATCH", "PUT"] if writer.update else [])
        member_methods += ["DELETE"] if writer.delete else []
        routes = []
        for name in resource.actions:
            routes.append(
                ResourceRoute(
                    f"{base}/{{key}}/{name}",
                    self.wrap(self._action_endpoint(resource, name), resource.write_queue),
                    methods=["POST"],
                    resource=resource,
                    kind=RouteKind.ACTION,
                    action=name,
                )
            )
        if resource.nested_under:
            parent_type, fk_sql = resource.nested_under
            parent = self.registry[parent_type]
            routes.append(
                ResourceRoute(
                    f"{API_PREFIX}/{parent.path}/{{key}}/{resource.path}",
                    self.wrap(self._nested_endpoint(parent, resource, fk_sql)),
                    methods=["GET"],
                    resource=resource,
                    kind=RouteKind.NESTED,
                    parent=parent,
                )
            )
        for relationship in resource.relationships:
            # a relationship that cannot change still answers writes, with a 403 that says so
            rel_methods = ["GET", "PATCH", "PUT", "DELETE"]
            routes.append(
                ResourceRoute(
                    f"{base}/{{key}}/relationships/{relationship.key}",
                    self.wrap(
                        self._relationship_endpoint(resource, relationship), resource.write_queue
                    ),
                    methods=rel_methods,
                    resource=resource,
                    kind=RouteKind.RELATIONSHIP,
                    relationship=relationship,
                )
            )
            if relationship.related_route:
                routes.append(
                    ResourceRoute(
                        f"{base}/{{key}}/{relationship.key}",
                        self.wrap(self._related_endpoint(resource, relationship)),
                        methods=["GET"],
                        resource=resource,
                        kind=RouteKind.RELATED,
                        relationship=relationship,
                    )
                )
        routes.append(
            ResourceRoute(
                base,
                self.wrap(self._collection_endpoint(resource), resource.write_queue),
                methods=collection_methods,
                resource=resource,
                kind=RouteKind.COLLECTION,
            )
        )
        routes.append(
            ResourceRoute(
                member,
                self.wrap(self._member_endpoint(resource), resource.write_queue),
                methods=member_methods,
                resource=resource,
                kind=RouteKind.MEMBER,
            )
        )
        return routes

    def wrap(
        self, handler: Handler, write_queue: WriteQueueKey | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        """One pooled connection per request, taken once the body is in and the request's
        turn on the record it writes has come (write_queue.py): authentication and the
        handler share it, and neither a slow upload nor a queued writer holds one. The
        writes of one record that queued up together share one (group_commit.py)."""

        async def endpoint(request: Request) -> Response:
            if request.method not in WRITES:
                # a read: no transaction, idempotency key or deadlock to retry
                async with self.database(request).acquire() as connection:
                    context = await self.authenticate(request, connection)
                    return await handler(request, context, connection)
            queue_key = None
            body = await read_body(request) if request.method != "DELETE" else b""
            if write_queue is not None:
                queue_key = write_queue(request.path_params.get("key"), _document(body))
            if queue_key is not None:
                # done in a batch with the record's other waiting writes (group_commit.py)
                return await self.write_queues.write(
                    queue_key, QueuedWrite(request, handler), self._batch
                )
            async with self.database(request).acquire() as connection:
                return await self._write(QueuedWrite(request, handler), connection)

        return endpoint

    async def _write(self, write: QueuedWrite, connection: Connection) -> Response:
        """One request on its connection: authentication, then the handler in its own
        transaction (a savepoint in a batch's)."""
        request = write.request
        request.state.written = False  # a batch that could not commit runs its writes again
        context = await self.authenticate(request, connection)
        return await self.idempotency.run(
            request,
            context,
            connection,
            lambda: _retried(write.handler, request, context, connection),
        )

    async def _batch(self, batch: list[Queued[QueuedWrite]]) -> None:
        database = self.database(batch[0].item.request)
        await group_commit.run(batch, database.acquire, self._write)

    # -- collection: index and create -------------------------------------------------

    def _collection_endpoint(self, resource: Resource) -> Handler:
        async def endpoint(request: Request, context: Context, connection: Connection) -> Response:
            if request.method == "POST":
                return await self.create(request, context, connection, resource)
            return await self.index(request, connection, resource)

        return endpoint

    async def index(
        self,
        request: Request,
        connection: Connection,
        resource: Resource,
        scope: tuple[str, object] | None = None,
        url_path: str | None = None,
    ) -> Response:
        """The collection; `scope` (SQL, value) narrows it to one parent's records."""
        check_accept(request)
        query = self.query_parser(resource).parse(request.url.query, index=True)
        for condition in query.filters:
            condition.verify()
        page, count = list_statements(resource, query, scope)
        offset = (query.page_number - 1) * query.page_size
        # no table has 2^63 rows: a page that far out is empty (the links still render)
        rows = await connection.fetch(page.sql, *page.args) if offset < 2**63 else []
        total = await connection.fetchval(count.sql, *count.args)
        included = await self._included(connection, request, resource, rows, query)
        renderer = Renderer(resource, base_url(request), query.fields)
        document: dict[str, Any] = {"data": [renderer.resource_object(row) for row in rows]}
        if included:
            document["included"] = included
        document["meta"] = {"total-count": total}
        if resource.paginated:
            url = f"{base_url(request)}{url_path or f'{API_PREFIX}/{resource.links_path}'}"
            document["links"] = page_links(
                url, query.echo, query.page_number, query.page_size, total
            )
        return json_response(document)

    async def create(
        self, request: Request, context: Context, connection: Connection, resource: Resource
    ) -> Response:
        assert resource.writer.create is not None
        check_content_type(request)
        check_accept(request)
        query = self.query_parser(resource).parse(request.url.query, index=False, write=True)
        payload = parse_create(decode(await read_body(request)), resource)
        refuses_first = resource.writer.create_refuses_before_writing
        async with write_transaction(request, connection, refusals_checked=refuses_first):
            key = await resource.writer.create(connection, context, payload)
            # the row just inserted, in the same transaction: no refusal after the write
            row = await fetch_one(connection, resource, key, created=True)
        return await self._single(request, connection, resource, row, query, created=True)

    # -- member: show, update, delete ---------------------------------------------------

    def _member_endpoint(self, resource: Resource) -> Handler:
        async def endpoint(request: Request, context: Context, connection: Connection) -> Response:
            raw_key = request.path_params["key"]
            if request.method in ("PATCH", "PUT"):
                return await self.update(request, context, connection, resource, raw_key)
            if request.method == "DELETE":
                return await self.delete(request, context, connection, resource, raw_key)
            return await self.show(request, connection, resource, raw_key)

        return endpoint

    async def show(
        self, request: Request, connection: Connection, resource: Resource, raw_key: str
    ) -> Response:
        check_accept(request)
        key = parse_key(raw_key, resource)
        query = self.query_parser(resource).parse(request.url.query, index=False)
        row = await fetch_one(connection, resource, key)
        return await self._single(request, connection, resource, row, query)

    async def update(
        self,
        request: Request,
        context: Context,
        connection: Connection,
        resource: Resource,
        raw_key: str,
    ) -> Response:
        assert resource.writer.update is not None
        check_content_type(request)
        check_accept(request)
        query = self.query_parser(resource).parse(request.url.query, index=False, write=True)
        payload = parse_update(decode(await read_body(request)), resource, raw_key)
        # contract §2.10: the URL id is not verified here; a non-integer is simply not found
        key = _lookup_key(raw_key, resource)
        async with write_transaction(request, connection):
            current = await self._precondition(request, connection, resource, key)
            if payload.read_only:
                # issue 8: a resource object sent back whole; its read-only values must be the
                # stored ones, compared under the row's lock (one more statement, only here)
                if current is None:
                    current = await fetch_one(connection, resource, key, lock=True)
                check_unchanged(resource, payload.read_only, current)
            row = None
            if not payload.empty:
                # a writer may answer with the row its statement wrote (one round trip less)
                row = await resource.writer.update(connection, context, key, payload)
            if row is None:
                row = await fetch_one(connection, resource, key)
        return await self._single(request, connection, resource, row, query)

    async def delete(
        self,
        request: Request,
        context: Context,
        connection: Connection,
        resource: Resource,
        raw_key: str,
    ) -> Response:
        assert resource.writer.delete is not None
        check_accept(request)
        parse_key(raw_key, resource)  # contract §2.11: a non-integer id is 103 here
        key = _lookup_key(raw_key, resource)
        async with write_transaction(request, connection):
            await self._precondition(request, connection, resource, key)
            await resource.writer.delete(connection, context, key)
        return Response(status_code=204)

    # -- actions and nested collections ------------------------------------------------

    def _action_endpoint(self, resource: Resource, name: str) -> Handler:
        action = resource.actions[name]

        async def endpoint(request: Request, context: Context, connection: Connection) -> Response:
            check_accept(request)
            parse_key(request.path_params["key"], resource)
            key = _lookup_key(request.path_params["key"], resource)
            query = self.query_parser(resource).parse(request.url.query, index=False, write=True)
            async with write_transaction(request, connection):
                await action(connection, context, key)
                row = await fetch_one(connection, resource, key)
            return await self._single(request, connection, resource, row, query)

        return endpoint

    def _nested_endpoint(self, parent: Resource, resource: Resource, fk_sql: str) -> Handler:
        async def endpoint(request: Request, context: Context, connection: Connection) -> Response:
            check_accept(request)
            key = parse_key(request.path_params["key"], parent)
            await fetch_one(connection, parent, key)
            path = f"{API_PREFIX}/{parent.path}/{key}/{resource.path}"
            return await self.index(request, connection, resource, (fk_sql, key), path)

        return endpoint

    # -- relationships ------------------------------------------------------------------

    def _relationship_endpoint(self, resource: Resource, relationship: Relationship) -> Handler:
        async def endpoint(request: Request, context: Context, connection: Connection) -> Response:
            raw_key = request.path_params["key"]
            if request.method == "GET":
                return await self.show_relationship(
                    request, connection, resource, relationship, raw_key
                )
            update = resource.writer.update
            if update is None or not relationship.updatable:
                if request.method != "DELETE":
                    check_content_type(request)
                check_accept(request)
                raise Forbidden(
                    f"The {relationship.key} of {resource.type} cannot be changed."
                    + (f" {relationship.immutable_hint}" if relationship.immutable_hint else "")
                )
            if request.method == "DELETE":
                check_accept(request)
                target: object | None = None
            else:
                check_content_type(request)
                check_accept(request)
                target = parse_relationship_body(decode(await read_body(request)), relationship)
            # contract §2.12: on PATCH and DELETE a non-integer id is simply not found
            key = _lookup_key(raw_key, resource)
            payload = WritePayload(relationships={relationship.name: target})
            async with write_transaction(request, connection):
                await fetch_one(connection, resource, key)
                await self._precondition(request, connection, resource, key)
                await update(connection, context, key, payload)
            return Response(status_code=204)

        return endpoint

    async def show_relationship(
        self,
        request: Request,
        connection: Connection,
        resource: Resource,
        relationship: Relationship,
        raw_key: str,
    ) -> Response:
        check_accept(request)
        key = parse_key(raw_key, resource)
        row = await fetch_one(connection, resource, key)
        target = row[1 + len(resource.attributes) + resource.relationships.index(relationship)]
        renderer = Renderer(resource, base_url(request), {})
        # contract §2.12: here `data` comes before `links`
        document = {
            "data": None if target is None else {"type": relationship.type, "id": str(target)},
            "links": renderer.relationship_links(key, relationship.key),
        }
        return json_response(document)

    def _related_endpoint(self, resource: Resource, relationship: Relationship) -> Handler:
        assert relationship.resource_type is not None
        related = self.registry[relationship.resource_type]

        async def endpoint(request: Request, context: Context, connection: Connection) -> Response:
            check_accept(request)
            key = parse_key(request.path_params["key"], resource)
            query = self.query_parser(related).parse(request.url.query, index=False)
            position = 1 + len(resource.attributes) + resource.relationships.index(relationship)
            row = await fetch_one(connection, resource, key)
            target = row[position]
            rows = [] if target is None else await fetch_by_keys(connection, related, [target])
            if not rows:
                return json_response({"data": None})
            return await self._single(request, connection, related, rows[0], query)

        return endpoint

    async def _precondition(
        self, request: Request, connection: Connection, resource: Resource, key: object
    ) -> asyncpg.Record | None:
        """If-Match on a versioned resource: compared with the row under its lock, which is
        returned (None when there was nothing to compare)."""
        wanted = if_match(request)
        if wanted is None or not resource.versioned:
            return None
        current = await fetch_one(connection, resource, key, lock=True)
        check_if_match(wanted, current)
        return current

    # -- rendering helpers --------------------------------------------------------------

    async def _single(
        self,
        request: Request,
        connection: Connection,
        resource: Resource,
        row: Row,
        query: Query,
        *,
        created: bool = False,
    ) -> Response:
        renderer = Renderer(resource, base_url(request), query.fields, created=created)
        obj = renderer.resource_object(row)
        document: dict[str, Any] = {"data": obj}
        included = await self._included(connection, request, resource, [row], query)
        if included:
            document["included"] = included
        headers = {"location": obj["links"]["self"]} if created and "links" in obj else {}
        if created and any(a.shown is Shown.ON_CREATE for a in resource.attributes):
            # a secret shown once must not be kept by a cache on the way
            headers["cache-control"] = "no-store"
        # the strong tag stands for the record as stored; a document with included records or
        # a sparse fieldset is more or less than that and keeps the weak tag of its body
        if resource.versioned and not query.include and not query.fields:
            headers["etag"] = entity_tag(row)
        return json_response(document, 201 if created else 200, **headers)

    async def _included(
        self,
        connection: Connection,
        request: Request,
        resource: Resource,
        rows: Sequence[Row],
        query: Query,
    ) -> list[dict[str, Any]]:
        """One query per include path segment, whatever the number of rows."""
        included: dict[tuple[str, str], dict[str, Any]] = {}
        url = base_url(request)
        for path in query.include:
            current, current_rows = resource, rows
            for segment in path:
                relationship = current.relationship(segment)
                assert relationship is not None and relationship.resource_type is not None
                position = 1 + len(current.attributes) + current.relationships.index(relationship)
                keys = sorted({row[position] for row in current_rows if row[position] is not None})
                current = self.registry[relationship.resource_type]
                current_rows = await fetch_by_keys(connection, current, keys) if keys else []
                renderer = Renderer(current, url, query.fields)
                for row in current_rows:
                    included.setdefault((current.type, str(row[0])), renderer.resource_object(row))
        return list(included.values())


# A transaction PostgreSQL aborted to break a deadlock did nothing: it is run again.
DEADLOCK_RETRIES = 3


async def _retried(
    handler: Handler, request: Request, context: Context, connection: Connection
) -> Response:
    for attempt in range(DEADLOCK_RETRIES):
        try:
            return await handler(request, context, connection)
        except asyncpg.DeadlockDetectedError:
            if attempt == DEADLOCK_RETRIES - 1 or getattr(request.state, "written", False):
                raise
    raise AssertionError("unreachable")


def _document(body: bytes) -> dict[str, Any]:
    """The body as a write queue reads it: a JSON object, else nothing (the handler then
    refuses the body with the contract's error)."""
    try:
        return decode(body)
    except JsonApiError:
        return {}


def _lookup_key(raw_key: str, resource: Resource) -> object:
    """A URL key of a write that is not a valid key, or one no row can have, is not found."""
    try:
        key = parse_key(raw_key, resource)
    except JsonApiError:
        raise RecordNotFound(raw_key) from None
    if not key_in_range(resource, key):
        raise RecordNotFound(raw_key)
    return key
