"""Per-request overhead (issue 10): the service against the bare handler (bench/bare.py), which
sends the same statements and answers the same documents, in the same run, interleaved.

    .venv/bin/python bench/overhead.py [--workers 2] [--connections 16] [--seconds 10] [--runs 3]

Starts `accounts-api serve` as bench/run.py does, then the bare handler with as many workers on
the same embedded database, and runs each request against one and then the other, `--runs`
times. Prints requests/s (median), the service's share of the bare handler's, p99 latencies,
and the largest resident memory of a service worker seen under load.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from run import (
    free_port,
    lua,
    p99_ms,
    payment,
    requests,
    requests_per_second,
    seed,
    serving,
    work_directory,
    wrk_arguments,
    wrk_run,
)

from accounts_api.db import embedded

BARE = Path(__file__).resolve().parent / "bare.py"


@contextmanager
def bare_serving(database_url: str, workers: int) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": database_url, "BARE_ADMIN_ID": "1"}
    process = subprocess.Popen(
        [sys.executable, str(BARE), "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the bare handler did not come up")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def on_port(connection: Any, port: int) -> bool:
    """A connection's local address is on `port` (psutil gives an empty tuple for none)."""
    return getattr(connection.laddr, "port", None) == port


def listening(port: int) -> bool:
    connections = psutil.net_connections("tcp")
    return any(on_port(c, port) for c in connections if c.status == "LISTEN")


def workers_on(port: int) -> list[psutil.Process]:
    """The processes that accept on `port` (uvicorn's workers; the supervisor too)."""
    pids = {c.pid for c in psutil.net_connections("tcp") if on_port(c, port) and c.pid}
    return [psutil.Process(pid) for pid in pids]


def processes_on(port: int) -> list[psutil.Process]:
    """The supervisor on `port` and its workers, each once."""
    found = {p.pid: p for p in workers_on(port)}
    found |= {c.pid: c for p in list(found.values()) for c in p.children()}
    return list(found.values())


class PeakMemory:
    """The largest RSS of each process, sampled every 100 ms while the block runs."""

    def __init__(self, processes: list[psutil.Process]):
        self.processes = processes
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            for process in self.processes:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                self.peak[process.pid] = max(self.peak.get(process.pid, 0), rss)

    @contextmanager
    def sampling(self) -> Iterator[None]:
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()


def measured(
    workers: list[psutil.Process],
    url: str,
    token: str,
    script: Path | None,
    args: argparse.Namespace,
) -> tuple[str, float]:
    """wrk's report, and the CPU milliseconds the workers spent per request: unlike
    requests/s, hardly changed by other work on the machine."""
    before = sum(sum(w.cpu_times()[:2]) for w in workers)
    output = wrk_run(url, token, script, args)
    spent = sum(sum(w.cpu_times()[:2]) for w in workers) - before
    requests = re.search(r"(\d+) requests in", output)
    assert requests, output
    return output, 1000 * spent / max(1, int(requests.group(1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="only the requests whose name contains this")
    args = wrk_arguments(parser)
    with work_directory("overhead") as work, serving(work, args.workers) as (base, token):
        _, account = seed(base, token)
        database_url = embedded.start(work / "var")
        port = int(base.rsplit(":", 1)[1])
        # the service's workers: children of the supervisor, which holds the socket too
        service = processes_on(port)
        # the workers' memory: uvicorn's supervisor only waits for them
        service_workers = [c for p in workers_on(port) for c in p.children()] or workers_on(port)
        with bare_serving(database_url, args.workers) as bare:
            bare_port = int(bare.rsplit(":", 1)[1])
            bare_workers = processes_on(bare_port)
            put = lua(
                work,
                "put",
                "PUT",
                {
                    "data": {
                        "type": "accounts",
                        "id": int(account),
                        "attributes": {
                            "name": "name",
                            "max-balance": 20,
                            "invoice-period-id": 3,
                        },
                    }
                },
            )
            pay = lua(work, "pay", "POST", payment(account))
            cases = requests(account, put, pay)
            memory = PeakMemory(service_workers)
            print(
                f"| request | service req/s | bare req/s | service/bare |"
                f" service p99 ms | bare p99 ms | CPU ms/req service / bare |"
                f"  (median of {args.runs})"
            )
            print("|---|---:|---:|---:|---:|---:|---:|")
            with memory.sampling():
                for name, path, script in cases:
                    if args.only not in name:
                        continue
                    ours, theirs, our_p99, their_p99 = [], [], [], []
                    our_cpu, their_cpu = [], []
                    for _ in range(args.runs):
                        output, cpu = measured(service, f"{base}{path}", token, script, args)
                        ours.append(requests_per_second(output))
                        our_p99.append(p99_ms(output))
                        our_cpu.append(cpu)
                        output, cpu = measured(bare_workers, f"{bare}{path}", token, script, args)
                        theirs.append(requests_per_second(output))
                        their_p99.append(p99_ms(output))
                        their_cpu.append(cpu)
                    service_rate = statistics.median(ours)
                    bare_rate = statistics.median(theirs)
                    print(
                        f"| {name} | {service_rate:,.0f} | {bare_rate:,.0f} |"
                        f" {service_rate / bare_rate:.2f} |"
                        f" {statistics.median(our_p99):.1f} |"
                        f" {statistics.median(their_p99):.1f} |"
                        f" {statistics.median(our_cpu):.2f} / {statistics.median(their_cpu):.2f} |",
                        flush=True,
                    )
            peaks = ", ".join(f"{rss / 2**20:.0f}" for rss in sorted(memory.peak.values()))
            print(f"\npeak RSS per service worker under load (MiB): {peaks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
