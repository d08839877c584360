"""The plans of account lists (issue 10, item 4): each filter and sort family the API offers is
answered by an index, deep pages join only the page's rows, and the unfiltered total reads no
account.

The statements are the engine's own (`list_statements` on a parsed query string), EXPLAINed on
a scratch database of 25,000 accounts. The data is deterministic and smaller than ANALYZE's
sample (30,000 rows at the default statistics target), so the statistics, hence the plans, are
the same on every run; nothing is forced (no `enable_seqscan`): the planner picks the index on
its costs, and a missing index fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest
from tests.conftest import run, scratch_database

from accounts_api.db import migrate
from accounts_api.jsonapi.endpoints import Statement, list_statements
from accounts_api.jsonapi.query import QueryParser
from accounts_api.resources import REGISTRY
from accounts_api.resources.accounts import ACCOUNTS

ACCOUNT_COUNT = 25_000
CONTRACTOR_COUNT = 500
PAGE_SIZE = 50

# Names like `CoreLink Globcore 17`: four word parts of twenty, so a word matches about one
# account in 400 and a whole name one; contractors by a skewed draw (the first have thousands
# of accounts, most a few dozen); balances spread over [-500, 1500); one account in 500 is in
# EUR. Every value is derived from md5(g): the same rows on every run and server.
SEED = f"""
INSERT INTO currencies (name, rate) VALUES ('EUR', 1.1);
INSERT INTO contractors (name, enabled, vendor, customer)
SELECT 'Contractor ' || g, true, g % 3 = 0, true FROM generate_series(1, {CONTRACTOR_COUNT}) g;
WITH words AS (
    SELECT ARRAY['Nova', 'Tel', 'Link', 'Voice', 'Net', 'Star', 'Glob', 'Fon', 'Carrier',
                 'Wave', 'Axis', 'Prime', 'Sky', 'Zen', 'Orbit', 'Pulse', 'Core', 'Metro',
                 'Delta', 'Echo'] AS w
), drawn AS (
    SELECT g, decode(md5(g::text), 'hex') AS h FROM generate_series(1, {ACCOUNT_COUNT}) g
), made AS (
    INSERT INTO accounts (name, contractor_id, balance, vat, external_id, currency_id,
                          currency_name)
    SELECT w[1 + get_byte(h, 0) % 20] || w[1 + get_byte(h, 1) % 20] || ' '
               || w[1 + get_byte(h, 2) % 20] || lower(w[1 + get_byte(h, 3) % 20]) || ' ' || g,
           (SELECT min(id) FROM contractors)
               + ({CONTRACTOR_COUNT} * power(get_byte(h, 4) / 256.0 + get_byte(h, 5) / 65536.0, 2))
                 ::int % {CONTRACTOR_COUNT},
           (get_byte(h, 6) * 256 + get_byte(h, 7)) * 2000 / 65536.0 - 500,
           20,
           1000000 + g,
           CASE WHEN g % 500 = 0 THEN (SELECT id FROM currencies WHERE name = 'EUR') ELSE 0 END,
           CASE WHEN g % 500 = 0 THEN 'EUR' ELSE 'USD' END
    FROM words, drawn
    ORDER BY g
    RETURNING id, balance
), settings AS (
    INSERT INTO account_balance_notification_settings (account_id, low_threshold)
    SELECT id, CASE WHEN id % 100 = 0 THEN -100 END FROM made
)
-- the database refuses a balance its ledger does not explain: each opens with its balance
INSERT INTO ledger_entries (account_id, amount, balance_after, kind, source_type, source_id)
SELECT id, balance, balance, 'opening', 'Account', id FROM made;
"""


async def _seed(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(SEED)
        # VACUUM merges the trigram indexes' pending lists, which the planner costs as a scan
        for table in ("accounts", "account_balance_notification_settings", "contractors"):
            await connection.execute(f"VACUUM ANALYZE {table}")
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def url(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "accounts_api_scratch_plans") as scratch:
        migrate.upgrade(scratch)
        run(_seed(scratch))
        yield scratch


def statements(query_string: str) -> tuple[Statement, Statement]:
    query = QueryParser(ACCOUNTS, REGISTRY).parse(query_string, index=True)
    return list_statements(ACCOUNTS, query)


async def _explain(url: str, statement: Statement, analyze: bool) -> dict[str, Any]:
    connection = await asyncpg.connect(url)
    try:
        options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
        raw = await connection.fetchval(f"EXPLAIN ({options}) {statement.sql}", *statement.args)
        plan: dict[str, Any] = json.loads(raw)[0]["Plan"]
        return plan
    finally:
        await connection.close()


def explain(url: str, statement: Statement, *, analyze: bool = False) -> dict[str, Any]:
    return run(_explain(url, statement, analyze))  # type: ignore[no-any-return]


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def indexes_used(plan: dict[str, Any]) -> set[str]:
    return {node["Index Name"] for node in nodes(plan) if "Index Name" in node}


def seq_scanned(plan: dict[str, Any]) -> set[str]:
    return {node["Relation Name"] for node in nodes(plan) if node["Node Type"] == "Seq Scan"}


def sorts(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for node in nodes(plan) if node["Node Type"] in ("Sort", "Incremental Sort")]


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def query() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return run(query())  # type: ignore[no-any-return]


def sample(url: str, account_id: int) -> asyncpg.Record:
    rows = fetch(url, "SELECT name, uuid FROM accounts WHERE id = $1", account_id)
    return rows[0]


# filter -> the index that must answer it, in the page's plan and the total's
FILTERS = {
    "name_cont": "accounts_name_trgm_idx",
    "name_start": "accounts_name_trgm_idx",
    "name_end": "accounts_name_trgm_idx",
    "name_cont_any": "accounts_name_trgm_idx",
    "name_eq": "accounts_name_key",
    "name_in": "accounts_name_key",
    "name": "accounts_name_key",
    "uuid_eq": "accounts_uuid_key",
    "uuid_in": "accounts_uuid_key",
    "external_id_eq": "accounts_external_id_numeric_idx",
    "external_id_gt": "accounts_external_id_numeric_idx",
    "balance_lt": "accounts_balance_id_idx",
    "balance_gteq": "accounts_balance_id_idx",
    "currency_id_eq": "accounts_currency_id_idx",
    "contractor.id": "accounts_contractor_balance_id_idx",
    "id": "accounts_pkey",
}


def filter_value(url: str, name: str) -> str:
    """A selective value of each filter, taken from the seeded rows."""
    named = sample(url, 7777)
    other = sample(url, 12345)
    first, second, number = named["name"].split(" ")
    return {
        "name_cont": second.lower()[2:],  # `orbittel` -> `bittel`: one account in ~400
        "name_start": f"{first} {second}",
        "name_end": f"{second[-3:]} {number}",
        "name_cont_any": f"{second},{other['name'].split(' ')[1]}",
        "name_eq": named["name"],
        "name_in": f"{named['name']},{other['name']}",
        "name": named["name"],
        "uuid_eq": str(named["uuid"]),
        "uuid_in": f"{named['uuid']},{other['uuid']}",
        "external_id_eq": "1007777",
        "external_id_gt": str(1000000 + ACCOUNT_COUNT - 20),
        "balance_lt": "-499.5",
        "balance_gteq": "1499.5",
        "currency_id_eq": str(fetch(url, "SELECT id FROM currencies WHERE name = 'EUR'")[0][0]),
        # the contractor with the fewest accounts
        "contractor.id": str(
            fetch(
                url,
                "SELECT contractor_id FROM accounts GROUP BY 1 ORDER BY count(*), 1 LIMIT 1",
            )[0][0]
        ),
        "id": "7777,12345",
    }[name]


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_a_selective_filter_is_answered_by_its_index(url: str, name: str) -> None:
    key = f"filter[{name.replace('_', '-')}]"
    page, total = statements(urlencode({key: filter_value(url, name)}))
    for statement in (page, total):
        plan = explain(url, statement)
        assert "accounts" not in seq_scanned(plan), statement.sql
        assert FILTERS[name] in indexes_used(plan), (statement.sql, indexes_used(plan))
    # the value is selective indeed, and matches: the plans are those of a real question
    assert 0 < fetch(url, total.sql, *total.args)[0][0] < ACCOUNT_COUNT / 100


# sort -> the index that gives the order: the page is read in order, no Sort node
SORTS = {
    "id": "accounts_pkey",
    "-id": "accounts_pkey",
    "name": "accounts_name_key",
    "-name": "accounts_name_key",
    "balance": "accounts_balance_id_idx",
    "-balance": "accounts_balance_id_idx",
    "external-id": "accounts_external_id_id_idx",
    "-external-id": "accounts_external_id_id_idx",
    "uuid": "accounts_uuid_key",
}
# sortable on purpose without an index: each index on accounts is written by every balance
# change (balance is indexed), and these are settings of few values, whose sort is a rare full
# listing (migration 0006)
UNINDEXED_SORTS = {
    "min-balance",
    "max-balance",
    "vat",
    "destination-rate-limit",
    "max-call-duration",
    "origination-capacity",
    "termination-capacity",
    "total-capacity",
    "send-invoices-to",
    "invoice-period-id",
    "timezone",
    "currency",
}


def test_every_sortable_attribute_is_indexed_or_listed_as_not() -> None:
    sortable = {a.key for a in ACCOUNTS.attributes if ACCOUNTS.sort_sql(a.name) is not None}
    assert sortable | {"id"} == {key.lstrip("-") for key in SORTS} | UNINDEXED_SORTS


@pytest.mark.parametrize(
    ("sort", "order_by"),
    [
        ("", "a.id ASC"),
        ("-id", "a.id DESC"),
        ("balance,id", "a.balance ASC, a.id ASC"),
        ("-balance", "a.balance DESC, a.id DESC"),
        ("-vat,balance", "a.vat DESC, a.balance ASC, a.id ASC"),
        # unique and never null: no ties, and its index alone gives the order
        ("-name", "a.name DESC"),
        ("uuid,vat", "a.uuid ASC, a.vat ASC"),
    ],
)
def test_the_id_breaks_ties_once(sort: str, order_by: str) -> None:
    page, _ = statements(urlencode({"sort": sort}) if sort else "")
    assert f" ORDER BY {order_by} LIMIT " in page.sql


@pytest.mark.parametrize("sort", sorted(SORTS))
def test_a_sort_is_read_in_index_order(url: str, sort: str) -> None:
    page, _ = statements(urlencode({"sort": sort}))
    plan = explain(url, page)
    assert SORTS[sort] in indexes_used(plan), (page.sql, indexes_used(plan))
    # the outer ORDER BY of the page's positions sorts 50 rows; nothing sorts accounts
    assert all("page_ids.position" in " ".join(node["Sort Key"]) for node in sorts(plan))
    assert "accounts" not in seq_scanned(plan)


def test_a_contractors_accounts_by_balance_are_read_in_index_order(url: str) -> None:
    """filter[contractor.id] + sort=-balance, for the contractor with the most accounts."""
    biggest = fetch(
        url, "SELECT contractor_id FROM accounts GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )[0][0]
    assert fetch(url, "SELECT count(*) FROM accounts WHERE contractor_id = $1", biggest)[0][0] > 500
    page, total = statements(urlencode({"filter[contractor.id]": biggest, "sort": "-balance"}))
    plan = explain(url, page, analyze=True)
    assert "accounts_contractor_balance_id_idx" in indexes_used(plan)
    assert all("page_ids.position" in " ".join(node["Sort Key"]) for node in sorts(plan))
    scans = [n for n in nodes(plan) if n.get("Index Name") == "accounts_contractor_balance_id_idx"]
    # it stops at the page
    assert sum(node["Actual Rows"] * node["Actual Loops"] for node in scans) == PAGE_SIZE
    assert "accounts_contractor_balance_id_idx" in indexes_used(explain(url, total))


def test_a_deep_page_joins_the_settings_of_its_rows_only(url: str) -> None:
    deep = ACCOUNT_COUNT // PAGE_SIZE - 10
    page, _ = statements(urlencode({"page[number]": deep, "page[size]": PAGE_SIZE}))
    plan = explain(url, page, analyze=True)
    assert not seq_scanned(plan), page.sql
    settings = [
        node
        for node in nodes(plan)
        if node.get("Relation Name") == "account_balance_notification_settings"
    ]
    assert settings
    assert sum(node["Actual Rows"] * node["Actual Loops"] for node in settings) == PAGE_SIZE
    ids = [row[0] for row in fetch(url, page.sql, *page.args)]
    assert ids == list(range((deep - 1) * PAGE_SIZE + 1, deep * PAGE_SIZE + 1))


def test_a_filter_on_a_settings_attribute_joins_before_it_pages(url: str) -> None:
    page, total = statements(urlencode({"filter[balance-low-threshold-eq]": "-100"}))
    assert "page_ids" not in page.sql
    rows = fetch(url, page.sql, *page.args)
    assert [row[0] for row in rows] == list(range(100, 100 * (PAGE_SIZE + 1), 100))
    assert fetch(url, total.sql, *total.args)[0][0] == ACCOUNT_COUNT // 100


def test_the_unfiltered_total_reads_no_account(url: str) -> None:
    _, total = statements("")
    plan = explain(url, total)
    assert {n.get("Relation Name") for n in nodes(plan)} - {None} == {"row_counts"}
    assert fetch(url, total.sql)[0][0] == ACCOUNT_COUNT
    # an empty `in` adds no condition: still the counter
    assert statements(urlencode({"filter[name-in]": ""}))[1] == total
