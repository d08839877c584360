"""The lists at scale (issue 10, item 4): p99 latencies over many accounts.

    .venv/bin/python bench/scale.py [--accounts 10000000] [--work var/bench-scale]
                                    [--workers 2] [--connections 16] [--seconds 10] [--runs 3]

Seeds (bench/seed.py, resumed when the work directory already holds some accounts) the
embedded PostgreSQL under WORK/var, starts `accounts-api serve` on it (bench/run.py's
`serving`), and drives each request with wrk, printing requests/s and p99 latency (the median
of the runs) beside issue 10's targets, as a Markdown table for docs/benchmarks.md. The work
directory is kept: a 10M seed takes a while and a few GB.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
from run import ROOT, p99_ms, requests_per_second, serving, wrk_arguments, wrk_run
from seed import name, seed

from accounts_api.db import embedded

PREFIX = "/api/rest/admin/accounts"


async def _targets(url: str, accounts: int) -> dict[str, str]:
    """Values of the measured requests, taken from the seeded rows."""
    connection = await asyncpg.connect(url)
    try:
        biggest = await connection.fetchval(
            "SELECT contractor_id FROM accounts WHERE id <= 10000 GROUP BY 1"
            " ORDER BY count(*) DESC LIMIT 1"
        )
    finally:
        await connection.close()
    middle = accounts // 2
    return {
        "account": str(middle),
        # the first word of a name: about one account in 30,000 shares it
        "word": name(middle).split(" ")[0].lower(),
        "contractor": str(biggest),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000_000)
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench-scale")
    args = wrk_arguments(parser)
    work: Path = args.work.resolve()
    url = embedded.start(work / "var")
    asyncio.run(seed(url, args.accounts))
    values = asyncio.run(_targets(url, args.accounts))
    cases = [
        ("GET one account", f"/{values['account']}", 5),
        ("filter[name_cont], a page", "?" + urlencode({"filter[name_cont]": values["word"]}), 50),
        (
            "filter[contractor.id] + sort=-balance",
            "?" + urlencode({"filter[contractor.id]": values["contractor"], "sort": "-balance"}),
            30,
        ),
        ("page[number]=10000", "?" + urlencode({"page[number]": 10000}), 100),
        ("unfiltered list (total-count)", "", None),
    ]
    print(f"{args.accounts:,} accounts, {args.workers} workers, {args.connections} connections")
    print(f"| request | requests/s | p99 ms (median of {args.runs}) | target p99 ms |")
    print("|---|---:|---:|---:|")
    with serving(work, args.workers) as (base, token):
        for label, path, target in cases:
            outputs = [
                wrk_run(f"{base}{PREFIX}{path}", token, None, args) for _ in range(args.runs)
            ]
            rate = statistics.median(requests_per_second(output) for output in outputs)
            p99 = statistics.median(p99_ms(output) for output in outputs)
            wanted = f"{target}" if target is not None else ""
            print(f"| {label} | {rate:,.0f} | {p99:,.1f} | {wanted} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
