"""The delivery worker: dispatches the outbox and sends what it causes, until stopped.

It runs in `accounts-api worker` and, unless ACCOUNTS_API_DELIVERY=off, inside each `serve`
process. Any number may run against one database: every claim is FOR UPDATE SKIP LOCKED. It
uses connections of its own, never the request pool's.

- The dispatcher's connection LISTENs on the outbox channel: an event is dispatched as its
  write commits. It also polls every `poll_interval` (for a notification missed while
  reconnecting, and for retries that have come due) and purges old logs every
  `purge_interval`.
- `senders` connections each claim one due delivery at a time (webhooks and e-mails in turn)
  and send it inside the transaction that holds its lock; the dispatcher wakes them.
- A lost database connection, or any error, is logged and the loop that met it starts over
  on a new connection after a pause; nothing ends the worker but `stop()`.
- `stop()` lets a send under way finish (at most `timeout`), then the loops end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import asyncpg
import httpx

from accounts_api.db import outbox, pool
from accounts_api.delivery import dispatch, emails, purge, webhooks
from accounts_api.settings import Settings

logger = logging.getLogger("accounts_api.delivery")

# how the worker's sessions show in pg_stat_activity
APPLICATION_NAME = "accounts-api delivery"
# pauses after a failure: doubled per failure in a row, up to the maximum
RECONNECT_DELAY = 0.5
MAX_RECONNECT_DELAY = 10.0
# senders look for due work by themselves this often, should a wake-up be missed
SENDER_POLL_FACTOR = 10
# a lost or unreachable database: logged without a traceback
_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.IdleInTransactionSessionTimeoutError,
    asyncpg.InternalClientError,
)
_DUE = """
SELECT EXISTS (
    SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
) OR EXISTS (
    SELECT 1 FROM email_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
)
"""


@dataclass(frozen=True)
class DeliveryConfig:
    """How a worker runs; `from_settings` for the service, other values in tests."""

    retry_base: float = 5.0
    # the longest webhook POST or SMTP session (well below idle_in_transaction_timeout)
    timeout: float = 10.0
    log_days: int = 30
    poll_interval: float = 1.0
    purge_interval: float = 60 * 60.0
    senders: int = 4
    session_settings: Mapping[str, str] = field(default_factory=dict)
    statement_timeout: float | None = None
    connect_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            retry_base=settings.delivery_retry_base,
            timeout=settings.delivery_timeout,
            log_days=settings.notification_log_days,
            session_settings=settings.database_session_settings(),
            statement_timeout=settings.statement_timeout,
        )

    @property
    def stop_grace(self) -> float:
        """How long a stopping worker may take: a send under way, and some margin."""
        return self.timeout + 5.0


class Worker:
    def __init__(self, database_url: str, config: DeliveryConfig):
        self.database_url = database_url
        self.config = config
        self._stopping = False
        self._stopped = asyncio.Event()
        self._dispatch_wake = asyncio.Event()
        self._send_wake = asyncio.Event()

    def stop(self) -> None:
        """Ends the loops once what they are doing is done (from the worker's event loop)."""
        self._stopping = True
        for event in (self._stopped, self._dispatch_wake, self._send_wake):
            event.set()

    async def run(self) -> None:
        config = self.config
        async with httpx.AsyncClient(timeout=config.timeout, follow_redirects=False) as client:
            tasks = [asyncio.create_task(self._dispatcher(), name="delivery-dispatcher")]
            tasks += [
                asyncio.create_task(self._sender(client), name=f"delivery-sender-{number}")
                for number in range(config.senders)
            ]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    # -- the loops ----------------------------------------------------------------------

    async def _dispatcher(self) -> None:
        config = self.config
        connection: asyncpg.Connection[asyncpg.Record] | None = None
        failures = 0
        next_purge = time.monotonic()
        while not self._stopping:
            try:
                if connection is None:
                    connection = await self._connect()
                    await connection.add_listener(outbox.CHANNEL, self._notified)
                self._dispatch_wake.clear()
                while not self._stopping:
                    done = await dispatch.dispatch_batch(connection)
                    if done.deliveries:
                        self._send_wake.set()
                    if done.events < dispatch.BATCH:
                        break
                if await connection.fetchval(_DUE):
                    self._send_wake.set()
                if time.monotonic() >= next_purge:
                    purged = await purge.purge(connection, config.log_days)
                    if purged:
                        logger.info("purged %d notification log rows", purged)
                    next_purge = time.monotonic() + config.purge_interval
                failures = 0
                await _wait(self._dispatch_wake, config.poll_interval)
            except Exception as error:
                failures += 1
                await self._failed("dispatcher", error, connection, failures)
                connection = None
        await _close(connection)

    async def _sender(self, client: httpx.AsyncClient) -> None:
        config = self.config
        connection: asyncpg.Connection[asyncpg.Record] | None = None
        failures = 0
        while not self._stopping:
            try:
                if connection is None:
                    connection = await self._connect()
                # cleared before looking: a wake-up from now on is not lost
                self._send_wake.clear()
                while not self._stopping:
                    sent_webhook = await webhooks.deliver_one(
                        connection, client, config.timeout, config.retry_base
                    )
                    sent_email = await emails.deliver_one(
                        connection, config.timeout, config.retry_base
                    )
                    if not (sent_webhook or sent_email):
                        break
                failures = 0
                await _wait(self._send_wake, config.poll_interval * SENDER_POLL_FACTOR)
            except Exception as error:
                failures += 1
                await self._failed("sender", error, connection, failures)
                connection = None
        await _close(connection)

    # -- helpers ------------------------------------------------------------------------

    def _notified(self, *_: object) -> None:
        self._dispatch_wake.set()

    async def _connect(self) -> asyncpg.Connection[asyncpg.Record]:
        config = self.config
        return await pool.connect(
            self.database_url,
            {**config.session_settings, "application_name": APPLICATION_NAME},
            config.statement_timeout,
            config.connect_timeout,
        )

    async def _failed(
        self,
        loop: str,
        error: Exception,
        connection: asyncpg.Connection[asyncpg.Record] | None,
        failures: int,
    ) -> None:
        """Logs the failure, drops the connection and pauses; the loop then starts over."""
        pause = min(RECONNECT_DELAY * 2 ** min(failures - 1, 10), MAX_RECONNECT_DELAY)
        if isinstance(error, _CONNECTION_ERRORS):
            logger.warning("delivery %s: database unavailable (%r); retrying", loop, error)
        else:
            logger.exception("delivery %s failed; retrying", loop, exc_info=error)
        await _close(connection)
        await _wait(self._stopped, pause)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` have passed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def _close(connection: asyncpg.Connection[asyncpg.Record] | None) -> None:
    if connection is None or connection.is_closed():
        return
    try:
        await asyncio.wait_for(connection.close(), 5)
    except Exception:  # a connection already lost cannot say goodbye
        connection.terminate()


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    """The worker running in the background for the block; stopped and awaited after it."""
    task = asyncio.create_task(worker.run(), name="delivery-worker")
    try:
        yield task
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, worker.config.stop_grace)
        except TimeoutError:
            logger.warning("the delivery worker did not stop in time; cancelled")
        except Exception:
            logger.exception("the delivery worker failed")
