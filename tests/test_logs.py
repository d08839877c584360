"""The service's log lines (issue 9): ACCOUNTS_API_LOG_FORMAT=json makes every line of `serve`
one JSON object, the access log's with the request's fields; text stays the default. No line
shows a token or a password.

The JSON scenario runs two workers and also checks that /metrics adds up both workers'
counts, whichever answers (prometheus_client's multiprocess mode, metrics.py).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts_api import logs
from accounts_api.settings import ConfigurationError, Settings
from tests.conftest import SECRET, Db, an_admin, wait_until
from tests.test_cli import ACCOUNTS, AUTH, Service, serving, token_of
from tests.test_metrics import samples, value

OBSERVED = "logs-observed-admin"
# distinctive: it must not be found in any line
PASSWORD = "Pw-for-the-logs-test-5f2c9e"


@pytest.fixture
def observed_admin(db: Db) -> Iterator[int]:
    with an_admin(db, OBSERVED, PASSWORD) as admin:
        yield admin


def start(tmp_path: Path, database_url: str, *args: str, **env: str) -> Service:
    return serving(
        tmp_path / "data",
        *args,
        DATABASE_URL=database_url,
        ACCOUNTS_API_SECRET_KEY=SECRET,
        # the outbox of the shared test database is other tests' business
        ACCOUNTS_API_DELIVERY="off",
        # where the private metrics directory is made (and must be gone after)
        TMPDIR=str(tmp_path),
        **env,
    )


def lines_of(service: Service) -> list[str]:
    return [line for line in service.stderr.splitlines() if line.strip()]


def access_lines(service: Service, route: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in lines_of(service)]
    return [
        line for line in lines if line["logger"] == "accounts_api.access" and line["route"] == route
    ]


def metrics_directories(tmp_path: Path) -> list[Path]:
    return list(tmp_path.glob("accounts-api-metrics-*"))


def test_json_lines_from_two_workers_and_their_metrics_added_up(
    tmp_path: Path, database_url: str, observed_admin: int
) -> None:
    service = start(tmp_path, database_url, "--workers", "2", ACCOUNTS_API_LOG_FORMAT="json")
    try:
        assert len(metrics_directories(tmp_path)) == 1
        # both workers answer some: new connections until each has written an access line
        health = 0
        processes: set[int] = set()
        while len(processes) < 2 and health < 400:
            for _ in range(10):
                assert service.request("GET", "/healthz").status_code == 200
            health += 10
            assert wait_until(lambda n=health: len(access_lines(service, "/healthz")) == n)
            processes = {line["process"] for line in access_lines(service, "/healthz")}
        assert len(processes) == 2, f"one worker answered all {health} requests"

        def healthz_count() -> float:
            scraped = samples(service.request("GET", "/metrics").text)
            labels = {"route": "/healthz", "method": "GET", "status": "200"}
            return value(scraped, "accounts_api_http_requests_total", **labels)

        # whichever worker answers the scrape, the count is both workers' (exactly)
        assert wait_until(lambda: healthz_count() == health), healthz_count()
        pool_max = value(
            samples(service.request("GET", "/metrics").text),
            "accounts_api_db_pool_max_connections",
        )
        assert pool_max == 2 * 10  # ACCOUNTS_API_DB_POOL_SIZE per live worker

        jwt = token_of(service.login(PASSWORD, OBSERVED))
        listed = service.request(
            "GET", ACCOUNTS, params={"token": jwt}, headers={"x-request-id": "logs-test-1"}
        )
        assert listed.status_code == 200, listed.text
        by_header = service.request("GET", ACCOUNTS, headers={"Authorization": jwt})
        assert by_header.status_code == 200
        assert wait_until(lambda: len(access_lines(service, ACCOUNTS)) >= 2)
        service.stop(signal.SIGTERM)
    finally:
        service.kill()

    output = service.stderr
    lines = [json.loads(line) for line in lines_of(service)]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert all(line["time"].endswith("Z") for line in lines)
    assert not any("color_message" in line for line in lines)
    # uvicorn's own lines and the command's are JSON too
    messages = [line["message"] for line in lines]
    assert any(m.startswith("Started server process") for m in messages)
    assert any(m.startswith("Serving on http://127.0.0.1") for m in messages)
    assert any(m.startswith("Finished server process") for m in messages)

    # (the 401s before are the readiness probe's)
    by_token, by_authorization = [
        line for line in access_lines_of(lines, ACCOUNTS) if line["status"] == 200
    ]
    assert by_token["request_id"] == "logs-test-1" == listed.headers["x-request-id"]
    assert by_authorization["request_id"] == by_header.headers["x-request-id"]
    for line in (by_token, by_authorization):
        assert line["admin_id"] == observed_admin
        assert (line["method"], line["path"], line["status"]) == ("GET", ACCOUNTS, 200)
        assert line["client"] == "127.0.0.1"
        assert line["duration_ms"] >= 0
    (login,) = access_lines_of(lines, AUTH)
    assert login["status"] == 201 and "admin_id" not in login
    assert "token=[FILTERED]" in by_token["message"]
    assert jwt not in output
    assert jwt.split(".")[2] not in output
    assert PASSWORD not in output
    # the private metrics directory went with the service
    assert metrics_directories(tmp_path) == []


def access_lines_of(lines: list[dict[str, Any]], route: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("route") == route]


def test_text_lines_are_for_a_terminal_and_hide_tokens(
    tmp_path: Path, database_url: str, observed_admin: int
) -> None:
    service = start(tmp_path, database_url)
    try:
        jwt = token_of(service.login(PASSWORD, OBSERVED))
        listed = service.request("GET", ACCOUNTS, params={"token": jwt, "page[size]": "1"})
        assert listed.status_code == 200, listed.text
        # one worker, in the private directory: its counts are served too
        labels = {"route": ACCOUNTS, "method": "GET", "status": "200"}

        def listed_count() -> float:
            scraped = samples(service.request("GET", "/metrics").text)
            return value(scraped, "accounts_api_http_requests_total", **labels)

        assert wait_until(lambda: listed_count() == 1), listed_count()
        assert wait_until(lambda: "accounts_api.access" in service.stderr)
        service.stop(signal.SIGTERM)
    finally:
        service.kill()

    lines = lines_of(service)
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    access = [line for line in lines if "accounts_api.access" in line and ACCOUNTS in line]
    assert access, service.stderr
    assert f'"GET {ACCOUNTS}?token=[FILTERED]&page%5Bsize%5D=1" 200 ' in access[-1]
    assert jwt not in service.stderr
    assert PASSWORD not in service.stderr
    assert metrics_directories(tmp_path) == []


def test_the_log_format_is_text_or_json() -> None:
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"ACCOUNTS_API_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigurationError, match="ACCOUNTS_API_LOG_FORMAT"):
        Settings.from_env({"ACCOUNTS_API_LOG_FORMAT": "xml"})


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        (
            '"GET /api/rest/admin/accounts?token=eyJ.abc.def&page=2" 200',
            '"GET /api/rest/admin/accounts?token=[FILTERED]&page=2" 200',
        ),
        ('{"path": "/x?page=1&token=abc"}', '{"path": "/x?page=1&token=[FILTERED]"}'),
        (
            "Authorization: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.c2lnbmF0dXJl seen",
            "Authorization: [FILTERED] seen",
        ),
        ("nothing secret?page=2", "nothing secret?page=2"),
    ],
)
def test_redact_hides_tokens_in_any_line(line: str, redacted: str) -> None:
    assert logs.redact(line) == redacted
