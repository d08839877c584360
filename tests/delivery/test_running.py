"""Where delivery runs: `accounts-api worker`, a process of its own that delivers until SIGTERM,
then exits 0 (killed with SIGKILL mid-delivery, it leaves the delivery pending for the next
worker, which sends it with the same webhook-id); and the app itself, when its settings say
so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from accounts_api.app import create_app
from accounts_api.delivery.worker import APPLICATION_NAME
from tests.conftest import Db, settings_for, wait_until
from tests.delivery.conftest import Arrange
from tests.delivery.servers import DEADLINE, Receiver, worker_running

CLI = str(Path(sys.executable).parent / "accounts-api")


class WorkerProcess:
    def __init__(self, database_url: str, log: Path, **env: str):
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("ACCOUNTS_API_")
        }
        environment.update(DATABASE_URL=database_url, ACCOUNTS_API_DELIVERY_RETRY_BASE="0.05")
        environment.update(env)
        self.log = log
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [CLI, "worker"],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )

    @property
    def stderr(self) -> str:
        return self.log.read_text()

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit:\n{self.stderr}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=DEADLINE)


@pytest.fixture
def start_worker(database_url: str, tmp_path: Path) -> Iterator[type[WorkerProcess]]:
    started: list[WorkerProcess] = []

    class Started(WorkerProcess):
        def __init__(self, **env: str):
            super().__init__(database_url, tmp_path / f"worker-{len(started)}.log", **env)
            started.append(self)

    yield Started
    for worker in started:
        worker.kill()


def sessions(db: Db) -> int:
    return int(
        db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )
    )


def test_worker_delivers_until_sigterm_then_exits_cleanly(
    arrange: Arrange, receiver: Receiver, db: Db, start_worker: type[WorkerProcess]
) -> None:
    arrange.subscribe(url=receiver.url)
    worker = start_worker()
    arrange.webhook()

    assert wait_until(lambda: arrange.statuses() == ["delivered"]), worker.stderr
    worker.process.send_signal(signal.SIGTERM)

    assert worker.wait() == 0, worker.stderr
    assert "Stopped delivering notifications." in worker.stderr
    assert wait_until(lambda: sessions(db) == 0)
    assert len(receiver.requests) == 1


def test_a_worker_killed_mid_delivery_leaves_it_to_the_next_under_the_same_id(
    arrange: Arrange, db: Db, database_url: str, start_worker: type[WorkerProcess]
) -> None:
    receiver = Receiver(stall_first=True)
    arrange.subscribe(url=receiver.url)
    arrange.webhook()
    with receiver:
        first = start_worker(ACCOUNTS_API_DELIVERY_TIMEOUT="30")
        assert wait_until(lambda: receiver.stalled), first.stderr

        os.kill(first.process.pid, signal.SIGKILL)
        first.wait()
        # PostgreSQL ends the dead worker's session, and its transaction with its claim
        assert wait_until(lambda: sessions(db) == 0)
        [row] = arrange.webhook_deliveries()
        assert (row["status"], row["attempts"]) == ("pending", 0)
        assert arrange.attempts(row["id"]) == []
        receiver.release()

        with worker_running(database_url):
            assert wait_until(lambda: arrange.statuses() == ["delivered"])

    first_request, second_request = receiver.requests
    assert first_request.webhook_id == second_request.webhook_id == row["webhook_id"]
    assert first_request.body == second_request.body
    [attempt] = arrange.attempts(row["id"])
    assert (attempt["attempt"], attempt["response_status"]) == (1, 200)


def test_serve_delivers_by_itself_when_the_settings_say_so(
    arrange: Arrange, receiver: Receiver, database_url: str
) -> None:
    arrange.subscribe(url=receiver.url)
    settings = settings_for(database_url, deliver=True, delivery_retry_base=0.05)
    with TestClient(create_app(settings)):
        arrange.webhook()
        assert wait_until(lambda: arrange.statuses() == ["delivered"])


def test_the_test_apps_do_not_deliver(
    arrange: Arrange, receiver: Receiver, database_url: str
) -> None:
    arrange.subscribe(url=receiver.url)
    with TestClient(create_app(settings_for(database_url))):
        arrange.webhook()
    assert arrange.statuses() == []
    assert arrange.db.fetchval("SELECT count(*) FROM outbox WHERE dispatched_at IS NULL") == 1
