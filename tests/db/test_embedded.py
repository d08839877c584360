"""The embedded PostgreSQL server (issue 2, item 1): one server per data directory, shared by
every process that calls `embedded.start`, stopped when the last of them exits.

Every process here is a real subprocess so that the wheel's atexit bookkeeping runs for real.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
from tests.conftest import run

TIMEOUT = 30
# generous: CI runs on 2 loaded cores; a deadline only bounds a failing test
STOP_TIMEOUT = 30  # for the server to be gone once its last process exited

# Starts (or attaches to) the server, reports it, then holds it until stdin is closed.
HOLD = """
import json, sys
from pathlib import Path
from accounts_api.db import embedded
url = embedded.start(Path(sys.argv[1]), *sys.argv[2:])
pid = int((Path(sys.argv[1]) / "pgdata" / "postmaster.pid").read_text().split()[0])
print(json.dumps({"url": url, "pid": pid}), flush=True)
sys.stdin.read()
"""


class Holder:
    """A subprocess holding a handle on the embedded server of `data_dir`."""

    def __init__(self, data_dir: Path, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(data_dir), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def report(self) -> dict[str, Any]:
        """The URL and postmaster pid the process printed once the server was up."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=TIMEOUT)
            assert self.process.stderr is not None
            pytest.fail(f"holder exited {self.process.returncode}: {self.process.stderr.read()}")
        report: dict[str, Any] = json.loads(line)
        return report

    def release(self) -> int:
        """Close stdin so the process exits normally (running its atexit handlers)."""
        _, stderr = self.process.communicate(timeout=TIMEOUT)
        assert self.process.returncode == 0, stderr
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.communicate(timeout=TIMEOUT)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory of its own; a server left running by a failed test is stopped."""
    path = tmp_path / "nested" / "data"
    yield path
    leftover = postmaster_pid(path)
    if leftover is not None and server_running(leftover):
        psutil.Process(leftover).send_signal(signal.SIGINT)  # fast shutdown
        wait_until(lambda: not server_running(leftover), STOP_TIMEOUT)
    shutil.rmtree(path, ignore_errors=True)  # a cluster is ~40 MB


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


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def assert_stopped(data_dir: Path, pid: int) -> None:
    assert wait_until(lambda: not server_running(pid), STOP_TIMEOUT), "server still running"
    assert wait_until(lambda: postmaster_pid(data_dir) is None, STOP_TIMEOUT)


def query(url: str, sql: str) -> Any:
    async def fetch() -> Any:
        connection = await asyncpg.connect(url, timeout=TIMEOUT)
        try:
            return await connection.fetchval(sql)
        finally:
            await connection.close()

    return run(fetch())


def test_start_creates_the_data_dir_and_returns_a_url_that_accepts_connections(
    data_dir: Path,
) -> None:
    assert not data_dir.parent.exists()
    holder = Holder(data_dir)
    try:
        report = holder.report()
        assert (data_dir / "pgdata" / "PG_VERSION").is_file()
        assert server_running(report["pid"])
        assert query(report["url"], "SELECT current_database()") == "accounts_api"
        holder.release()
    finally:
        holder.kill()

    assert_stopped(data_dir, report["pid"])


def test_start_creates_the_requested_database(data_dir: Path) -> None:
    holder = Holder(data_dir, "other_db")
    try:
        report = holder.report()
        assert query(report["url"], "SELECT current_database()") == "other_db"
        holder.release()
    finally:
        holder.kill()

    assert_stopped(data_dir, report["pid"])


def test_a_second_process_attaches_and_only_the_last_exit_stops_the_server(
    data_dir: Path,
) -> None:
    first = Holder(data_dir)
    second: Holder | None = None
    try:
        started = first.report()
        second = Holder(data_dir)
        attached = second.report()
        assert attached == started  # the same server: same postmaster, same URL
        second.release()

        # the first process still holds it: still running, still accepting connections
        time.sleep(0.3)
        assert postmaster_pid(data_dir) == started["pid"]
        assert server_running(started["pid"])
        assert query(started["url"], "SELECT 1") == 1

        first.release()
    finally:
        first.kill()
        if second is not None:
            second.kill()

    assert_stopped(data_dir, started["pid"])


def test_processes_starting_together_share_one_server(data_dir: Path) -> None:
    holders = [Holder(data_dir) for _ in range(3)]
    try:
        reports = [holder.report() for holder in holders]
        assert len({report["pid"] for report in reports}) == 1
        assert query(reports[0]["url"], "SELECT 1") == 1
        for holder in holders[:-1]:
            holder.release()
        assert server_running(reports[0]["pid"])
        holders[-1].release()
    finally:
        for holder in holders:
            holder.kill()

    assert_stopped(data_dir, reports[0]["pid"])


def test_a_process_killed_without_cleanup_does_not_keep_the_server_alive(data_dir: Path) -> None:
    """A holder that dies without running atexit (SIGKILL, OOM) is not a holder any more: the
    next process to exit is the last one and stops the server."""
    crashed = Holder(data_dir)
    try:
        started = crashed.report()
    finally:
        crashed.kill()

    later = Holder(data_dir)
    try:
        attached = later.report()
        assert attached["pid"] == started["pid"]  # the orphaned server was still up
        later.release()
    finally:
        later.kill()

    assert_stopped(data_dir, started["pid"])
