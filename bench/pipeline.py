"""What the write pipeline (issue 7) costs a payment: the revision before it and this one,
measured in the same run, on loopback only.

    .venv/bin/python bench/pipeline.py [--before 8c750ea] [--workers 2] [--connections 16]
                                       [--seconds 10] [--runs 3]

Starts two servers side by side, each on a fresh embedded PostgreSQL under a temporary data
directory: the `--before` revision (exported with `git archive`, run from its own source tree
with this virtualenv's packages) and the working tree. Both get the same seed (bench/run.py's)
and wrk (Debian package `wrk`) runs POST /payments against each in turn, runs interleaved:
- a payment on an account without thresholds (the common case: the thresholds are read in the
  statement that moves the balance, nothing more);
- on this revision only, payments of +1 and -1 in turn around a low threshold of 0.5: each
  that crosses it writes its log row and its outbox event, and the server's delivery worker
  dispatches them (the share that crosses is printed: concurrent clients interleave).
Prints requests/s (median) and wrk's p99 latency as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    JSONAPI,
    ROOT,
    call,
    p99_ms,
    payment,
    requests_per_second,
    seed,
    serving,
    work_directory,
    wrk_arguments,
    wrk_run,
)


@dataclass
class Server:
    base: str
    token: str
    account: str
    crossing_account: str | None


@contextmanager
def server(source: Path, work: Path, workers: int, with_thresholds: bool) -> Iterator[Server]:
    """`accounts-api serve` from the package under `source`, seeded like bench/run.py."""
    with serving(work, workers, source) as (base, token):
        contractor, account = seed(base, token)
        crossing = None
        if with_thresholds:
            crossing = call(
                base,
                "POST",
                "/api/rest/admin/accounts",
                token,
                {
                    "data": {
                        "type": "accounts",
                        "attributes": {
                            "name": "bench-crossing",
                            "currency": "USD",
                            "balance-low-threshold": "0.5",
                        },
                        "relationships": {
                            "contractor": {"data": {"type": "contractors", "id": contractor}}
                        },
                    }
                },
            )["data"]["id"]
        yield Server(base, token, account, crossing)


def payment_script(directory: Path, name: str, account: str, amounts: list[str]) -> Path:
    """A wrk script posting payments on `account`, cycling through `amounts`."""
    bodies = [json.dumps(payment(account, amount)) for amount in amounts]
    lua_bodies = ", ".join("'" + body + "'" for body in bodies)
    path = directory / f"{name}.lua"
    path.write_text(
        f"local bodies = {{{lua_bodies}}}\n"
        "local n = 0\n"
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = "{JSONAPI}"\n'
        "request = function()\n"
        "  n = n + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])\n"
        "end\n"
    )
    return path


def measure(url: str, token: str, script: Path, args: argparse.Namespace) -> tuple[float, float]:
    """requests/s and p99 latency in ms of one wrk run."""
    output = wrk_run(url, token, script, args)
    return requests_per_second(output), p99_ms(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="8c750ea", help="the revision before the pipeline")
    args = wrk_arguments(parser)

    with work_directory("pipeline") as work:
        before_source = work / "before"
        before_source.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "src"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(before_source)], input=archive, check=True)
        (work / "b").mkdir()
        (work / "a").mkdir()
        results: dict[str, list[tuple[float, float]]] = {}
        with (
            server(before_source, work / "b", args.workers, with_thresholds=False) as before,
            server(ROOT, work / "a", args.workers, with_thresholds=True) as after,
        ):
            assert after.crossing_account is not None
            cases = [
                (
                    f"POST a payment, before ({args.before})",
                    before,
                    payment_script(work, "before", before.account, ["0.01"]),
                ),
                (
                    "POST a payment, with the pipeline",
                    after,
                    payment_script(work, "after", after.account, ["0.01"]),
                ),
                (
                    "POST a payment around a threshold (+1, -1 at 0.5)",
                    after,
                    payment_script(work, "crossing", after.crossing_account, ["1", "-1"]),
                ),
            ]
            for _ in range(args.runs):
                for name, target, script in cases:
                    url = f"{target.base}/api/rest/admin/payments"
                    results.setdefault(name, []).append(measure(url, target.token, script, args))
            account_filter = f"filter%5Baccount.id%5D={after.crossing_account}"
            events = call(
                after.base,
                "GET",
                f"/api/rest/admin/balance-notifications?{account_filter}",
                after.token,
            )["meta"]["total-count"]
            payments = call(
                after.base, "GET", f"/api/rest/admin/payments?{account_filter}", after.token
            )["meta"]["total-count"]
    print(f"| request | requests/s (median of {args.runs}) | p99 ms (median) |")
    print("|---|---:|---:|")
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        p99 = statistics.median(p for _, p in runs)
        print(f"| {name} | {rate:,.0f} | {p99:.1f} |")
    print(
        f"\n{payments:,} payments around the threshold logged {events:,} events: concurrent"
        f" clients interleave the +1 and -1, so {events / payments:.0%} of them crossed it."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
