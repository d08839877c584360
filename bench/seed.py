"""Seeds a database with many accounts, for bench/scale.py (issue 10: 10,000,000 accounts).

    .venv/bin/python bench/seed.py [--accounts 10000000] [--database-url URL | --data-dir DIR]

Into DATABASE_URL (or --database-url, or the embedded PostgreSQL under --data-dir), migrated
first: contractors (one per 1,000 accounts, at least 10), then accounts in batches of COPY,
each batch one transaction holding the accounts, their notification settings rows (as the API
creates them) and their opening ledger entries (balance_after = the balance: the database
refuses a balance its ledger does not explain, and `accounts-api verify-ledger` passes).

Values are derived from the account id, so a run is reproducible: names like
`Korvadi Telecom Lisbon 4242` (a first word of 32,768, so a name_cont on it matches about one
account in 30,000), contractors drawn with a skew (the first have the most accounts), balances
in [-500, 5000), unique external ids. Resumable: a run continues after the highest account id
present (the database should hold only seeded accounts); it ends with VACUUM ANALYZE.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import asyncpg

from accounts_api.db import embedded, migrate

SYLLABLES = (
    "ka ri to ven mo sa lu dor fe ni qua zel ar bo cy dex "
    "el fi gor ha in jo kel lam nor os pel ron su tav ul wex"
).split()
TRADES = (
    "Telecom Networks Voice Carrier Communications Solutions Systems Media Connect Mobile "
    "Cloud Digital Link Wireless Global Fiber Data Signal Transit Exchange"
).split()
CITIES = (
    "Lisbon Berlin Madrid Warsaw Kyiv Prague Vienna Dublin Oslo Riga Sofia Athens Rome Paris "
    "Lyon Porto Milan Zurich Geneva Munich Hamburg Vilnius Tallinn Helsinki Bergen Krakow Brno "
    "Seville Valencia Turin Naples Bristol Leeds Cork Gdansk Poznan Lodz Split Zagreb Ljubljana"
).split()
BATCH = 100_000
ACCOUNT_COLUMNS = ["id", "name", "contractor_id", "balance", "external_id", "currency_id",
                   "currency_name"]  # fmt: skip
EXTERNAL_BASE = 1_000_000_000


def name(account_id: int) -> str:
    draw = random.Random(account_id)
    first = "".join(draw.choice(SYLLABLES) for _ in range(3)).capitalize()
    return f"{first} {draw.choice(TRADES)} {draw.choice(CITIES)} {account_id}"


def contractor_index(account_id: int, contractors: int) -> int:
    """Skewed: contractor 0 gets the most accounts, the last ones a few."""
    draw = random.Random(-account_id).random()
    return min(int(contractors * draw * draw), contractors - 1)


def balance(account_id: int) -> Decimal:
    return Decimal(random.Random(account_id * 7919).randrange(-50_000, 500_000)) / 100


async def seed(url: str, accounts: int, report: Callable[[str], None] = print) -> None:
    migrate.upgrade(url)
    connection = await asyncpg.connect(url)
    try:
        contractor_count = max(10, accounts // 1000)
        await connection.execute(
            "INSERT INTO contractors (name, enabled, vendor, customer)"
            " SELECT 'Bench contractor ' || g, true, g % 3 = 0, true"
            " FROM generate_series(1, $1::int) g ON CONFLICT (name) DO NOTHING",
            contractor_count,
        )
        contractors = [
            row[0]
            for row in await connection.fetch(
                "SELECT id FROM contractors WHERE name LIKE 'Bench contractor %'"
                " ORDER BY substr(name, 18)::int"
            )
        ]
        start = await connection.fetchval("SELECT coalesce(max(id), 0) FROM accounts")
        if start:
            report(f"{start:,} accounts present, continuing")
        began, done = time.monotonic(), 0
        for first in range(start + 1, accounts + 1, BATCH):
            ids = range(first, min(first + BATCH, accounts + 1))
            rows = [
                (
                    i,
                    name(i),
                    contractors[contractor_index(i, len(contractors))],
                    balance(i),
                    EXTERNAL_BASE + i,
                    0,
                    "USD",
                )
                for i in ids
            ]
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "accounts", records=rows, columns=ACCOUNT_COLUMNS
                )
                await connection.copy_records_to_table(
                    "account_balance_notification_settings",
                    records=[(i,) for i in ids],
                    columns=["account_id"],
                )
                await connection.copy_records_to_table(
                    "ledger_entries",
                    records=[
                        (i, row[3], row[3], "opening", "Account", i)
                        for i, row in zip(ids, rows, strict=True)
                    ],
                    columns=[
                        "account_id",
                        "amount",
                        "balance_after",
                        "kind",
                        "source_type",
                        "source_id",
                    ],
                )
            done += len(ids)
            rate = done / (time.monotonic() - began)
            left = (accounts - ids[-1]) / rate
            report(f"{ids[-1]:,} / {accounts:,} accounts ({rate:,.0f}/s, {left:,.0f} s left)")
        # the API's creates continue after the seeded ids
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('accounts', 'id'),"
            " (SELECT coalesce(max(id), 1) FROM accounts))"
        )
        report("VACUUM ANALYZE ...")
        # also merges the trigram index's pending list and sets the visibility map, which
        # index-only scans of deep pages read
        for table in ("contractors", "accounts", "account_balance_notification_settings",
                      "ledger_entries"):  # fmt: skip
            await connection.execute(f"VACUUM (ANALYZE) {table}")
        total = await connection.fetchval(
            "SELECT sum(count)::bigint FROM row_counts WHERE table_name = 'accounts'"
        )
        report(f"{total:,} accounts")
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000_000)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    where.add_argument("--data-dir", type=Path, help="the embedded PostgreSQL under DIR")
    args = parser.parse_args()
    if args.data_dir is not None:
        url = embedded.start(args.data_dir)
    elif args.database_url:
        url = args.database_url
    else:
        raise SystemExit("give --database-url (or set DATABASE_URL) or --data-dir")
    asyncio.run(seed(url, args.accounts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
