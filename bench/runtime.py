"""Server time at low load (issue 10, item 2): the `x-runtime` the service reports for the
contract's update example (the seed's PUT) and for GET one account, one request at a time.

    .venv/bin/python bench/runtime.py [--requests 300]

Starts `accounts-api serve --workers 1` as bench/run.py does, creates an account, then sends
the requests one after the other on one keep-alive connection and prints the median and p90
of `x-runtime` over the last two thirds (the first third warms the caches). Each PUT changes
the account (its max-balance alternates), so every one writes, as the contract's example does
on a fresh account; Yeti documents 20.9 ms for it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
from urllib.parse import urlsplit

from run import seed, serving, work_directory

ACCOUNTS = "/api/rest/admin/accounts"


def runtimes(
    base: str, token: str, method: str, path: str, bodies: list[bytes | None]
) -> list[float]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    headers = {"Authorization": token, "Content-Type": "application/vnd.api+json"}
    seconds = []
    try:
        for body in bodies:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"{method} {path} answered {response.status}")
            seconds.append(float(response.getheader("x-runtime") or "nan"))
    finally:
        connection.close()
    return seconds


def summary(seconds: list[float]) -> str:
    kept = sorted(seconds[len(seconds) // 3 :])
    median = statistics.median(kept) * 1000
    p90 = kept[int(len(kept) * 0.9) - 1] * 1000
    return f"{median:.2f} | {p90:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with work_directory("runtime") as work, serving(work, 1) as (base, token):
        _, account = seed(base, token)
        path = f"{ACCOUNTS}/{account}"
        updates = [
            json.dumps(
                {
                    "data": {
                        "type": "accounts",
                        "id": int(account),
                        "attributes": {
                            "name": "name",
                            "max-balance": 20 + index % 2,
                            "invoice-period-id": 3,
                        },
                    }
                }
            ).encode()
            for index in range(args.requests)
        ]
        gets = runtimes(base, token, "GET", path, [None] * args.requests)
        puts = runtimes(base, token, "PUT", path, updates)
        print("| request, one at a time, 1 worker | x-runtime median ms | p90 ms |")
        print("|---|---:|---:|")
        print(f"| GET one account | {summary(gets)} |")
        print(f"| PUT one account (the contract's example) | {summary(puts)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
