"""The admins that tokens name, kept in memory per process (issue 10): authentication then
costs no database round trip, and every change to an admin is seen at once.

Every statement that changes `admin_users` notifies `accounts_api_admin_users` in its own
transaction (migration 0007's trigger: the CLI's revocations and passwords, an allow-list or a
deletion made by hand in SQL). Each process LISTENs on a connection of its own and empties its
cache when the notice arrives, which PostgreSQL sends as the change commits.

Fail safe: the cache answers only while that connection is up and listening. Until it is (at
start), after it is lost, and while it reconnects, every lookup reads the database, as
without a cache; once listening again, the cache starts empty.

A lookup that read the database while a change was announced does not keep what it read
(`_generation`): it may have read the row before the change committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping

import asyncpg

from accounts_api.auth import admins
from accounts_api.auth.admins import AdminUser
from accounts_api.db.pool import Connection

logger = logging.getLogger(__name__)

# the channel migration 0007's trigger notifies
CHANNEL = "accounts_api_admin_users"
# admins are few; a bound all the same, whatever the tokens presented
MAX_ENTRIES = 1024
CONNECT_TIMEOUT = 10.0
# the listening session's application_name
APPLICATION = "accounts-api admin cache"


class AdminCache:
    def __init__(
        self,
        database_url: str,
        session_settings: Mapping[str, str] | None = None,
        *,
        check_interval: float = 5.0,
        retry_interval: float = 1.0,
    ):
        self.database_url = database_url
        self.session_settings = dict(session_settings or {})
        # how often the listening connection is checked (a peer gone silent, not closed)
        self.check_interval = check_interval
        self.retry_interval = retry_interval
        self._admins: dict[int, AdminUser] = {}
        self._generation = 0
        self._listening = False
        self._connection: asyncpg.Connection[asyncpg.Record] | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    @property
    def listening(self) -> bool:
        return self._listening

    async def by_id(self, connection: Connection, admin_id: int) -> AdminUser | None:
        """The admin as stored now: from the cache while it listens, else from `connection`."""
        if self._listening:
            admin = self._admins.get(admin_id)
            if admin is not None:
                return admin
        generation = self._generation
        admin = await admins.by_id(connection, admin_id)
        if admin is not None and self._listening and generation == self._generation:
            if len(self._admins) >= MAX_ENTRIES:
                self._admins.clear()
            self._admins[admin_id] = admin
        return admin

    def held(self, admin_id: int) -> bool:
        return admin_id in self._admins

    def listener_pid(self) -> int | None:
        """The listening session's backend (None: not connected)."""
        return self._connection.get_server_pid() if self._connection is not None else None

    def invalidate(self) -> None:
        self._generation += 1
        self._admins.clear()

    # -- the listener -------------------------------------------------------------------

    async def start(self) -> None:
        """Listens from now on; waits a little for the first connection, so that a service
        whose database is up serves its first requests from the cache."""
        self._task = asyncio.create_task(self._listen(), name="admin-cache-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self.check_interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _listen(self) -> None:
        while True:
            lost = asyncio.Event()
            connection = None
            try:
                # a plain connection: no codecs needed, and named for pg_stat_activity
                connection = await asyncpg.connect(
                    self.database_url,
                    timeout=CONNECT_TIMEOUT,
                    server_settings={**self.session_settings, "application_name": APPLICATION},
                )
                self._connection = connection
                connection.add_termination_listener(functools.partial(self._terminated, lost))
                await connection.add_listener(CHANNEL, self._changed)
                # what was read before LISTEN took effect may be stale: start empty
                self.invalidate()
                self._listening = True
                self._first_attempt.set()
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), self.check_interval)
                    except TimeoutError:
                        await connection.execute("SELECT 1", timeout=self.check_interval)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("admin cache off, admins read from the database: %r", error)
            finally:
                self._first_attempt.set()
                self._lost(lost)
                self._connection = None
                if connection is not None:
                    connection.terminate()
            await asyncio.sleep(self.retry_interval)

    def _terminated(self, lost: asyncio.Event, _: object) -> None:
        self._lost(lost)

    def _lost(self, lost: asyncio.Event) -> None:
        self._listening = False
        self.invalidate()
        lost.set()

    def _changed(self, *_: object) -> None:
        self.invalidate()
