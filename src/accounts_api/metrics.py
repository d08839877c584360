"""Prometheus metrics (issue 9), served at `GET /metrics` outside the API prefix and without
authentication, like /healthz.

The metric objects are module-level: one set per process, whatever the number of apps (tests
build many). Under `accounts-api serve` every worker writes them into the directory of
PROMETHEUS_MULTIPROC_DIR (metrics_directory.py) and /metrics adds up every worker's files,
whichever worker answers; without the variable (an app built in-process) they live in the
process's default registry.

The outbox and delivery backlog is read from the database at scrape time (one statement); when
the database does not answer, /metrics still answers with everything else and
`accounts_api_backlog_up 0`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator

import asyncpg
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounts_api.db.pool import Database, DatabaseUnavailable

logger = logging.getLogger(__name__)

PATH = "/metrics"
# what generate_latest writes, understood by every Prometheus (the library's own default answer)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# what prometheus_client chose when it was imported (it reads the variable then, once)
MULTIPROCESS = values.ValueClass is not values.MutexValue
# the request label of a path that matched no route: never the path itself (bounded labels)
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# the backlog's statement, and the longest a scrape waits for the database
BACKLOG_TIMEOUT = 2.0

REQUESTS = Counter(
    "accounts_api_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_DURATION = Histogram(
    "accounts_api_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# per process, added up over the live ones
POOL_MAX = Gauge(
    "accounts_api_db_pool_max_connections",
    "Connections the database pools may open (ACCOUNTS_API_DB_POOL_SIZE per worker).",
    multiprocess_mode="livesum",
)
POOL_OPEN = Gauge(
    "accounts_api_db_pool_open_connections",
    "Connections the database pools hold open, as of their last borrow or return.",
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "accounts_api_db_pool_connections_in_use",
    "Pooled database connections borrowed by requests now.",
    multiprocess_mode="livesum",
)
MONEY_MOVES = Counter(
    "accounts_api_money_moves_total",
    "Committed balance movements, by ledger kind (payment, payment_rollback, transaction,"
    " correction, absolute_set, closing).",
    ["kind"],
)
LOGINS_THROTTLED = Counter(
    "accounts_api_logins_throttled_total",
    "Logins refused with 429 for too many failures, by the scope whose limit was reached"
    " (username or address).",
    ["scope"],
)
LOGINS_OVERLOADED = Counter(
    "accounts_api_logins_overloaded_total",
    "Logins refused with 503 because every password-check place of the worker was taken.",
)

# (route, method, status) -> its counter and histogram: labels() takes a lock and builds a
# key on every call, a dict lookup does not
_Children = tuple[Counter, Histogram]
_request_children: dict[tuple[str, str, int], _Children] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    children = _request_children.get(key)
    if children is None:
        labels = (route, method if method in _METHODS else "other", str(status))
        children = (REQUESTS.labels(*labels), REQUEST_DURATION.labels(*labels))
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def money_moved(kind: str) -> Callable[[], None]:
    """The count of one committed movement of `kind` (an after-commit callback)."""

    def count() -> None:
        MONEY_MOVES.labels(kind).inc()

    return count


def pool_changed(max_size: int, open_connections: int, in_use: int) -> None:
    """A pool's counts changed by these amounts (db/pool.py's watch)."""
    if max_size:
        POOL_MAX.inc(max_size)
    if open_connections:
        POOL_OPEN.inc(open_connections)
    if in_use:
        POOL_IN_USE.inc(in_use)


def process_exit() -> None:
    """This worker's live gauges leave the sums (prometheus_client's mark_process_dead)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


# -- the backlog, read at scrape time -------------------------------------------------------

# the partial indexes of migration 0005 hold exactly these rows
_BACKLOG = """
SELECT (SELECT count(*) FROM outbox WHERE dispatched_at IS NULL) AS events,
       (SELECT count(*) FROM email_deliveries WHERE status = 'pending') AS emails,
       (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending') AS webhooks
"""


class _Backlog(Collector):
    def __init__(self, counts: asyncpg.Record | None):
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "accounts_api_backlog_up",
            "1 when the backlog below was read from the database at this scrape, else 0.",
            value=0 if self.counts is None else 1,
        )
        yield up
        if self.counts is None:
            return
        yield GaugeMetricFamily(
            "accounts_api_outbox_undispatched_events",
            "Events of committed writes not yet fanned out into deliveries.",
            value=self.counts["events"],
        )
        pending = GaugeMetricFamily(
            "accounts_api_deliveries_pending",
            "E-mails and webhooks waiting to be delivered (including retries), by channel.",
            labels=["channel"],
        )
        pending.add_metric(["email"], self.counts["emails"])
        pending.add_metric(["webhook"], self.counts["webhooks"])
        yield pending


async def _read_backlog(database: Database) -> asyncpg.Record | None:
    try:
        async with asyncio.timeout(BACKLOG_TIMEOUT), database.acquire() as connection:
            return await connection.fetchrow(_BACKLOG)
    except (
        DatabaseUnavailable,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        OSError,
        TimeoutError,
    ) as error:
        logger.warning("metrics: the backlog could not be read: %r", error)
        return None


def _registry() -> Collector:
    if not MULTIPROCESS:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def metrics_route(database: Callable[[Request], Database]) -> Route:
    async def endpoint(request: Request) -> Response:
        backlog = _Backlog(await _read_backlog(database(request)))
        body = generate_latest(_registry()) + generate_latest(backlog)
        return Response(body, headers={"cache-control": "no-store"}, media_type=CONTENT_TYPE)

    return Route(PATH, endpoint, methods=["GET"])
