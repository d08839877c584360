"""The delivery worker in process: woken by NOTIFY, sharing the work with other workers without
ever sending one delivery twice at once, surviving a lost database connection."""

from __future__ import annotations

import dataclasses

from accounts_api.delivery.worker import APPLICATION_NAME
from tests.conftest import Db, wait_until
from tests.delivery.conftest import Arrange
from tests.delivery.servers import QUICK, Receiver, worker_running

# a poll so rare that a test passing within the deadline was woken by NOTIFY
NEVER = 3600.0


def worker_sessions(db: Db) -> int:
    return int(
        db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            # this database's: another test run may share the server
            " WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )
    )


def all_delivered(arrange: Arrange, count: int) -> bool:
    statuses = arrange.statuses()
    return len(statuses) == count and set(statuses) == {"delivered"}


def test_an_event_is_dispatched_and_sent_when_its_write_commits(
    arrange: Arrange, receiver: Receiver, database_url: str
) -> None:
    arrange.subscribe(url=receiver.url)
    with worker_running(database_url, dataclasses.replace(QUICK, poll_interval=NEVER)):
        # the worker's first look happens at start; what follows comes by NOTIFY alone
        assert wait_until(lambda: worker_sessions(arrange.db) == 1 + QUICK.senders)
        arrange.webhook(account_id=1)
        assert wait_until(lambda: all_delivered(arrange, 1))
        arrange.webhook(account_id=2)
        assert wait_until(lambda: all_delivered(arrange, 2))

    assert len(receiver.requests) == 2


def test_two_workers_never_send_one_delivery_twice(arrange: Arrange, database_url: str) -> None:
    # every third webhook fails its first attempt, so that retries are shared out too
    receiver = Receiver(
        answer=lambda webhook_id, n: 500 if n == 1 and int(webhook_id[-1], 16) % 3 == 0 else 200,
        delay=0.01,
    )
    arrange.subscribe(url=receiver.url)
    count = 40
    arrange.emit(*[("AccountLowThesholdReached", n, {"id": n}) for n in range(count)])
    config = dataclasses.replace(QUICK, senders=3)

    with receiver, worker_running(database_url, config), worker_running(database_url, config):
        assert wait_until(lambda: all_delivered(arrange, count))

    assert receiver.overlaps == 0
    by_id = receiver.by_id()
    assert len(by_id) == count
    for requests in by_id.values():
        # after a 2xx never again; before it only the planned failure
        assert [request.status for request in requests] in ([200], [500, 200])
    attempts = arrange.db.fetchval("SELECT count(*) FROM webhook_attempts")
    assert attempts == len(receiver.requests)


def test_a_lost_database_connection_is_reopened(
    arrange: Arrange, receiver: Receiver, database_url: str, db: Db
) -> None:
    arrange.subscribe(url=receiver.url)
    with worker_running(database_url):
        arrange.webhook(account_id=1)
        assert wait_until(lambda: all_delivered(arrange, 1))

        killed = db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            # this database's: another test run may share the server
            " WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )
        assert killed == 1 + QUICK.senders
        arrange.webhook(account_id=2)

        assert wait_until(lambda: all_delivered(arrange, 2))

    assert len(receiver.requests) == 2
