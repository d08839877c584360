"""Liveness and readiness (issue 6): /healthz answers without the database, /readyz says
whether the database answers and its schema is at head."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from accounts_api.app import create_app
from accounts_api.db import migrate
from tests.conftest import Db, run, scratch_database, settings_for


def client_for(database_url: str) -> TestClient:
    return TestClient(create_app(settings_for(database_url, acquire_timeout=2.0)))


def free_port() -> int:
    async def probe() -> int:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port: int = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return port

    return int(run(probe()))


@pytest.fixture
def unmigrated_url(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "accounts_api_test_unmigrated") as url:
        yield url


def test_healthz_answers_without_authentication(app_client: TestClient) -> None:
    response = app_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_healthz_answers_while_the_database_is_unreachable() -> None:
    with client_for(f"postgresql://nobody@127.0.0.1:{free_port()}/none") as client:
        assert client.get("/healthz").status_code == 200


def test_readyz_is_ok_when_the_schema_is_at_head(app_client: TestClient) -> None:
    response = app_client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "migrations": migrate.head_revision()}


def test_readyz_is_503_while_the_database_is_unreachable() -> None:
    with client_for(f"postgresql://nobody@127.0.0.1:{free_port()}/none") as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.headers["retry-after"] == "5"


def test_readyz_is_503_until_the_migrations_are_applied(unmigrated_url: str) -> None:
    with client_for(unmigrated_url) as client:
        before = client.get("/readyz")
        migrate.upgrade(unmigrated_url)
        after = client.get("/readyz")

    assert before.status_code == 503
    assert before.json() == {
        "status": "unavailable",
        "database": "reachable",
        "migrations": f"at none, head is {migrate.head_revision()}",
    }
    assert after.status_code == 200, after.text


def test_readyz_stays_ready_on_a_schema_a_newer_release_migrated(unmigrated_url: str) -> None:
    """A rolling upgrade: `migrate` of the next release ran, this instance is not restarted
    yet. Failing it would take every old instance out of the balancer at once."""
    migrate.upgrade(unmigrated_url)
    db = Db(unmigrated_url)
    db.execute("UPDATE alembic_version SET version_num = '9999'")
    with client_for(unmigrated_url) as client:
        ahead = client.get("/readyz")
        # an older revision this release knows is still not ready
        db.execute("UPDATE alembic_version SET version_num = '0001'")
        behind = client.get("/readyz")
    db.close()

    assert ahead.status_code == 200, ahead.text
    assert ahead.json() == {
        "status": "ok",
        "migrations": "9999",
        "release_head": migrate.head_revision(),
    }
    assert behind.status_code == 503
    assert behind.json()["migrations"] == f"at 0001, head is {migrate.head_revision()}"
