"""A keyed payment cut off by kill -9 of the server is applied exactly once by a retry after
the restart (issue 6): its claim lived in its own transaction, which died with it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg

from accounts_api.auth import tokens
from tests.conftest import SECRET, Db
from tests.test_cli import serving

PAYMENTS = "/api/rest/admin/payments"
KEY = "crash-0001"
DEADLINE = 60


def wait_for(condition: Any, what: str) -> None:
    ends = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < ends, f"{what} did not happen within {DEADLINE} s"
        time.sleep(0.05)


def test_a_keyed_payment_killed_while_waiting_on_a_row_lock_is_paid_once_after_restart(
    database_url: str,
    db: Db,
    admin_id: int,
    make_account: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    account_id = int(make_account(name="crash")["id"])
    token = tokens.issue(admin_id, SECRET, None)
    headers = {
        "Accept": "application/vnd.api+json",
        "Content-Type": "application/vnd.api+json",
        "Authorization": token,
        "Idempotency-Key": KEY,
    }
    body = json.dumps(
        {
            "data": {
                "type": "payments",
                "attributes": {"amount": "10"},
                "relationships": {"account": {"data": {"type": "accounts", "id": str(account_id)}}},
            }
        }
    )
    env = {
        "DATABASE_URL": database_url,
        "ACCOUNTS_API_SECRET_KEY": SECRET,
        # the payment waits on the lock for as long as the test needs
        "ACCOUNTS_API_DB_LOCK_TIMEOUT": "120",
        "ACCOUNTS_API_DB_STATEMENT_TIMEOUT": "120",
    }
    first = serving(tmp_path / "first", **env)
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (account_id,))

        def pay() -> None:
            with contextlib.suppress(httpx.TransportError):  # the server dies under it
                first.request("POST", PAYMENTS, content=body, headers=headers)

        payer = threading.Thread(target=pay)
        payer.start()

        def waiting_on_the_lock() -> bool:
            return bool(
                db.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )

        wait_for(waiting_on_the_lock, "the payment's lock wait")
        first.kill()  # kill -9 of serve and its workers
        holder.rollback()
    payer.join(timeout=DEADLINE)

    second = serving(tmp_path / "second", **env)
    try:
        retried_at = time.monotonic()
        # the dead request's backend goes away once PostgreSQL notices its client is gone;
        # until then the retry waits on the claim, bounded by the lock timeout
        retry = second.request("POST", PAYMENTS, content=body, headers=headers, timeout=DEADLINE)
        retry_took = time.monotonic() - retried_at
        replay = second.request("POST", PAYMENTS, content=body, headers=headers)
    finally:
        second.kill()

    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert retry_took < DEADLINE  # issue 6: retried "within seconds", at most 60
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == retry.content
    assert db.fetchval("SELECT count(*) FROM payments WHERE account_id = $1", account_id) == 1
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id) == Decimal(10)
