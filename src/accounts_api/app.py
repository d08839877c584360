"""Builds the ASGI app: the middleware (observation, request id, response headers, proxies,
bounds), the error renderer and the routes of every registered resource."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounts_api import metrics, reference_docs
from accounts_api.auth import throttle
from accounts_api.auth.admin_cache import AdminCache
from accounts_api.auth.login import LoginPolicy, login_endpoint
from accounts_api.auth.passwords import PasswordChecks
from accounts_api.auth.policy import JwtAuthenticator
from accounts_api.db.pool import Database, DatabaseUnavailable, create_pool
from accounts_api.delivery.worker import DeliveryConfig, Worker, running
from accounts_api.health import health_routes
from accounts_api.jsonapi.document import API_PREFIX, encode_errors
from accounts_api.jsonapi.endpoints import Api
from accounts_api.jsonapi.errors import (
    ErrorList,
    InternalServerError,
    JsonApiError,
    LockTimeout,
    MethodNotAllowed,
    RouteNotFound,
    ServiceUnavailable,
    flatten,
)
from accounts_api.jsonapi.idempotency import Idempotency
from accounts_api.jsonapi.negotiation import MEDIA_TYPE
from accounts_api.jsonapi.responses import error_response
from accounts_api.jsonapi.versioning import none_match
from accounts_api.jsonapi.write_queue import WriteQueues
from accounts_api.observation import Observation
from accounts_api.openapi_routes import PATH as OPENAPI_PATH
from accounts_api.openapi_routes import OpenApiDocument
from accounts_api.proxies import TrustedProxies
from accounts_api.request_bounds import RequestBounds
from accounts_api.request_ids import RequestId
from accounts_api.resources import REGISTRY, RESOURCES, balances
from accounts_api.settings import ConfigurationError, Settings

logger = logging.getLogger("accounts_api")

# contract §6.1: Rails' default headers on every response
SECURITY_HEADERS = (
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"x-xss-protection", b"0"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-permitted-cross-domain-policies", b"none"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
)
_BROWSER_LIKE_ACCEPT = re.compile(r",\s*\*/\*|\*/\*\s*,")
_REVALIDATE = b"max-age=0, private, must-revalidate"
# what a 304 leaves out
_BODY_HEADERS = frozenset({b"content-type", b"content-length"})


class ResponseHeaders:
    """x-request-id (as request_ids.py decided it), x-runtime, security headers, the weak ETag
    with conditional GET, Vary and Cache-Control (contract §6.1, §6.2). Responses here are
    single-chunk. Headers are handled as the raw (name, value) lists of ASGI (issue 10: on
    every request, Starlette's header objects cost more than the rest of this layer)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if_none_match = accept = None
        for name, value in scope["headers"]:
            if name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
            elif name == b"accept" and accept is None:
                accept = value.decode("latin-1")
        conditional = scope["method"] in ("GET", "HEAD") and bool(if_none_match)
        # Rails varies on Accept unless the header is absent or browser-like (`..., */*`)
        vary = bool(accept) and not _BROWSER_LIKE_ACCEPT.search(accept or "")
        request_id = scope["state"]["request_id"].encode("latin-1")
        start: Message = {}
        answered = False

        async def send_with_headers(message: Message) -> None:
            nonlocal start, answered
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or not start:
                await send(message)
                return
            body = message.get("body", b"")
            status = start["status"]
            etag = cache_control = None
            typed = False
            headers = []
            for name, value in start.get("headers", ()):
                if name == b"etag":
                    etag = etag or value
                elif name == b"cache-control":
                    cache_control = cache_control or value
                else:
                    typed = typed or name == b"content-type"
                    headers.append((name, value))
            headers += SECURITY_HEADERS
            headers.append((b"x-request-id", request_id))
            headers.append((b"x-runtime", b"%.6f" % (time.perf_counter() - started)))
            # an answer that says how it may be cached (no-store: tokens, probes) keeps it
            if status in (200, 201) and body and not message.get("more_body"):
                # a versioned resource set its own strong tag; otherwise a weak one of the body
                etag = etag or b'W/"%s"' % hashlib.sha256(body).hexdigest()[:32].encode()
                headers.append((b"etag", etag))
                headers.append((b"cache-control", cache_control or _REVALIDATE))
                if conditional and none_match(if_none_match or "", etag.decode("latin-1")):
                    status, body, typed = 304, b"", False
                    headers = [h for h in headers if h[0] not in _BODY_HEADERS]
            else:
                if etag is not None:
                    headers.append((b"etag", etag))
                headers.append((b"cache-control", cache_control or b"no-cache"))
            if vary and typed:
                headers.append((b"vary", b"Accept"))
            await send({**start, "status": status, "headers": headers})
            start, answered = {}, True
            await send({**message, "body": body})

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # answered here, inside the headers, so a 500 carries them like any answer and
            # the keep-alive connection survives (Starlette's outer handler re-raises)
            if answered:
                raise
            logger.exception("unhandled error")
            body = encode_errors([InternalServerError()])
            raw_headers = [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ]
            start = {}
            await send_with_headers(
                {"type": "http.response.start", "status": 500, "headers": raw_headers}
            )
            await send_with_headers({"type": "http.response.body", "body": body})


async def _jsonapi_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JsonApiError | ErrorList)
    return error_response(flatten(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response([MethodNotAllowed(request.method)], dict(exc.headers or {}))
    if exc.status_code == 404:
        return error_response([RouteNotFound()])
    error = JsonApiError(str(exc.detail))
    error.status, error.code, error.title = exc.status_code, str(exc.status_code), str(exc.detail)
    return error_response([error])


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return error_response([InternalServerError()])


# What the database's own limits and failures mean to a client: a lock held too long by
# another writer is a conflict to retry at once; the rest (no connection, a statement past
# its time, a lost or terminated session) is the service being unavailable for a while.
# Either way the transaction was rolled back: nothing was done.
_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    asyncpg.PostgresConnectionError,  # class 08: connection exceptions
    asyncpg.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.OperatorInterventionError,  # class 57: statement timeout, admin shutdown
    asyncpg.IdleInTransactionSessionTimeoutError,
    asyncpg.ConnectionDoesNotExistError,
    # how asyncpg reports a pooled session the server ended while it was idle, on its next
    # use (the pool then replaces the connection)
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,  # asyncpg's client-side command timeout
)
_CONFLICT_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.LockNotAvailableError,  # lock_timeout
    asyncpg.DeadlockDetectedError,  # still deadlocked after the retries of endpoints.py
)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning("database unavailable: %r", exc)
    return error_response(
        [ServiceUnavailable("The database is unavailable or overloaded; retry later.")]
    )


async def _database_conflict(request: Request, exc: Exception) -> Response:
    return error_response([LockTimeout()])


def database_of(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    if settings.database_url is None:
        raise ConfigurationError(
            "DATABASE_URL is not set; `accounts-api serve` starts the embedded server and sets it"
        )
    database_url = settings.database_url
    secret = settings.secret_key()
    # issue 10: the token's admin without a round trip, dropped at once when it changes
    admin_cache = AdminCache(database_url, settings.database_session_settings())
    authenticator = JwtAuthenticator(
        secret, settings.token_lifetime, settings.trusted_proxies, admin_cache
    )
    api = Api(
        REGISTRY,
        authenticator,
        database_of,
        Idempotency(settings.idempotency_ttl),
        WriteQueues(settings.lock_timeout),
        max_filter_values=settings.max_filter_values,
    )
    # issue 6: logins throttled and their password checks capped per worker
    login_policy = LoginPolicy(
        secret,
        settings.token_lifetime,
        throttle.Limits(settings.login_max_failures, settings.login_failure_window),
        settings.trusted_proxies,
    )
    checks = PasswordChecks(settings.login_concurrency, settings.login_queue)
    # issue 8: described from the routes below, served without authentication
    openapi = OpenApiDocument(api)
    routes: list[Any] = [
        *health_routes(database_of),
        metrics.metrics_route(database_of),
        openapi.route(),
        # the document rendered for reading (Swagger UI, from a package: works offline)
        *reference_docs.routes(OPENAPI_PATH),
        Route(
            f"{API_PREFIX}/auth",
            login_endpoint(database_of, login_policy, checks),
            methods=["POST"],
        ),
    ]
    # the balance endpoints first: /accounts/{id}/balance is not a relationship route
    routes += balances.routes(api)
    for resource in RESOURCES:
        routes += api.routes(resource)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await create_pool(
            database_url,
            settings.pool_size,
            settings.database_session_settings(),
            settings.statement_timeout,
        )
        app.state.database = Database(
            app.state.pool, settings.acquire_timeout, watch=metrics.pool_changed
        )
        await admin_cache.start()
        try:
            if settings.deliver:
                # issue 7: each process delivers notifications on connections of its own
                worker = Worker(database_url, DeliveryConfig.from_settings(settings))
                async with running(worker):
                    yield
            else:
                yield
        finally:
            # writes still queued or in a batch past the shutdown timeout end with their
            # requests (rolled back), before the pool waits for their connections
            await api.write_queues.close()
            await admin_cache.stop()
            await app.state.database.close()
            metrics.process_exit()

    exception_handlers: dict[Any, Any] = {
        JsonApiError: _jsonapi_error,
        ErrorList: _jsonapi_error,
        HTTPException: _http_error,
        Exception: _server_error,
    }
    exception_handlers.update(dict.fromkeys(_UNAVAILABLE_ERRORS, _database_unavailable))
    exception_handlers.update(dict.fromkeys(_CONFLICT_ERRORS, _database_conflict))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers)
    app.state.openapi = openapi
    app.state.admin_cache = admin_cache
    app.add_middleware(
        RequestBounds,
        max_header_bytes=settings.max_header_bytes,
        max_query_bytes=settings.max_query_bytes,
    )
    app.add_middleware(TrustedProxies, trusted_proxies=settings.trusted_proxies)
    # its headers go on every answer, the bounds' refusals included
    app.add_middleware(ResponseHeaders)
    app.add_middleware(RequestId)
    # outermost: it reports what the client got (issue 9), by route template
    templates = {route.endpoint: route.path for route in routes if isinstance(route, Route)}
    app.add_middleware(Observation, routes=templates, trusted_proxies=settings.trusted_proxies)
    return app
