"""Reproducible load benchmark of a running accounts-api, on loopback only.

    .venv/bin/python bench/run.py [--workers 2] [--connections 16] [--seconds 10] [--runs 3]

Starts `accounts-api serve` on a free 127.0.0.1 port with a fresh embedded PostgreSQL under a
temporary data directory (or against DATABASE_URL when set: use an empty database), seeds a
contractor and 50 accounts through the API, then drives it with wrk (Debian package `wrk`)
and prints requests/s, the median of the runs, as a Markdown table for docs/benchmarks.md.
The measured requests are those of DESIGN.md: GET one account, PUT one account, GET a page
of 50 with include=contractor; plus POST a payment, the money path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "accounts-api"
JSONAPI = "application/vnd.api+json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def call(
    base: str, method: str, path: str, token: str | None, body: object = None
) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    request.add_header("Content-Type", JSONAPI if token else "application/json")
    if token:
        request.add_header("Authorization", token)
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read() or b"{}")
        return result


def wait_until_up(base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/rest/admin/accounts", timeout=2)
        except urllib.error.HTTPError:
            return  # 401: it answers
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the server did not come up")


def seed(base: str, token: str) -> tuple[str, str]:
    contractor = call(
        base,
        "POST",
        "/api/rest/admin/contractors",
        token,
        {
            "data": {
                "type": "contractors",
                "attributes": {"name": "bench", "enabled": True, "vendor": True, "customer": True},
            }
        },
    )["data"]["id"]
    first = ""
    for number in range(50):
        account = call(
            base,
            "POST",
            "/api/rest/admin/accounts",
            token,
            {
                "data": {
                    "type": "accounts",
                    "attributes": {"name": f"bench-{number}", "currency": "USD"},
                    "relationships": {
                        "contractor": {"data": {"type": "contractors", "id": contractor}}
                    },
                }
            },
        )["data"]["id"]
        first = first or account
    return contractor, first


def wrk_run(url: str, token: str, script: Path | None, args: argparse.Namespace) -> str:
    """wrk's report of one run; any non-2xx answer under load ends the benchmark."""
    command = [
        "wrk",
        "-t2",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--latency",
        "-H",
        f"Authorization: {token}",
        "-H",
        f"Accept: {JSONAPI}",
    ]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses: \d+", output):
        raise SystemExit(f"errors under load:\n{output}")
    return output


def requests_per_second(output: str) -> float:
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def p99_ms(output: str) -> float:
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    assert match, output
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def wrk(url: str, token: str, script: Path | None, args: argparse.Namespace) -> float:
    return requests_per_second(wrk_run(url, token, script, args))


def lua(directory: Path, name: str, method: str, body: object, more: str = "") -> Path:
    """A wrk script sending `body` as JSON:API with `method`; `more` is Lua to add (hooks)."""
    path = directory / f"{name}.lua"
    payload = json.dumps(body).replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(
        f'wrk.method = "{method}"\n'
        f'wrk.body = "{payload}"\n'
        f'wrk.headers["Content-Type"] = "{JSONAPI}"\n' + more
    )
    return path


def payment(account: str, amount: str = "0.01") -> dict[str, Any]:
    """A payment's JSON:API document: `amount` to `account`."""
    return {
        "data": {
            "type": "payments",
            "attributes": {"amount": amount},
            "relationships": {"account": {"data": {"type": "accounts", "id": account}}},
        }
    }


def requests(account: str, put: Path, pay: Path) -> list[tuple[str, str, Path | None]]:
    """The measured requests (DESIGN.md's three and the payment): name, path, wrk script."""
    return [
        ("GET one account", f"/api/rest/admin/accounts/{account}", None),
        ("PUT one account", f"/api/rest/admin/accounts/{account}", put),
        (
            "GET 50 with include=contractor",
            "/api/rest/admin/accounts?page%5Bsize%5D=50&include=contractor",
            None,
        ),
        ("POST a payment", "/api/rest/admin/payments", pay),
    ]


@contextmanager
def work_directory(name: str) -> Iterator[Path]:
    """A fresh directory under /tmp for a benchmark's servers, removed afterwards. Readable by
    all: run as root, the embedded PostgreSQL runs as a user of its own."""
    work = Path(tempfile.mkdtemp(prefix=f"accounts-api-{name}-", dir="/tmp"))
    os.chmod(work, 0o755)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def wrk_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The load options every benchmark takes; wrk must be installed."""
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    return args


@contextmanager
def serving(work: Path, workers: int, source: Path | None = None) -> Iterator[tuple[str, str]]:
    """`accounts-api serve` on a free loopback port with a fresh embedded PostgreSQL under
    `work`, until the block ends: (base URL, the bootstrap admin's token). With `source`, the
    package under `source/src` runs instead of the installed one (another revision)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ACCOUNTS_API_DATA_DIR": str(work / "var")}
    if os.environ.get("DATABASE_URL"):
        raise SystemExit("with DATABASE_URL, create an admin and adapt the login below")
    command = [str(CLI)]
    if source is not None:
        env["PYTHONPATH"] = str(source / "src")
        command = [
            sys.executable,
            "-c",
            "import sys; from accounts_api.cli import main; sys.exit(main())",
        ]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(base, time.monotonic() + 120)
        password = (work / "var" / "admin_password").read_text().strip()
        token = call(
            base,
            "POST",
            "/api/rest/admin/auth",
            None,
            {"auth": {"username": "admin", "password": password}},
        )["jwt"]
        yield base, token
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> int:
    args = wrk_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    with work_directory("bench") as work, serving(work, args.workers) as (base, token):
        _, account = seed(base, token)
        put = lua(
            work,
            "put",
            "PUT",
            {"data": {"type": "accounts", "id": account, "attributes": {"max-balance": 20}}},
        )
        pay = lua(work, "pay", "POST", payment(account))
        cases = [
            (name, f"{base}{path}", script) for name, path, script in requests(account, put, pay)
        ]
        print(f"| request | requests/s (median of {args.runs}) |")
        print("|---|---:|")
        for name, url, script in cases:
            rates = [wrk(url, token, script, args) for _ in range(args.runs)]
            print(f"| {name} | {statistics.median(rates):,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
