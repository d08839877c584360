"""More than one instance (issue 9, item 6): the shipped systemd unit and nginx configuration
(deploy/, described in docs/deploy.md), run for real.

Two `accounts-api serve` instances, started with the unit's own ExecStart line, share one
PostgreSQL database behind nginx running the shipped site file (TLS included). Clients on
127.0.0.2 and 127.0.0.3 move money through nginx at once; the ledger must be exact, both
instances must have served, and the audit log must carry the addresses nginx passed on.

nginx comes from Debian's package (.ci/run installs it); without it the test is skipped,
unless ACCOUNTS_API_REQUIRE_NGINX=1.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shlex
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import (
    JSONAPI,
    ROOT,
    SECRET,
    SERVER_DEADLINE,
    Db,
    free_port,
    scratch_database,
    wait_until,
)
from tests.test_cli import CLI

UNIT = ROOT / "deploy" / "accounts-api@.service"
NGINX_SITE = ROOT / "deploy" / "nginx.conf"
ENV_FILE = ROOT / "deploy" / "env.example"
NGINX = "/usr/sbin/nginx"
PREFIX = "/api/rest/admin"
ADMIN, PASSWORD = "deployer", "deployer-password"
CLIENTS = ("127.0.0.2", "127.0.0.3")
THREADS = 16
REQUESTS_PER_THREAD = 15


def required(tool: str) -> None:
    """Skip without `tool`, or fail when the run requires nginx (CI)."""
    message = f"{tool} is not installed (apt-get install nginx openssl)"
    if os.environ.get("ACCOUNTS_API_REQUIRE_NGINX") == "1":
        pytest.fail(message)
    pytest.skip(message)


def replaced(text: str, old: str, new: str, count: int) -> str:
    """`old` replaced by `new`, where the shipped file must have it exactly `count` times:
    a change to the file that the rendering no longer fits fails here, not quietly."""
    assert text.count(old) == count, f"expected {count} x {old!r} in the shipped file"
    return text.replace(old, new)


def test_the_guide_names_every_shipped_file_and_only_those() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    named = set(re.findall(r"\(\.\./(deploy/[^)]+)\)", guide))
    shipped = {str(path.relative_to(ROOT)) for path in (ROOT / "deploy").iterdir()}
    assert named == shipped


# --- the systemd unit ---------------------------------------------------------------------


def unit_command(port: int) -> list[str]:
    """The unit's ExecStart for instance `port`, with this checkout's accounts-api."""
    found = re.findall(r"^ExecStart=(.+)$", UNIT.read_text(), re.MULTILINE)
    assert len(found) == 1, found
    argv = shlex.split(found[0].replace("%i", str(port)))
    assert argv[0].endswith("/accounts-api") and argv[1] == "serve", argv
    return [CLI, *argv[1:]]


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # an instance of the template, running this checkout's accounts-api (verify wants an
    # executable that exists)
    text = UNIT.read_text()
    shipped = shlex.split(re.findall(r"^ExecStart=(.+)$", text, re.MULTILINE)[0])[0]
    instance = tmp_path / "accounts-api@8001.service"
    instance.write_text(replaced(text, shipped, CLI, 1))
    verified = subprocess.run(
        [analyze, "verify", str(instance)],
        capture_output=True,
        text=True,
        timeout=SERVER_DEADLINE,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == "", verified.stderr


# --- nginx --------------------------------------------------------------------------------


@dataclass
class Site:
    https_port: int
    http_port: int
    certificate: Path
    key: Path


def render_site(instances: list[int], site: Site) -> str:
    """The shipped site file with this test's instances, loopback ports and certificate."""
    text = NGINX_SITE.read_text()
    servers = re.findall(r"^ *server 127\.0\.0\.1:\d+;\n", text, re.MULTILINE)
    assert len(servers) == 2, servers
    text = text.replace(servers[1], "")
    text = text.replace(
        servers[0], "".join(f"    server 127.0.0.1:{port};\n" for port in instances)
    )
    text = replaced(text, "    listen [::]:80;\n", "", 1)
    text = replaced(text, "    listen [::]:443 ssl;\n", "", 1)
    text = replaced(text, "listen 80;", f"listen 127.0.0.1:{site.http_port};", 1)
    text = replaced(text, "listen 443 ssl;", f"listen 127.0.0.1:{site.https_port} ssl;", 1)
    text = replaced(text, "/etc/ssl/accounts-api/fullchain.pem", str(site.certificate), 1)
    return replaced(text, "/etc/ssl/accounts-api/privkey.pem", str(site.key), 1)


def nginx_main(directory: Path, site_file: Path) -> str:
    """The http block of a nginx of the test's own, everything under `directory`."""
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # as root nginx's workers would run as nobody, who cannot enter pytest's tmp dirs
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n"
        f"{temp}\n"
        f"    include {site_file};\n"
        "}\n"
    )


def self_signed(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        required("openssl")
    certificate, key = directory / "cert.pem", directory / "key.pem"
    made = subprocess.run(
        [
            str(openssl),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        capture_output=True,
        text=True,
        timeout=SERVER_DEADLINE,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return certificate, key


# --- the deployment -----------------------------------------------------------------------


class Process:
    """A child process in a session of its own, its output in a file; stopped by SIGTERM to
    the main process (as systemd's KillMode=mixed does), then killed with its group."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None):
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, url: str) -> None:
        """Until `url` answers 200; fails if the process exits first or never answers."""
        assert wait_until(lambda: answers(url) or not self.running()), (
            f"{url} does not answer:\n{self.output}"
        )
        assert self.running(), f"exited {self.process.returncode}:\n{self.output}"

    def stop(self) -> bool:
        """SIGTERM; whether it exited within the deadline."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=SERVER_DEADLINE)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=SERVER_DEADLINE)


def environment_file() -> dict[str, str]:
    """deploy/env.example, read as systemd reads an EnvironmentFile (no quotes in it)."""
    lines = ENV_FILE.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


def run_cli(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        [CLI, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=SERVER_DEADLINE,
        check=False,
    )
    assert done.returncode == 0, f"accounts-api {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stderr


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Deployment:
    database_url: str
    env: dict[str, str]
    instances: list[Process]
    nginx: Process
    site: Site
    tls: ssl.SSLContext

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.site.https_port}"

    def client(self, address: str) -> httpx.Client:
        """A client connecting to nginx from `address`."""
        transport = httpx.HTTPTransport(local_address=address, verify=self.tls)
        return httpx.Client(transport=transport, base_url=self.base_url, timeout=30)


@pytest.fixture
def deployment(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    if not os.access(NGINX, os.X_OK):
        required("nginx")
    certificate, key = self_signed(tmp_path)
    name = f"accounts_api_scratch_deploy_{os.getpid()}"
    with scratch_database(database_url, name) as url:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("ACCOUNTS_API_") and key != "DATABASE_URL"
        }
        # the shipped /etc/accounts-api/env, with this test's database and key
        env |= environment_file() | {
            "DATABASE_URL": url,
            "ACCOUNTS_API_SECRET_KEY": SECRET,
            "ACCOUNTS_API_DELIVERY": "off",
            "ACCOUNTS_API_DB_POOL_SIZE": "3",
            "ACCOUNTS_API_DATA_DIR": str(tmp_path / "data"),
        }
        run_cli("migrate", env=env)
        run_cli("create-admin", ADMIN, "--password-stdin", env=env, stdin=PASSWORD + "\n")

        ports = [free_port(), free_port()]
        instances: list[Process] = []
        nginx: Process | None = None
        try:
            for port in ports:
                log = tmp_path / f"instance-{port}.log"
                instances.append(Process(unit_command(port), log, env))
            for port, instance in zip(ports, instances, strict=True):
                instance.wait_ready(f"http://127.0.0.1:{port}/readyz")

            site = Site(free_port(), free_port(), certificate, key)
            nginx_dir = tmp_path / "nginx"
            nginx_dir.mkdir()
            site_file = nginx_dir / "accounts-api.conf"
            site_file.write_text(render_site(ports, site))
            main_file = nginx_dir / "nginx.conf"
            main_file.write_text(nginx_main(nginx_dir, site_file))
            error_log = nginx_dir / "error.log"
            command = [
                NGINX,
                "-e",
                str(error_log),
                "-p",
                str(nginx_dir),
                "-c",
                str(main_file),
                "-g",
                f"daemon off; pid {nginx_dir / 'nginx.pid'}; error_log {error_log};",
            ]
            checked = subprocess.run(
                [*command, "-t"],
                capture_output=True,
                text=True,
                timeout=SERVER_DEADLINE,
                check=False,
            )
            assert checked.returncode == 0, checked.stderr
            nginx = Process(command, nginx_dir / "nginx.out")
            tls = ssl.create_default_context(cafile=str(certificate))
            deployed = Deployment(url, env, instances, nginx, site, tls)

            def nginx_answers() -> bool:
                try:
                    with deployed.client("127.0.0.1") as client:
                        return client.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            assert wait_until(lambda: nginx_answers() or not nginx.running()), (
                f"nginx does not answer:\n{nginx.output}\n{error_log.read_text()}"
            )
            yield deployed
        finally:
            for process in ([nginx] if nginx else []) + instances:
                process.stop()
                process.kill()


# --- moving money through both instances ----------------------------------------------------


def headers(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": token, "Accept": JSONAPI, "Content-Type": JSONAPI, **extra}


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@dataclass
class Movement:
    """One money request, what it adds to the balance, and who sent it."""

    kind: str  # payment | transaction | correction
    amount: Decimal
    key: str
    client: str
    resend: bool  # a payment sent again with the same key, as a client's retry
    method: str  # POST; PUT or PATCH for a correction (contract §5.9 takes both)

    @property
    def effect(self) -> Decimal:
        return -self.amount if self.kind == "transaction" else self.amount

    def request(self, account: str) -> tuple[str, str, dict[str, Any]]:
        link = {"account": {"data": {"type": "accounts", "id": account}}}
        if self.kind == "correction":
            attributes = {"correction": str(self.amount)}
            body = {"data": {"type": "balance-correction", "id": account, "attributes": attributes}}
            return self.method, f"{PREFIX}/accounts/{account}/balance-correction", body
        text = "notes" if self.kind == "payment" else "description"
        attributes = {"amount": str(self.amount), text: self.key}
        body = {"data": {"type": f"{self.kind}s", "attributes": attributes, "relationships": link}}
        return "POST", f"{PREFIX}/{self.kind}s", body


@dataclass
class Answer:
    movement: Movement
    status: int
    replayed: bool
    resource_id: str | None


def plan(rng: random.Random, thread: int) -> list[Movement]:
    client = CLIENTS[thread % len(CLIENTS)]
    movements = []
    for number in range(REQUESTS_PER_THREAD):
        kind = ("payment", "transaction", "correction")[(thread + number) % 3]
        amount = Decimal(rng.randint(1, 10**7)) / Decimal(10) ** rng.randint(0, 4)
        if kind == "correction" and rng.random() < 0.5:
            amount = -amount
        key = f"deploy-{thread}-{number}"
        resend = kind == "payment" and number % 4 == 0
        method = ("PUT", "PATCH")[number % 2] if kind == "correction" else "POST"
        movements.append(Movement(kind, amount, key, client, resend, method))
    return movements


def send(
    deployment: Deployment, token: str, account: str, movements: list[Movement]
) -> list[Answer]:
    answers: list[Answer] = []
    other = {CLIENTS[0]: CLIENTS[1], CLIENTS[1]: CLIENTS[0]}
    with (
        deployment.client(movements[0].client) as client,
        deployment.client(other[movements[0].client]) as retrying,
    ):
        for movement in movements:
            method, path, body = movement.request(account)
            sent = headers(token, **{"Idempotency-Key": movement.key})
            for sender in [client, retrying] if movement.resend else [client]:
                response = sender.request(method, path, json=body, headers=sent)
                data = response.json().get("data") if response.content else None
                answers.append(
                    Answer(
                        movement,
                        response.status_code,
                        response.headers.get("idempotent-replayed") == "true",
                        data.get("id") if isinstance(data, dict) else None,
                    )
                )
    return answers


def api_requests(instance: Process) -> int:
    """Requests an instance logged under the API prefix (one access-log line each)."""
    return instance.output.count(f"{PREFIX}/")


def test_two_instances_behind_nginx_move_money_exactly(deployment: Deployment) -> None:
    db = Db(deployment.database_url)
    try:
        check_money_through_two_instances(deployment, db)
    finally:
        db.close()


def check_money_through_two_instances(deployment: Deployment, db: Db) -> None:
    first, second = CLIENTS
    with deployment.client(first) as client:
        login = client.post(
            f"{PREFIX}/auth", json={"auth": {"username": ADMIN, "password": PASSWORD}}
        )
        assert login.status_code == 201, login.text
        token: str = login.json()["jwt"]
        contractor = created(
            client.post(
                f"{PREFIX}/contractors",
                json={
                    "data": {
                        "type": "contractors",
                        "attributes": {
                            "name": "acme",
                            "enabled": True,
                            "customer": True,
                            "vendor": False,
                        },
                    }
                },
                headers=headers(token),
            )
        )
        account = created(
            client.post(
                f"{PREFIX}/accounts",
                json={
                    "data": {
                        "type": "accounts",
                        "attributes": {"name": "acme-usd", "currency": "USD"},
                        "relationships": {
                            "contractor": {"data": {"type": "contractors", "id": contractor["id"]}}
                        },
                    }
                },
                headers=headers(token),
            )
        )
        # links name the URL the client used: https, and nginx's port
        assert account["links"]["self"].startswith(f"{deployment.base_url}{PREFIX}/accounts/")
        account_id = account["id"]

        # a forged X-Forwarded-For (and X-Real-IP): nginx overwrites X-Real-IP and appends
        # the real peer to X-Forwarded-For, and the service reads from the right
        forged = created(
            client.post(
                f"{PREFIX}/payments",
                json={
                    "data": {
                        "type": "payments",
                        "attributes": {"amount": "0.01", "notes": "forged"},
                        "relationships": {
                            "account": {"data": {"type": "accounts", "id": account_id}}
                        },
                    }
                },
                headers=headers(token, **{"X-Forwarded-For": "10.9.9.9", "X-Real-IP": "10.9.9.9"}),
            )
        )
        # /metrics is for the monitoring network only
        assert client.get("/metrics").status_code == 403
    with httpx.Client(base_url=f"http://127.0.0.1:{deployment.site.http_port}") as plain:
        redirected = plain.get(f"{PREFIX}/accounts")
        assert redirected.status_code == 301
        assert redirected.headers["location"].startswith("https://127.0.0.1")

    entries_before = db.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE account_id = $1", int(account_id)
    )
    requests_before = [api_requests(instance) for instance in deployment.instances]
    rng = random.Random(9)
    plans = [plan(rng, thread) for thread in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda p: send(deployment, token, account_id, p), plans))
    answers = [answer for thread in outcomes for answer in thread]

    expected_status = {"payment": 201, "transaction": 201, "correction": 200}
    wrong = [
        (a.movement.key, a.status) for a in answers if a.status != expected_status[a.movement.kind]
    ]
    assert wrong == []

    # both instances served (each logs a line per request)
    served = [
        api_requests(instance) - before
        for instance, before in zip(deployment.instances, requests_before, strict=True)
    ]
    assert all(count > 0 for count in served), served

    # every movement applied once; the resent payments were replayed, not paid again
    applied = [a for a in answers if not a.replayed]
    assert len(applied) == THREADS * REQUESTS_PER_THREAD
    replays = [a for a in answers if a.replayed]
    resent = [m for p in plans for m in p if m.resend]
    assert len(replays) == len(resent)
    first_ids = {a.movement.key: a.resource_id for a in applied}
    assert all(a.resource_id == first_ids[a.movement.key] for a in replays)
    paid_keys = db.fetch(
        "SELECT notes, count(*) FROM payments WHERE account_id = $1 GROUP BY notes",
        int(account_id),
    )
    payments = [m for p in plans for m in p if m.kind == "payment"]
    assert {row["notes"]: row["count"] for row in paid_keys} == {
        "forged": 1,
        **{m.key: 1 for m in payments},
    }

    opening = Decimal("0.01")  # the forged payment
    expected = opening + sum((m.effect for p in plans for m in p), Decimal(0))
    balance = db.fetchval("SELECT balance FROM accounts WHERE id = $1", int(account_id))
    assert balance == expected
    entries = db.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE account_id = $1", int(account_id)
    )
    assert entries - entries_before == len(applied)
    run_cli("verify-ledger", env=deployment.env)

    # the audit log has the client addresses nginx passed on, never nginx's own
    audited = db.fetch("SELECT DISTINCT host(ip) AS ip FROM audit_log")
    assert {row["ip"] for row in audited} == {first, second}
    by_payment = {
        row["item_id"]: row["ip"]
        for row in db.fetch(
            "SELECT item_id, host(ip) AS ip FROM audit_log"
            " WHERE item_type = 'Payment' AND event = 'create'"
        )
    }
    assert by_payment[int(forged["id"])] == first
    for answer in applied:
        if answer.movement.kind == "payment":
            assert by_payment[int(str(answer.resource_id))] == answer.movement.client

    # one instance stopped (as in a rolling restart): nginx sends everything to the other,
    # POSTs included, as none was sent to the stopped one
    stopped = deployment.instances[1]
    assert stopped.stop(), f"the instance did not exit on SIGTERM:\n{stopped.output}"
    with deployment.client(second) as client:
        for number in range(6):
            body = {
                "data": {
                    "type": "payments",
                    "attributes": {"amount": "1.5", "notes": f"after-stop-{number}"},
                    "relationships": {"account": {"data": {"type": "accounts", "id": account_id}}},
                }
            }
            response = client.post(
                f"{PREFIX}/payments",
                json=body,
                headers=headers(token, **{"Idempotency-Key": f"after-stop-{number}"}),
            )
            assert response.status_code == 201, response.text
    balance = db.fetchval("SELECT balance FROM accounts WHERE id = $1", int(account_id))
    assert balance == expected + Decimal("9.0")
    run_cli("verify-ledger", env=deployment.env)
