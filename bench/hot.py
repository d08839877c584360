"""One hot account (issue 10, item 3): many clients move one account's money at once.

    .venv/bin/python bench/hot.py [--workers 2] [--connections 32] [--seconds 10] [--runs 1]

Starts `accounts-api serve` on a free 127.0.0.1 port with a fresh embedded PostgreSQL under a
temporary data directory (bench/run.py's `serving`), creates one account, then drives wrk
(Debian package `wrk`) at it: balance corrections of +0.01 (PUT), then payments of +0.01,
then transactions of 0.01 (charges), each run in turn. Prints requests/s and wrk's p99 latency
as a Markdown table, and checks the money afterwards:
- each kind's ledger entries on the account number at least the 2xx answers wrk counted and
  at most that plus the connections (writes in flight when wrk stopped still commit);
- the balance is exactly the sum of those entries' movements, and the ledger agrees with it
  (`accounts-api verify-ledger`'s check, through the API: the last entry's balance after).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    call,
    lua,
    p99_ms,
    payment,
    requests_per_second,
    seed,
    serving,
    work_directory,
    wrk_arguments,
    wrk_run,
)

AMOUNT = Decimal("0.01")
PREFIX = "/api/rest/admin"

# counts the 2xx answers across wrk's threads (a write in flight at the end is not one)
_COUNTING = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) answered = 0 end
function response(status, headers, body)
  if status >= 200 and status < 300 then answered = answered + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("answered") end
  io.write(string.format("Answered 2xx: %d\\n", total))
end
"""


def script(directory: Path, name: str, method: str, body: object) -> Path:
    """run.py's wrk script, counting the 2xx answers."""
    return lua(directory, name, method, body, more=_COUNTING)


def answered(output: str) -> int:
    match = re.search(r"Answered 2xx: (\d+)", output)
    assert match, output
    return int(match.group(1))


def main() -> int:
    # this benchmark's defaults; the command line's own options come later and win
    sys.argv[1:1] = ["--connections", "32", "--runs", "1"]
    args = wrk_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    with work_directory("hot") as work, serving(work, args.workers) as (base, token):
        _, account = seed(base, token)
        linked = {"account": {"data": {"type": "accounts", "id": account}}}
        cases = [
            (
                "PUT a balance correction",
                "correction",
                f"{PREFIX}/accounts/{account}/balance-correction",
                script(
                    work,
                    "correction",
                    "PUT",
                    {
                        "data": {
                            "type": "balance-correction",
                            "id": account,
                            "attributes": {"correction": str(AMOUNT)},
                        }
                    },
                ),
                AMOUNT,
            ),
            (
                "POST a payment",
                "payment",
                f"{PREFIX}/payments",
                script(work, "payment", "POST", payment(account, str(AMOUNT))),
                AMOUNT,
            ),
            (
                "POST a transaction",
                "transaction",
                f"{PREFIX}/transactions",
                script(
                    work,
                    "transaction",
                    "POST",
                    {
                        "data": {
                            "type": "transactions",
                            "attributes": {"amount": str(AMOUNT)},
                            "relationships": linked,
                        }
                    },
                ),
                -AMOUNT,
            ),
        ]
        print(
            f"| one account, {args.connections} connections, {args.workers} workers"
            " | requests/s | p99 ms | answered 2xx |"
        )
        print("|---|---:|---:|---:|")
        answers: dict[str, int] = {}
        for name, kind, path, lua, _ in cases:
            for _ in range(args.runs):
                output = wrk_run(f"{base}{path}", token, lua, args)
                answers[kind] = answers.get(kind, 0) + answered(output)
                rate, p99 = requests_per_second(output), p99_ms(output)
                print(f"| {name} | {rate:,.0f} | {p99:.1f} | {answered(output):,} |")
        # the writes in flight when wrk stopped are still being done
        time.sleep(2)
        expected = Decimal(0)
        problems = []
        for _, kind, _, _, effect in cases:
            entries = call(
                base,
                "GET",
                f"{PREFIX}/accounts/{account}/ledger-entries?filter%5Bkind_eq%5D={kind}"
                "&page%5Bsize%5D=1",
                token,
            )["meta"]["total-count"]
            count = answers[kind]
            print(f"{kind}: {count:,} answered 2xx, {entries:,} in the ledger")
            if not count <= entries <= count + args.connections * args.runs:
                problems.append(f"{kind}: {count} answered, {entries} in the ledger")
            expected += effect * entries
        balance = Decimal(
            call(base, "GET", f"{PREFIX}/accounts/{account}", token)["data"]["attributes"][
                "balance"
            ]
        )
        last = call(
            base,
            "GET",
            f"{PREFIX}/accounts/{account}/ledger-entries?sort=-id&page%5Bsize%5D=1",
            token,
        )["data"][0]["attributes"]["balance-after"]
        if balance != expected or Decimal(last) != balance:
            problems.append(
                f"balance {balance}, ledger entries imply {expected}, last entry {last}"
            )
        print(f"\nbalance {balance}: " + ("exact" if not problems else "; ".join(problems)))
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
