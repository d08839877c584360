"""The `accounts-api` console script (issue 2, items 1-3), run for real in subprocesses.

With DATABASE_URL unset every command starts (or attaches to) the embedded PostgreSQL under
ACCOUNTS_API_DATA_DIR and stops it on exit; with DATABASE_URL set nothing is started.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx2 as httpx
import psutil
import pytest

from accounts_api import cli as cli_module
from accounts_api.auth import tokens
from accounts_api.auth.passwords import hash_password, verify_password
from accounts_api.db import embedded, migrate
from accounts_api.settings import VARIABLES
from tests.api.conftest import account_body
from tests.conftest import (
    RESTRICTED,
    RESTRICTED_PASSWORD,
    SECRET,
    Api,
    Db,
    an_admin,
    free_port,
    lock_waiters,
    run,
    wait_until,
)

CLI = str(Path(sys.executable).parent / "accounts-api")
TIMEOUT = 60
# generous: CI runs on 2 loaded cores, and a deadline only bounds a failing test
STOP_TIMEOUT = 30  # for the embedded server to be gone once its last process exited
EXIT_TIMEOUT = 60
SCRATCH = "accounts_api_scratch_cli"
AUTH = "/api/rest/admin/auth"
ACCOUNTS = "/api/rest/admin/accounts"

# Attaches to the embedded server of a data dir, prints the rows of one query as JSON.
QUERY = """
import asyncio, json, sys
from pathlib import Path
import asyncpg
from accounts_api.db import embedded

async def main(url):
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(sys.argv[2])
    finally:
        await connection.close()
    print(json.dumps([dict(row) for row in rows], default=str))

asyncio.run(main(embedded.start(Path(sys.argv[1]))))
"""


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "ACCOUNTS_API_SECRET_KEY", "ACCOUNTS_API_TOKEN_LIFETIME")
    }
    env["ACCOUNTS_API_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def cli(
    data_dir: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        env=environment(data_dir, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def query(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    """Rows from the embedded database of `data_dir`, through a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", QUERY, str(data_dir), sql],
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


async def _execute(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(sql, *args)  # type: ignore[no-any-return]
    finally:
        await connection.close()


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError):
        return None


def server_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_no_server(data_dir: Path, pid: int | None = None) -> None:
    """No embedded server left running for `data_dir` (within a few seconds)."""
    assert wait_until(lambda: postmaster_pid(data_dir) is None, STOP_TIMEOUT), (
        f"embedded server still running: postmaster.pid {postmaster_pid(data_dir)}"
    )
    if pid is not None:
        assert wait_until(lambda: not server_running(pid), STOP_TIMEOUT)


def stop_leftover_server(data_dir: Path) -> None:
    pid = postmaster_pid(data_dir)
    if pid is not None and server_running(pid):
        psutil.Process(pid).send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
        wait_until(lambda: not server_running(pid), STOP_TIMEOUT)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    stop_leftover_server(path)
    shutil.rmtree(path, ignore_errors=True)  # a cluster is ~40 MB


# Attaches to the embedded server of a data dir, reports it, then holds it until stdin closes.
HOLD = """
import json, sys
from pathlib import Path
from accounts_api.db import embedded
url = embedded.start(Path(sys.argv[1]))
print(json.dumps({"url": url}), flush=True)
sys.stdin.read()
"""


class Migrated:
    """A data dir set up by `accounts-api migrate`, whose server a helper process then holds so
    that the create-admin tests attach to a running server (as while the service runs)."""

    def __init__(self, path: Path):
        self.path = path
        self.migrate = cli(path, "migrate")
        self.pid_after_migrate = postmaster_pid(path)
        self.holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path)],
            env=environment(path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert self.holder.stdout is not None
            line = self.holder.stdout.readline()
            assert line, "the holder could not attach"
        except BaseException:
            self.close()
            raise
        self.url: str = json.loads(line)["url"]
        self.pid = postmaster_pid(path)

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return run(_fetch(self.url, sql, *args))  # type: ignore[no-any-return]

    def assert_server_kept(self) -> None:
        """The command attached to the running server, and its exit left it running."""
        assert self.pid is not None
        assert postmaster_pid(self.path) == self.pid
        assert server_running(self.pid)

    def close(self) -> None:
        try:
            self.holder.communicate(timeout=TIMEOUT)  # closes stdin: a normal exit
        finally:
            if self.holder.poll() is None:
                self.holder.kill()
                self.holder.communicate(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    path = tmp_path_factory.mktemp("migrated") / "data"
    setup: Migrated | None = None
    try:
        setup = Migrated(path)
        yield setup
    finally:
        if setup is not None:
            setup.close()
        stop_leftover_server(path)
        shutil.rmtree(path, ignore_errors=True)


class Service:
    """`accounts-api serve` in the background, answering on 127.0.0.1:<port>."""

    def __init__(self, data_dir: Path, *args: str, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [CLI, "serve", "--port", str(self.port), *args],
                env=environment(data_dir, **env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )

    @property
    def stderr(self) -> str:
        return self.log.read_text()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            return client.request(method, path, **kwargs)

    def wait_until_answering(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited {self.process.returncode}:\n{self.stderr}")
            try:
                self.request("GET", ACCOUNTS)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        pytest.fail(f"serve did not answer within {TIMEOUT} s:\n{self.stderr}")

    def login(self, password: str, username: str = "admin") -> httpx.Response:
        return self.request(
            "POST", AUTH, json={"auth": {"username": username, "password": password}}
        )

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not exit on {sig.name}:\n{self.stderr}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=TIMEOUT)


def serving(data_dir: Path, *args: str, **env: str) -> Service:
    service = Service(data_dir, *args, **env)
    try:
        service.wait_until_answering()
    except BaseException:
        service.kill()
        raise
    return service


def token_of(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    jwt: str = response.json()["jwt"]
    return jwt


# --- migrate ------------------------------------------------------------------------------


def test_migrate_starts_the_embedded_server_and_stops_it_on_exit(migrated: Migrated) -> None:
    done = migrated.migrate

    assert done.returncode == 0, done.stderr
    assert "Starting embedded PostgreSQL" in done.stderr
    assert "Attaching" not in done.stderr
    every = migrate.revisions()
    assert f"Applied {len(every)} migrations ({', '.join(every)})" in done.stderr
    assert f"the database is at {migrate.head_revision()}." in done.stderr
    assert (migrated.path / "pgdata" / "PG_VERSION").is_file()
    assert migrated.pid_after_migrate is None  # stopped on exit
    # the schema is there for the next process
    rows = migrated.fetch("SELECT id, name FROM currencies")
    assert [tuple(row) for row in rows] == [(0, "USD")]


# --- create-admin -------------------------------------------------------------------------


def admin_row(migrated: Migrated, username: str) -> asyncpg.Record | None:
    rows = migrated.fetch(
        "SELECT password_hash, allowed_ips::text[] AS allowed_ips FROM admin_users"
        " WHERE username = $1",
        username,
    )
    return rows[0] if rows else None


def test_create_admin_with_allowed_networks(migrated: Migrated) -> None:
    done = cli(
        migrated.path,
        "create-admin",
        "bob",
        "--password",
        "secret",
        "--allowed-ip",
        "10.0.0.0/8",
        "--allowed-ip",
        "192.168.1.1",
    )

    assert done.returncode == 0, done.stderr
    assert "Created admin user 'bob'" in done.stderr
    migrated.assert_server_kept()
    row = admin_row(migrated, "bob")
    assert row is not None
    assert row["allowed_ips"] == ["10.0.0.0/8", "192.168.1.1/32"]
    assert verify_password(row["password_hash"], "secret")


def test_create_admin_reads_the_password_from_stdin(migrated: Migrated) -> None:
    done = cli(migrated.path, "create-admin", "dave", "--password-stdin", stdin="s3cret pass\n")

    assert done.returncode == 0, done.stderr
    row = admin_row(migrated, "dave")
    assert row is not None
    assert row["allowed_ips"] is None
    assert verify_password(row["password_hash"], "s3cret pass")


def test_create_admin_refuses_a_duplicate(migrated: Migrated) -> None:
    migrated.fetch(
        "INSERT INTO admin_users (username, password_hash) VALUES ('carol', $1)",
        hash_password("one"),
    )

    again = cli(migrated.path, "create-admin", "carol", "--password", "two")

    assert again.returncode == 1
    assert "error: admin user 'carol' already exists" in again.stderr
    # the way out is named
    assert "accounts-api set-password carol" in again.stderr
    # it attached to the running server, and said so
    assert "Attaching to the embedded PostgreSQL running in" in again.stderr
    assert "Starting embedded PostgreSQL" not in again.stderr
    assert "Traceback" not in again.stderr
    migrated.assert_server_kept()
    row = admin_row(migrated, "carol")
    assert row is not None
    assert verify_password(row["password_hash"], "one")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["erin", "--password", ""], "error: a password is required"),
        (["erin", "--password", "x", "--allowed-ip", "not-an-ip"], "not-an-ip"),
    ],
    ids=["empty-password", "bad-network"],
)
def test_create_admin_rejects_bad_arguments(
    migrated: Migrated, args: list[str], message: str
) -> None:
    done = cli(migrated.path, "create-admin", *args)

    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert admin_row(migrated, "erin") is None


def test_create_admin_on_a_fresh_data_dir(data_dir: Path) -> None:
    """The embedded default runs on a bare machine: the first command may be create-admin."""
    done = cli(data_dir, "create-admin", "frank", "--password", "secret")

    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert_no_server(data_dir)
    rows = query(data_dir, "SELECT username FROM admin_users")
    assert rows == [{"username": "frank"}]


# --- serve --------------------------------------------------------------------------------


def test_serve_first_run_bootstraps_an_admin_shares_its_server_and_stops_on_sigterm(
    data_dir: Path,
) -> None:
    service = serving(data_dir)
    try:
        password = (data_dir / "admin_password").read_text().strip()
        assert password
        assert (data_dir / "admin_password").stat().st_mode & 0o777 == 0o600
        # printed once, on stderr
        assert service.stderr.count(password) == 1
        assert "Created admin user 'admin'" in service.stderr
        # where the password is kept, and how to change it
        assert f"kept in {data_dir / 'admin_password'}" in service.stderr
        assert "accounts-api set-password admin" in service.stderr
        assert f"Serving on http://127.0.0.1:{service.port} with 1 worker(s)" in service.stderr

        token = token_of(service.login(password))
        assert service.login("wrong").status_code == 401

        key = data_dir / "secret_key"
        assert key.stat().st_mode & 0o777 == 0o600
        assert len(key.read_text().strip()) >= 32

        pid = postmaster_pid(data_dir)
        assert pid is not None and server_running(pid)

        # a second command while the service runs uses the running server and leaves it up
        done = cli(data_dir, "migrate")
        assert done.returncode == 0, done.stderr
        assert "Attaching to the embedded PostgreSQL running in" in done.stderr
        assert f"No migrations to apply: the database is at {migrate.head_revision()}." in (
            done.stderr
        )
        assert postmaster_pid(data_dir) == pid
        assert server_running(pid)
        listed = service.request("GET", ACCOUNTS, headers={"Authorization": token})
        assert listed.status_code == 200, listed.text

        # the way a service manager (systemd, docker) stops it
        service.stop(signal.SIGTERM)
        assert "Traceback" not in service.stderr, service.stderr
        assert_no_server(data_dir, pid)
    finally:
        service.kill()


def test_serve_with_two_workers_then_a_restart_reuses_the_secret_key_and_the_admin(
    data_dir: Path,
) -> None:
    first = serving(data_dir, "--workers", "2")
    try:
        assert "with 2 worker(s)" in first.stderr
        password = (data_dir / "admin_password").read_text().strip()
        tokens = [token_of(first.login(password)) for _ in range(3)]
        for token in tokens:
            listed = first.request("GET", ACCOUNTS, headers={"Authorization": token})
            assert listed.status_code == 200, listed.text
        key = (data_dir / "secret_key").read_text()
        pid = postmaster_pid(data_dir)
        first.stop(signal.SIGTERM)
        assert "Traceback" not in first.stderr, first.stderr
    finally:
        first.kill()
    assert_no_server(data_dir, pid)

    second = serving(data_dir)
    try:
        assert "Created admin user" not in second.stderr
        assert password not in second.stderr
        assert (data_dir / "admin_password").read_text().strip() == password
        assert (data_dir / "secret_key").read_text() == key
        # a token from the first run is still valid
        listed = second.request("GET", ACCOUNTS, headers={"Authorization": tokens[0]})
        assert listed.status_code == 200, listed.text
        pid = postmaster_pid(data_dir)
        second.stop(signal.SIGINT)
        assert "Traceback" not in second.stderr, second.stderr
    finally:
        second.kill()
    assert_no_server(data_dir, pid)


# --- DATABASE_URL -------------------------------------------------------------------------


@pytest.fixture
def scratch_url(database_url: str) -> Iterator[str]:
    server = embedded.with_database(database_url, "postgres")
    run(_execute(server, f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)"))
    run(_execute(server, f"CREATE DATABASE {SCRATCH}"))
    try:
        yield embedded.with_database(database_url, SCRATCH)
    finally:
        run(_execute(server, f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)"))


def test_with_database_url_nothing_embedded_is_started(data_dir: Path, scratch_url: str) -> None:
    migrated = cli(data_dir, "migrate", DATABASE_URL=scratch_url)
    assert migrated.returncode == 0, migrated.stderr
    assert "Starting embedded PostgreSQL" not in migrated.stderr
    rows = run(_fetch(scratch_url, "SELECT version_num FROM alembic_version"))
    assert [row["version_num"] for row in rows] == [migrate.head_revision()]

    created = cli(data_dir, "create-admin", "grace", "--password", "pw", DATABASE_URL=scratch_url)
    assert created.returncode == 0, created.stderr
    rows = run(_fetch(scratch_url, "SELECT username FROM admin_users"))
    assert [row["username"] for row in rows] == ["grace"]

    assert not (data_dir / "pgdata").exists()


# --- revoke-tokens and set-password (issue 6) ---------------------------------------------

ANOTHER_ADMIN = "cli-revocable-admin"


@pytest.fixture
def another_admin(db: Db, api: Api) -> Iterator[int]:
    """An admin of the test database whose tokens these tests revoke (the session's own admin
    keeps its tokens); `api` is the session's app, for HTTP checks."""
    with an_admin(db, ANOTHER_ADMIN, "old password") as admin:
        yield admin


def login_as(api: Api, password: str, username: str = ANOTHER_ADMIN) -> httpx.Response:
    return api.post(
        AUTH,
        {"auth": {"username": username, "password": password}},
        auth=False,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )


def works(api: Api, token: str) -> bool:
    status = api.get(ACCOUNTS, headers={"Authorization": token}).status_code
    assert status in (200, 401)
    return status == 200


def token_key(db: Db, admin: int) -> str | None:
    key: str | None = db.fetchval("SELECT token_key FROM admin_users WHERE id = $1", admin)
    return key


def test_revoke_tokens_ends_every_token_issued_before(
    api: Api, db: Db, database_url: str, data_dir: Path, another_admin: int
) -> None:
    issued = token_of(login_as(api, "old password"))
    # as Yeti signs: the service secret, while the admin has no token key of its own
    yeti_issued = tokens.issue(another_admin, SECRET, None)
    assert works(api, issued) and works(api, yeti_issued)

    done = cli(data_dir, "revoke-tokens", ANOTHER_ADMIN, DATABASE_URL=database_url)

    assert done.returncode == 0, done.stderr
    assert f"Revoked every token of admin user '{ANOTHER_ADMIN}'" in done.stderr
    assert not works(api, issued)
    assert not works(api, yeti_issued)
    first_key = token_key(db, another_admin)
    assert first_key is not None and len(first_key) >= 32
    # a token issued after the revocation works, until the next one
    fresh = token_of(login_as(api, "old password"))
    assert works(api, fresh)
    again = cli(data_dir, "revoke-tokens", ANOTHER_ADMIN, DATABASE_URL=database_url)
    assert again.returncode == 0, again.stderr
    assert token_key(db, another_admin) not in (None, first_key)
    assert not works(api, fresh)
    assert works(api, token_of(login_as(api, "old password")))


def test_revoking_one_admins_tokens_leaves_the_others_alone(
    api: Api, database_url: str, data_dir: Path, another_admin: int, token: str
) -> None:
    done = cli(data_dir, "revoke-tokens", ANOTHER_ADMIN, DATABASE_URL=database_url)

    assert done.returncode == 0, done.stderr
    assert works(api, token)


def test_set_password_from_stdin_changes_it_and_revokes_tokens(
    api: Api, db: Db, database_url: str, data_dir: Path, another_admin: int
) -> None:
    issued = token_of(login_as(api, "old password"))

    done = cli(
        data_dir, "set-password", ANOTHER_ADMIN, stdin="new password\n", DATABASE_URL=database_url
    )

    assert done.returncode == 0, done.stderr
    assert f"Set the password of admin user '{ANOTHER_ADMIN}'" in done.stderr
    assert "new password" not in done.stderr + done.stdout
    assert login_as(api, "old password").status_code == 401
    assert not works(api, issued)
    assert token_key(db, another_admin) is not None
    assert works(api, token_of(login_as(api, "new password")))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("typed", "code", "password"),
    [
        (["typed password", "typed password"], 0, "typed password"),
        (["typed password", "typo password"], 2, "old password"),
        (["", ""], 2, "old password"),
    ],
    ids=["twice-the-same", "mismatch", "empty"],
)
def test_set_password_on_a_terminal_asks_twice(
    db: Db,
    database_url: str,
    another_admin: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    typed: list[str],
    code: int,
    password: str,
) -> None:
    prompts: list[str] = []
    answers = iter(typed)

    def getpass(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(cli_module.getpass, "getpass", getpass)

    assert cli_module.main(["set-password", ANOTHER_ADMIN]) == code

    assert len(prompts) == len(typed)
    assert next(answers, None) is None
    stored = db.fetchval("SELECT password_hash FROM admin_users WHERE id = $1", another_admin)
    assert verify_password(stored, password)
    if code:
        assert "error:" in capsys.readouterr().err
        assert token_key(db, another_admin) is None


def test_set_password_refuses_an_empty_password(
    db: Db, database_url: str, data_dir: Path, another_admin: int
) -> None:
    done = cli(data_dir, "set-password", ANOTHER_ADMIN, stdin="\n", DATABASE_URL=database_url)

    assert done.returncode == 2
    assert "error: a password is required" in done.stderr
    assert token_key(db, another_admin) is None


@pytest.mark.parametrize("command", ["revoke-tokens", "set-password"])
def test_commands_on_an_unknown_admin_exit_1(
    database_url: str, data_dir: Path, admin_id: int, command: str
) -> None:
    done = cli(data_dir, command, "no-such-admin", stdin="password\n", DATABASE_URL=database_url)

    assert done.returncode == 1
    assert "error: admin user 'no-such-admin' does not exist" in done.stderr
    assert "Traceback" not in done.stderr


# --- serve: trusted proxies and the cap on password checks (issue 6) ----------------------


def first_link(service: Service, token: str, headers: dict[str, str]) -> str:
    listed = service.request(
        "GET", ACCOUNTS, params={"page[size]": "1"}, headers={"Authorization": token, **headers}
    )
    assert listed.status_code == 200, listed.text
    link: str = listed.json()["links"]["first"]
    return link


@pytest.mark.parametrize(
    ("trusted", "proxied"),
    [("127.0.0.1/32,::1/128", True), ("192.0.2.0/24", False)],
    ids=["loopback-trusted", "loopback-untrusted"],
)
def test_serve_follows_forwarded_headers_only_from_trusted_proxies(
    data_dir: Path,
    database_url: str,
    admin_id: int,
    restricted_admin: int,
    trusted: str,
    proxied: bool,
) -> None:
    """uvicorn's own proxy handling would rewrite the peer from X-Forwarded-For first; the
    setting must be the one rule whatever uvicorn's defaults."""
    service = serving(
        data_dir,
        DATABASE_URL=database_url,
        ACCOUNTS_API_SECRET_KEY=SECRET,
        ACCOUNTS_API_TRUSTED_PROXIES=trusted,
    )
    try:
        token = tokens.issue(admin_id, SECRET, None)
        # as nginx on the same host forwards: the client's address appended to what it sent
        forwarded = {
            "X-Forwarded-For": "10.1.2.3, 203.0.113.5",
            "X-Forwarded-Host": "public.example.org",
            "X-Forwarded-Proto": "https",
        }
        link = first_link(service, token, forwarded)
        inside = service.request(
            "POST",
            AUTH,
            json={"auth": {"username": RESTRICTED, "password": RESTRICTED_PASSWORD}},
            headers={"X-Forwarded-For": "10.1.2.3"},
        )

        if proxied:
            assert link.startswith(f"https://public.example.org{ACCOUNTS}?")
            assert inside.status_code == 201, inside.text
        else:
            assert link.startswith(f"{service.url}{ACCOUNTS}?")
            assert inside.status_code == 401
            assert inside.json()["errors"][0]["detail"] == "Your IP address is not allowed."
    finally:
        service.kill()


# logins at once: were they all checked at once, 40 x 64 MiB (argon2's memory) is 2.5 GiB
BURST = 40
GIB = 1024**3


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants, read from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = [
                int(child)
                for task in Path(f"/proc/{current}/task").iterdir()
                for child in (task / "children").read_text().split()
            ]
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += next(
            int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")
        )
        pending += children
    return total


async def wrong_logins(url: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        answers = await asyncio.gather(
            *(
                client.post(AUTH, json={"auth": {"username": f"burst{n}", "password": "wrong"}})
                for n in range(count)
            )
        )
    return [answer.status_code for answer in answers]


def test_forty_concurrent_logins_keep_the_server_under_one_gib(
    data_dir: Path, db: Db, database_url: str, admin_id: int
) -> None:
    """argon2 takes 64 MiB per check; only the cap on checks running at once bounds memory.
    The queue admits every login here, so all 40 are checked (none refused), and throttling is
    out of the way; the answers take a while (two checks at a time)."""
    service = serving(
        data_dir,
        "--workers",
        "1",
        DATABASE_URL=database_url,
        ACCOUNTS_API_SECRET_KEY=SECRET,
        ACCOUNTS_API_LOGIN_QUEUE=str(BURST),
        ACCOUNTS_API_LOGIN_MAX_FAILURES=str(BURST * 10),
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(service.process.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample)
    try:
        before = tree_rss(service.process.pid)
        sampler.start()
        statuses = asyncio.run(asyncio.wait_for(wrong_logins(service.url, BURST), timeout=600))
    finally:
        done.set()
        if sampler.is_alive():
            sampler.join(timeout=TIMEOUT)
        service.kill()
        db.execute("DELETE FROM login_throttle")

    assert statuses == [401] * BURST
    assert peak > before  # the sampler saw the burst
    assert peak < GIB, f"peak RSS {peak / 2**20:.0f} MiB (before the burst {before / 2**20:.0f})"


# --- a CLI that explains itself (issue 9) -------------------------------------------------


def subcommands() -> dict[str, Any]:
    root = cli_module.parser()
    choices = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction)).choices
    return dict(choices)


def test_every_command_and_option_is_described_with_its_default() -> None:
    commands = subcommands()
    assert set(commands) >= {"serve", "worker", "migrate", "create-admin", "set-password"}
    for name, command in commands.items():
        assert command.description, name
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.dest} has no description"
    serve_help = " ".join(commands["serve"].format_help().split())
    assert "(default: 127.0.0.1)" in serve_help
    assert "(default: 8000)" in serve_help
    assert "(default: 1)" in serve_help
    assert "(default: None)" not in "".join(c.format_help() for c in commands.values())


def test_the_environment_variables_are_listed_in_the_help() -> None:
    text = cli_module.parser().format_help()
    for variable in VARIABLES:
        assert f"  {variable.name} (default: {variable.default})" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_module.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"accounts-api {metadata.version('accounts-api')}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "99999"], "99999 is not a TCP port (1-65535, or 0: any free one)"),
        (["--port", "-1"], "-1 is not a TCP port"),
        (["--port", "http"], "not a port number: 'http'"),
        (["--workers", "0"], "argument --workers: at least 1"),
    ],
)
def test_serve_refuses_bad_ports_and_worker_counts(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_module.main(["serve", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_busy_port_is_reported_before_anything_starts(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(data_dir, "serve", "--port", str(port))

    assert done.returncode == 1
    assert f"error: 127.0.0.1:{port} is already in use" in done.stderr
    assert "choose another port with --port (with make: make run PORT=8001)" in done.stderr
    assert "Serving on" not in done.stderr
    # no embedded PostgreSQL was started, not even a data directory made
    assert not data_dir.exists()


def test_a_host_it_cannot_listen_on_is_named(data_dir: Path) -> None:
    done = cli(data_dir, "serve", "--host", "192.0.2.1", "--port", "0")

    assert done.returncode == 1
    assert "error: cannot listen on 192.0.2.1:0" in done.stderr
    assert "check --host" in done.stderr
    assert not data_dir.exists()


def test_a_bad_setting_is_an_error_not_a_traceback(data_dir: Path) -> None:
    done = cli(data_dir, "migrate", ACCOUNTS_API_DB_LOCK_TIMEOUT="soon")

    assert done.returncode == 2
    assert "error: ACCOUNTS_API_DB_LOCK_TIMEOUT must be a number, got 'soon'" in done.stderr
    assert "Traceback" not in done.stderr


# --- graceful shutdown (issue 9) ----------------------------------------------------------


def correction(service: Service, token: str, account: str) -> httpx.Response:
    body = {"data": {"type": "balance-correction", "id": account, "attributes": {"correction": 5}}}
    with httpx.Client(base_url=service.url, timeout=TIMEOUT) as client:
        return client.patch(
            f"{ACCOUNTS}/{account}/balance-correction",
            json=body,
            headers={"Authorization": token, "Content-Type": "application/vnd.api+json"},
        )


def refuses_connections(service: Service) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", service.port), timeout=5):
            return False
    except OSError:
        return True


class InFlight:
    """A balance correction that waits for the account's row lock, held here in `db`."""

    def __init__(self, service: Service, token: str, account: str, db: Db):
        self.db = db
        self.response: httpx.Response | Exception | None = None
        db.execute("BEGIN")
        try:
            db.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", int(account))
            self.thread = threading.Thread(target=self._send, args=(service, token, account))
            self.thread.start()
            # the request reached PostgreSQL and waits there for the lock
            assert wait_until(lambda: self.waiting() >= 1), (
                f"the request never waited for the lock: {self.response}"
            )
        except BaseException:
            db.execute("ROLLBACK")  # the next tests' statements are not to run in it
            raise

    def _send(self, service: Service, token: str, account: str) -> None:
        try:
            self.response = correction(service, token, account)
        except Exception as error:
            self.response = error

    def waiting(self) -> int:
        return lock_waiters(self.db)

    def release(self) -> None:
        self.db.execute("ROLLBACK")

    def finish(self) -> httpx.Response | Exception | None:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        return self.response


@pytest.fixture
def account_on_test_database(api: Api, db: Db) -> str:
    contractor = db.fetchval(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('shutdown', true, false, true) RETURNING id"
    )
    created = api.post(ACCOUNTS, account_body(contractor))
    assert created.status_code == 201, created.text
    account: str = created.json()["data"]["id"]
    return account


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_the_request_in_flight_finish_and_accepts_no_more(
    data_dir: Path,
    database_url: str,
    db: Db,
    token: str,
    account_on_test_database: str,
    workers: str,
) -> None:
    account = account_on_test_database
    service = serving(data_dir, "--workers", workers, **on_test_database(database_url))
    try:
        request = InFlight(service, token, account, db)
        try:
            service.process.send_signal(signal.SIGTERM)
            # it stops accepting at once, while the request is still in flight
            assert wait_until(lambda: refuses_connections(service))
            assert service.process.poll() is None
        finally:
            request.release()
        answer = request.finish()
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 200, answer.text
        assert service.process.wait(timeout=EXIT_TIMEOUT) == 0
        assert "Traceback" not in service.stderr, service.stderr
    finally:
        service.kill()
    # the correction committed
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", int(account)) == 5


def test_sigterm_gives_a_request_in_flight_at_most_the_shutdown_timeout(
    data_dir: Path, database_url: str, db: Db, token: str, account_on_test_database: str
) -> None:
    account = account_on_test_database
    # the statement would wait for the lock longer than EXIT_TIMEOUT: the exit cannot come from
    # its end (a write is done by its record's runner task, which the server itself does not
    # cancel: the app must)
    service = serving(
        data_dir,
        **on_test_database(database_url),
        ACCOUNTS_API_SHUTDOWN_TIMEOUT="1",
        ACCOUNTS_API_DB_STATEMENT_TIMEOUT="300",
    )
    try:
        request = InFlight(service, token, account, db)
        try:
            service.process.send_signal(signal.SIGTERM)
            # the lock is never released while it waits: it exits anyway
            assert service.process.wait(timeout=EXIT_TIMEOUT) == 0
        finally:
            request.release()
        answer = request.finish()
        assert not (isinstance(answer, httpx.Response) and answer.is_success), answer
        assert "timeout graceful shutdown exceeded" in service.stderr
    finally:
        service.kill()
    # the cancelled write left nothing behind
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", int(account)) == 0
    assert db.fetchval("SELECT count(*) FROM ledger_entries WHERE kind = 'correction'") == 0


def on_test_database(database_url: str) -> dict[str, str]:
    """`serve` on the suite's database (nothing embedded is started), with its key, and with
    a lock wait longer than any of these tests."""
    return {
        "DATABASE_URL": database_url,
        "ACCOUNTS_API_SECRET_KEY": SECRET,
        "ACCOUNTS_API_DELIVERY": "off",
        "ACCOUNTS_API_DB_LOCK_TIMEOUT": "120",
    }
