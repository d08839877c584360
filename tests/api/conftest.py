"""Arrangement helpers for the HTTP-level tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from accounts_api.app import create_app
from tests.conftest import Api, Db, settings_for
from tests.test_cli import free_port

# a real server is up in well under a second; the machine is shared, so wait generously
STARTUP_DEADLINE = 30.0


def account_body(contractor_id: int, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "accounts",
            "attributes": {"name": "acme-usd", "currency": "USD", **attributes},
            "relationships": {
                "contractor": {"data": {"type": "contractors", "id": str(contractor_id)}}
            },
        }
    }


@pytest.fixture
def make_contractor(db: Db) -> Callable[..., int]:
    counter = iter(range(1, 10_000))

    def make(**columns: Any) -> int:
        values = {
            "name": f"contractor{next(counter)}",
            "enabled": True,
            "vendor": True,
            "customer": False,
        }
        values.update(columns)
        names = list(values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        return int(
            db.fetchval(
                f"INSERT INTO contractors ({', '.join(names)})"
                f" VALUES ({placeholders}) RETURNING id",
                *values.values(),
            )
        )

    return make


@pytest.fixture
def contractor_id(make_contractor: Callable[..., int]) -> int:
    return make_contractor()


@pytest.fixture
def make_account(api: Api, contractor_id: int) -> Callable[..., dict[str, Any]]:
    counter = iter(range(1, 10_000))

    def make(**attributes: Any) -> dict[str, Any]:
        attributes.setdefault("name", f"account{next(counter)}")
        response = api.post("/api/rest/admin/accounts", account_body(contractor_id, **attributes))
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    return make


@pytest.fixture(scope="module")
def server_url(database_url: str, admin_id: int) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread of the test process, on the
    test database: for real clients, which speak HTTP over a socket."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings_for(database_url)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_DEADLINE
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(STARTUP_DEADLINE)
