"""GET /metrics (issue 9): Prometheus' text format, requests by route template, the database
pool, committed money moves, the delivery backlog and refused logins. The metrics are the
process's, shared by every app a test builds: the tests read differences.

Two workers adding up their metrics, on the real server: tests/test_logs.py (one `serve`
scenario checks the lines and the sums).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from accounts_api import metrics, metrics_directory
from accounts_api.auth import login
from accounts_api.auth.errors import Overloaded
from tests.api.conftest import account_body
from tests.conftest import Api, Db, client_for, free_port, settings_for

ACCOUNTS = "/api/rest/admin/accounts"
PAYMENTS = "/api/rest/admin/payments"
AUTH = "/api/rest/admin/auth"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return samples(response.text)


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def requests_of(scraped: Samples, route: str, method: str, status: int) -> float:
    labels = {"route": route, "method": method, "status": str(status)}
    return value(scraped, "accounts_api_http_requests_total", **labels)


def payment_body(account: object, amount: Any, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "payments",
            "attributes": {"amount": amount, **attributes},
            "relationships": {"account": {"data": {"type": "accounts", "id": str(account)}}},
        }
    }


@pytest.fixture
def account(api: Api, db: Db) -> int:
    contractor = db.fetchval(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('metrics-contractor', true, true, false) RETURNING id"
    )
    response = api.post(ACCOUNTS, account_body(contractor, name="metrics-account"))
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


def test_metrics_answer_the_prometheus_text_format_without_authentication(api: Api) -> None:
    response = api.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert response.headers["cache-control"] == "no-store"
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    ours = {name for name in families if name.startswith("accounts_api_")}
    assert {
        "accounts_api_http_requests",
        "accounts_api_http_request_duration_seconds",
        "accounts_api_db_pool_max_connections",
        "accounts_api_db_pool_open_connections",
        "accounts_api_db_pool_connections_in_use",
        "accounts_api_money_moves",
        "accounts_api_logins_throttled",
        "accounts_api_logins_overloaded",
        "accounts_api_backlog_up",
        "accounts_api_outbox_undispatched_events",
        "accounts_api_deliveries_pending",
    } <= ours
    assert all(families[name].documentation for name in ours)
    assert value(samples(response.text), "accounts_api_backlog_up") == 1


def test_requests_are_counted_by_route_template_method_and_status(api: Api, account: int) -> None:
    member = f"{ACCOUNTS}/{{key}}"
    before = scrape(api.client)

    for _ in range(3):
        assert api.get(f"{ACCOUNTS}/{account}").status_code == 200
    for _ in range(2):
        assert api.get(f"{ACCOUNTS}/{account + 1000}").status_code == 404
    assert api.get(ACCOUNTS, auth=False).status_code == 401

    after = scrape(api.client)
    assert requests_of(after, member, "GET", 200) - requests_of(before, member, "GET", 200) == 3
    assert requests_of(after, member, "GET", 404) - requests_of(before, member, "GET", 404) == 2
    assert requests_of(after, ACCOUNTS, "GET", 401) - requests_of(before, ACCOUNTS, "GET", 401) == 1
    # the histogram saw the same requests
    labels = {"route": member, "method": "GET", "status": "200"}
    count = "accounts_api_http_request_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 3
    # no path of a record is a label
    assert not any(f"/{account}" in dict(key[1]).get("route", "") for key in after)


def test_a_request_whose_forwarded_headers_are_dropped_keeps_its_route(
    api: Api, database_url: str
) -> None:
    """A peer that is no trusted proxy has its X-Forwarded-For removed from the scope
    (proxies.py); the route the router then matched is still the one counted."""
    before = scrape(api.client)

    with client_for(settings_for(database_url), peer="192.0.2.1") as client:
        response = client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})

    assert response.status_code == 200
    after = scrape(api.client)
    assert (
        requests_of(after, "/healthz", "GET", 200) - requests_of(before, "/healthz", "GET", 200)
        == 1
    )


def test_a_path_no_route_matches_is_counted_as_unmatched(api: Api) -> None:
    before = scrape(api.client)

    for path in ("/no/such/path", "/no/such/path/42", "/api/rest/admin/nothing-here"):
        assert api.get(path).status_code == 404

    after = scrape(api.client)
    unmatched = requests_of(after, metrics.UNMATCHED, "GET", 404)
    assert unmatched - requests_of(before, metrics.UNMATCHED, "GET", 404) == 3
    routes = {dict(labels).get("route") for _, labels in after}
    assert not any(route and "no/such" in route for route in routes)


def test_an_unknown_method_has_one_label(api: Api) -> None:
    before = scrape(api.client)

    api.client.request("BREW", "/healthz")

    after = scrape(api.client)
    assert (
        requests_of(after, "/healthz", "other", 405) - requests_of(before, "/healthz", "other", 405)
        == 1
    )


def moves(client: TestClient, kind: str) -> float:
    return value(scrape(client), "accounts_api_money_moves_total", kind=kind)


def test_money_moves_count_by_kind_when_they_commit(api: Api, account: int) -> None:
    payments, rollbacks = moves(api.client, "payment"), moves(api.client, "payment_rollback")
    corrections = moves(api.client, "correction")

    paid = api.post(PAYMENTS, payment_body(account, "10"))
    assert paid.status_code == 201, paid.text
    assert api.post(PAYMENTS, payment_body(account, "12.5")).status_code == 201
    rolled_back = api.post(f"{PAYMENTS}/{paid.json()['data']['id']}/rollback")
    assert rolled_back.status_code == 200, rolled_back.text
    corrected = api.put(
        f"{ACCOUNTS}/{account}/balance-correction",
        {
            "data": {
                "type": "balance-correction",
                "id": str(account),
                "attributes": {"correction": "-1"},
            }
        },
    )
    assert corrected.status_code == 200, corrected.text

    assert moves(api.client, "payment") - payments == 2
    assert moves(api.client, "payment_rollback") - rollbacks == 1
    assert moves(api.client, "correction") - corrections == 1


def test_a_refused_payment_is_not_counted(api: Api, account: int) -> None:
    before = moves(api.client, "payment")

    assert api.post(PAYMENTS, payment_body(account, "not a number")).status_code == 422
    assert api.post(PAYMENTS, payment_body(account + 1000, "5")).status_code == 422

    assert moves(api.client, "payment") == before


@pytest.fixture
def refused_at_commit(db: Db) -> Iterator[str]:
    """Payments with these notes fail at COMMIT (a deferred constraint trigger), after their
    balance moved inside the transaction."""
    notes = "metrics-test: refused at commit"
    db.execute(
        "CREATE FUNCTION metrics_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'lock_not_available'; END $$"
    )
    db.execute(
        "CREATE CONSTRAINT TRIGGER metrics_test_refuse AFTER INSERT ON payments"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
        f" WHEN (NEW.notes = '{notes}') EXECUTE FUNCTION metrics_test_refuse()"
    )
    try:
        yield notes
    finally:
        db.execute("DROP TRIGGER metrics_test_refuse ON payments")
        db.execute("DROP FUNCTION metrics_test_refuse()")


def test_a_payment_rolled_back_at_commit_is_not_counted(
    api: Api, db: Db, account: int, refused_at_commit: str
) -> None:
    before = moves(api.client, "payment")

    response = api.post(PAYMENTS, payment_body(account, "7", notes=refused_at_commit))

    assert response.status_code == 409, response.text
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", account) == 0
    assert moves(api.client, "payment") == before
    # the same request without the refusal counts
    assert api.post(PAYMENTS, payment_body(account, "7")).status_code == 201
    assert moves(api.client, "payment") == before + 1


def test_a_keyed_payment_counts_once_and_its_replay_not_again(api: Api, account: int) -> None:
    before = moves(api.client, "payment")
    headers = {"Idempotency-Key": "metrics-keyed-payment"}

    first = api.post(PAYMENTS, payment_body(account, "3"), headers=headers)
    replayed = api.post(PAYMENTS, payment_body(account, "3"), headers=headers)

    assert (first.status_code, replayed.status_code) == (201, 201)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert moves(api.client, "payment") == before + 1


def test_backlog_gauges_count_undispatched_events_and_pending_deliveries(api: Api, db: Db) -> None:
    def event(dispatched: bool) -> int:
        return int(
            db.fetchval(
                "INSERT INTO outbox (account_id, event, data, dispatched_at)"
                " VALUES (1, 'AccountLowThesholdReached', '{}',"
                " CASE WHEN $1 THEN now() END) RETURNING id",
                dispatched,
            )
        )

    for _ in range(3):
        event(dispatched=False)
    sent = event(dispatched=True)
    for status in ("pending", "delivered", "failed"):
        db.execute(
            "INSERT INTO email_deliveries (outbox_id, to_address, subject, body, status)"
            " VALUES ($1, 'ops@example.com', 's', 'b', $2)",
            sent,
            status,
        )
    for status in ("pending", "pending", "delivered"):
        db.execute(
            "INSERT INTO webhook_deliveries (outbox_id, webhook_id, event, url, body, status)"
            " VALUES ($1, 'msg_1', 'AccountLowThesholdReached', 'http://hook.example', '{}', $2)",
            sent,
            status,
        )

    scraped = scrape(api.client)

    assert value(scraped, "accounts_api_backlog_up") == 1
    assert value(scraped, "accounts_api_outbox_undispatched_events") == 3
    assert value(scraped, "accounts_api_deliveries_pending", channel="email") == 1
    assert value(scraped, "accounts_api_deliveries_pending", channel="webhook") == 2


def test_without_the_database_metrics_still_answer(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    with client_for(settings_for(nowhere, acquire_timeout=1.0)) as client:
        assert client.get("/healthz").status_code == 200
        with caplog.at_level("WARNING", logger="accounts_api.metrics"):
            scraped = scrape(client)

    assert value(scraped, "accounts_api_backlog_up") == 0
    assert ("accounts_api_outbox_undispatched_events", frozenset()) not in scraped
    assert requests_of(scraped, "/healthz", "GET", 200) >= 1
    assert "backlog could not be read" in caplog.text


def test_pool_gauges_follow_the_pools_of_the_process(database_url: str) -> None:
    with client_for(settings_for(database_url)) as client:
        baseline = scrape(client)
    with client_for(settings_for(database_url, pool_size=3)) as client:
        assert client.get("/readyz").status_code == 200
        running = scrape(client)
    after = scrape_elsewhere(database_url)

    max_name, open_name = (
        "accounts_api_db_pool_max_connections",
        "accounts_api_db_pool_open_connections",
    )
    in_use = "accounts_api_db_pool_connections_in_use"
    # the baseline's app (pool_size 2) was running at its scrape: this one adds 3 instead
    assert value(running, max_name) - value(baseline, max_name) == 3 - 2
    assert value(running, open_name) >= 1
    # between requests nothing is borrowed but the scrape's own backlog read, returned by now
    assert value(running, in_use) == value(baseline, in_use)
    # closed pools leave the sums
    assert value(after, max_name) == value(baseline, max_name)


def scrape_elsewhere(database_url: str) -> Samples:
    """A scrape by an app of its own, taken away (with its pool) from the sums it reports."""
    with client_for(settings_for(database_url)) as client:
        return scrape(client)


@pytest.fixture
def login_client(database_url: str, clean_database: None) -> Iterator[TestClient]:
    with client_for(settings_for(database_url, login_max_failures=1)) as client:
        yield client


def throttled(client: TestClient, scope: str) -> float:
    return value(scrape(client), "accounts_api_logins_throttled_total", scope=scope)


def test_throttled_logins_are_counted_by_scope(login_client: TestClient) -> None:
    def log_in(username: str) -> int:
        body = {"auth": {"username": username, "password": "wrong"}}
        return login_client.post(AUTH, json=body).status_code

    usernames, addresses = throttled(login_client, "username"), throttled(login_client, "address")

    assert log_in("metrics-nobody") == 401
    # that username's limit and the address's are both reached: the username's counts
    assert log_in("metrics-nobody") == 429
    # another username from the same address: the address's limit
    assert log_in("metrics-somebody-else") == 429

    assert throttled(login_client, "username") - usernames == 1
    assert throttled(login_client, "address") - addresses == 1


def test_logins_refused_for_overload_are_counted(api: Api) -> None:
    before = value(scrape(api.client), "accounts_api_logins_overloaded_total")

    assert login._refused(Overloaded()).status_code == 503

    assert value(scrape(api.client), "accounts_api_logins_overloaded_total") == before + 1


# -- the multiprocess directory --------------------------------------------------------------


def test_an_operators_directory_is_emptied_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prometheus"
    (directory / "old").mkdir(parents=True)
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "old" / "gauge_livesum_123.db").write_bytes(b"stale")
    monkeypatch.setenv(metrics_directory.VARIABLE, str(directory))

    assert metrics_directory.prepare_multiprocess_directory() == directory

    assert directory.is_dir()
    assert list(directory.iterdir()) == []
    assert os.environ[metrics_directory.VARIABLE] == str(directory)


def test_a_private_directory_of_a_process_that_is_gone_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    abandoned = tmp_path / f"{metrics_directory.PREFIX}{gone.stdout.strip()}-abcd1234"
    kept = tmp_path / f"{metrics_directory.PREFIX}{os.getpid()}-efgh5678"
    for path in (abandoned, kept):
        path.mkdir()
        (path / "counter_1.db").write_bytes(b"x")

    metrics_directory._remove_abandoned(tmp_path)

    assert not abandoned.exists()
    assert kept.exists()


def test_the_cli_does_not_import_prometheus_client_before_serve_prepares_its_directory() -> None:
    # prometheus_client picks its mode once, at import: `serve` must set the variable first
    code = "import sys, accounts_api.cli; sys.exit('prometheus_client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
