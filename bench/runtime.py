"""Server time at low load (issue 10, item 2): the `x-runtime` the service reports for the
contract's update example (the seed's PUT) and for GET one account, one request at a time.

    .venv/bin/python bench/runtime.py [--requests 300] [--before REV]

Starts `accounts-api serve --workers 1` as bench/run.py does, creates an account, then sends
a GET and a PUT in turn on one keep-alive connection and prints the median and p90 of
`x-runtime` over the last two thirds (the first third warms the caches). Each PUT changes the
account (its max-balance alternates), so every one writes, as the contract's example does on a
fresh account; Yeti documents 20.9 ms for it.

With `--before REV`, that revision (exported with `git archive`, run from its own source tree
with this virtualenv's packages) runs beside the working tree, each on its own embedded
PostgreSQL, and the requests go to one then the other in turn: on a machine shared with other
work, both see the same load, and the ratio of adjacent PUTs is printed too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
from contextlib import ExitStack
from urllib.parse import urlsplit

from run import ROOT, seed, serving, work_directory

ACCOUNTS = "/api/rest/admin/accounts"


class Target:
    """One server, its account and its keep-alive connection; the runtimes it reported."""

    def __init__(self, name: str, base: str, token: str):
        self.name = name
        self.token = token
        _, self.account = seed(base, token)
        parts = urlsplit(base)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.seconds: dict[str, list[float]] = {"GET": [], "PUT": []}

    def send(self, method: str, body: bytes | None) -> None:
        path = f"{ACCOUNTS}/{self.account}"
        headers = {"Authorization": self.token, "Content-Type": "application/vnd.api+json"}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{method} {path} answered {response.status}")
        self.seconds[method].append(float(response.getheader("x-runtime") or "nan"))


def update(account: str, index: int) -> bytes:
    attributes = {"name": "name", "max-balance": 20 + index % 2, "invoice-period-id": 3}
    return json.dumps(
        {"data": {"type": "accounts", "id": int(account), "attributes": attributes}}
    ).encode()


def summary(seconds: list[float]) -> str:
    kept = sorted(seconds[len(seconds) // 3 :])
    median = statistics.median(kept) * 1000
    p90 = kept[int(len(kept) * 0.9) - 1] * 1000
    return f"{median:.2f} | {p90:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--before", help="a revision to measure beside the working tree")
    args = parser.parse_args()
    with work_directory("runtime") as work, ExitStack() as stack:
        targets = []
        if args.before:
            source = work / "before"
            source.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.before, "src"],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
            (work / "b").mkdir()
            base, token = stack.enter_context(serving(work / "b", 1, source))
            targets.append(Target(args.before, base, token))
        (work / "a").mkdir()
        base, token = stack.enter_context(serving(work / "a", 1))
        targets.append(Target("this tree", base, token))
        for index in range(args.requests):
            # who goes first alternates: neither always follows the other's request
            for target in targets if index % 2 else targets[::-1]:
                target.send("GET", None)
                target.send("PUT", update(target.account, index))
        for target in targets:
            target.connection.close()
    print("| request, one at a time, 1 worker | x-runtime median ms | p90 ms |")
    print("|---|---:|---:|")
    for target in targets:
        label = f" ({target.name})" if args.before else ""
        gets, puts = target.seconds["GET"], target.seconds["PUT"]
        print(f"| GET one account{label} | {summary(gets)} |")
        print(f"| PUT one account (the contract's example){label} | {summary(puts)} |")
    if args.before:
        before, after = (target.seconds["PUT"][args.requests // 3 :] for target in targets)
        ratios = [a / b for a, b in zip(after, before, strict=True)]
        ratio = statistics.median(ratios)
        print(f"\nPUT, this tree / {args.before}, adjacent pairs: median {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
