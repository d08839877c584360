"""Arranging notifications directly in the database: SMTP connections, contractors, contacts,
subscriptions and outbox events (emitted as the write pipeline emits them, NOTIFY included)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from accounts_api.db import outbox, pool
from accounts_api.delivery import dispatch
from accounts_api.delivery.dispatch import Dispatched
from accounts_api.domain.thresholds import EVENT_NAMES, Event
from tests.conftest import Db, run
from tests.delivery.servers import Receiver, new_secret

LOW_REACHED = EVENT_NAMES[Event.LOW_REACHED]


def account_data(account_id: int, send_to: list[int] | None = None) -> dict[str, Any]:
    """An account snapshot as the write pipeline emits it (db/outbox.py)."""
    return {
        "id": account_id,
        "name": f"account-{account_id}",
        "balance": "-5.5",
        "min_balance": "-100.0",
        "max_balance": "100.0",
        "contractor_id": 1,
        "currency_id": 0,
        "external_id": None,
        "updated_at": "2025-01-02T03:04:05.678Z",
        "balance_low_threshold": "0.0",
        "balance_high_threshold": None,
        "send_balance_notifications_to": send_to,
    }


class Arrange:
    def __init__(self, db: Db):
        self.db = db
        self._names = itertools.count(1)

    def smtp(
        self,
        port: int,
        *,
        global_: bool = True,
        user: str | None = None,
        password: str | None = None,
    ) -> int:
        return int(
            self.db.fetchval(
                "INSERT INTO smtp_connections (name, host, port, from_address, auth_user,"
                " auth_password, global) VALUES ($1, '127.0.0.1', $2, 'billing@example.com',"
                " $3, $4, $5) RETURNING id",
                f"smtp-{next(self._names)}",
                port,
                user,
                password,
                global_,
            )
        )

    def contractor(self, smtp_connection_id: int | None = None) -> int:
        return int(
            self.db.fetchval(
                "INSERT INTO contractors (name, enabled, vendor, customer, smtp_connection_id)"
                " VALUES ($1, true, false, true, $2) RETURNING id",
                f"contractor-{next(self._names)}",
                smtp_connection_id,
            )
        )

    def contact(self, email: str, contractor_id: int | None = None) -> int:
        contractor_id = contractor_id or self.contractor()
        return int(
            self.db.fetchval(
                "INSERT INTO contacts (contractor_id, email) VALUES ($1, $2) RETURNING id",
                contractor_id,
                email,
            )
        )

    def subscribe(
        self,
        event: str = LOW_REACHED,
        *,
        send_to: list[int] | None = None,
        url: str | None = None,
        secret: str | None = None,
    ) -> int:
        return int(
            self.db.fetchval(
                "INSERT INTO event_subscriptions (event, send_to, url, secret)"
                " VALUES ($1, $2, $3, $4) RETURNING id",
                event,
                send_to,
                url,
                secret or new_secret(),
            )
        )

    def emit(self, *events: tuple[str, int, dict[str, Any]]) -> None:
        """(event name, account id, data) each, in one transaction, as a write emits them."""

        async def go() -> None:
            connection = await asyncpg.connect(self.db.url)
            try:
                await pool._init_connection(connection)
                async with connection.transaction():
                    await outbox.emit(
                        connection, [(account, name, data, None) for name, account, data in events]
                    )
            finally:
                await connection.close()

        run(go())

    def dispatch(self) -> Dispatched:
        """Dispatches a batch, as a worker would."""

        async def go() -> Dispatched:
            connection = await asyncpg.connect(self.db.url)
            try:
                await pool._init_connection(connection)
                return await dispatch.dispatch_batch(connection)
            finally:
                await connection.close()

        done: Dispatched = run(go())
        return done

    def webhook(self, event: str = LOW_REACHED, account_id: int = 7) -> None:
        self.emit((event, account_id, account_data(account_id)))

    def webhook_deliveries(self) -> list[asyncpg.Record]:
        return self.db.fetch("SELECT * FROM webhook_deliveries ORDER BY id")

    def email_deliveries(self) -> list[asyncpg.Record]:
        return self.db.fetch("SELECT * FROM email_deliveries ORDER BY id")

    def attempts(self, delivery_id: int) -> list[asyncpg.Record]:
        return self.db.fetch(
            "SELECT * FROM webhook_attempts WHERE webhook_delivery_id = $1 ORDER BY id",
            delivery_id,
        )

    def statuses(self) -> list[str]:
        return [row["status"] for row in self.webhook_deliveries()]


@pytest.fixture
def arrange(db: Db, clean_database: None) -> Arrange:
    return Arrange(db)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running
