"""Versioned migrations (issue 2, item 2): Alembic creates the schema, and the database itself
enforces unique names/uuids/external ids, foreign keys, NOT NULLs, ranges and numeric money.

Runs against a scratch database of its own on the test server, created and dropped here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tests.conftest import run, scratch_database

from accounts_api.db import embedded, migrate

SCRATCH = "accounts_api_scratch_migrate"

HEAD = migrate.head_revision()

TABLES = {
    "account_balance_notification_settings",
    "accounts",
    "admin_users",
    "audit_log",
    "contacts",
    "contractors",
    "currencies",
    "invoice_templates",
    "payments",
    "services",
    "ledger_entries",
    "idempotency_keys",
    "login_throttle",
    "smtp_connections",
    "transactions",
    # 0005: balance notifications
    "balance_notifications",
    "event_subscriptions",
    "outbox",
    "email_deliveries",
    "webhook_deliveries",
    "webhook_attempts",
    # 0006: exact row counts kept by triggers
    "row_counts",
}


async def _execute(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(sql, *args)  # type: ignore[no-any-return]
    finally:
        await connection.close()


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    return run(_fetch(url, sql, *args))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def scratch_url(database_url: str) -> Iterator[str]:
    server = embedded.with_database(database_url, "postgres")
    run(_execute(server, f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)"))
    run(_execute(server, f"CREATE DATABASE {SCRATCH}"))
    try:
        yield embedded.with_database(database_url, SCRATCH)
    finally:
        run(_execute(server, f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)"))


@pytest.fixture
def url(scratch_url: str) -> str:
    """The scratch database at head."""
    migrate.upgrade(scratch_url)
    return scratch_url


def tables(url: str) -> set[str]:
    rows = fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


def version(url: str) -> list[str]:
    return [row["version_num"] for row in fetch(url, "SELECT version_num FROM alembic_version")]


def currencies(url: str) -> list[tuple[Any, ...]]:
    rows = fetch(url, "SELECT id, name, rate, rate_provider_id FROM currencies ORDER BY id")
    return [tuple(row) for row in rows]


def test_upgrade_creates_every_table_and_the_default_currency(url: str) -> None:
    assert tables(url) == TABLES | {"alembic_version"}
    assert version(url) == [HEAD]
    # contract §5.3: a fresh database holds the default currency
    assert currencies(url) == [(0, "USD", 1.0, None)]


def test_upgrade_twice_is_a_no_op(url: str) -> None:
    fetch(
        url,
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('kept', true, true, true)",
    )
    try:
        migrate.upgrade(url)
        assert version(url) == [HEAD]
        assert tables(url) == TABLES | {"alembic_version"}
        assert currencies(url) == [(0, "USD", 1.0, None)]
        assert [row["name"] for row in fetch(url, "SELECT name FROM contractors")] == ["kept"]
    finally:
        fetch(url, "DELETE FROM contractors")


def test_downgrade_to_base_drops_the_schema_and_upgrade_recreates_it(url: str) -> None:
    migrate.downgrade(url, "base")
    assert tables(url) == {"alembic_version"}
    assert version(url) == []

    migrate.upgrade(url)
    assert tables(url) == TABLES | {"alembic_version"}
    assert version(url) == [HEAD]
    assert currencies(url) == [(0, "USD", 1.0, None)]


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("accounts", "balance"),
        ("accounts", "min_balance"),
        ("accounts", "max_balance"),
        ("accounts", "vat"),
        ("payments", "amount"),
        ("transactions", "amount"),
    ],
)
def test_money_columns_are_numeric(url: str, table: str, column: str) -> None:
    rows = fetch(
        url,
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2",
        table,
        column,
    )
    assert [row["data_type"] for row in rows] == ["numeric"]


EXISTING_UUID = "0b6c0a9e-1d53-4a3c-9d5c-33e1b1d2a001"

# One contractor and one account; each case then inserts a row that repeats exactly one of
# their constrained values (or breaks exactly one rule), everything else being distinct.
ARRANGE = f"""
INSERT INTO contractors (id, name, enabled, vendor, customer)
VALUES (1000, 'acme', true, true, false);
INSERT INTO accounts (contractor_id, name, uuid, external_id, currency_id, currency_name)
VALUES (1000, 'acme-main', '{EXISTING_UUID}', 100, 0, 'USD');
"""


def insert(table: str, values: dict[str, Any]) -> str:
    columns = ", ".join(values)
    return f"INSERT INTO {table} ({columns}) VALUES ({', '.join(map(str, values.values()))})"


def account(**columns: Any) -> str:
    values = {
        "contractor_id": 1000,
        "name": "'other'",
        "uuid": f"'{uuid.uuid4()}'",
        "external_id": 200,
        "currency_id": 0,
        "currency_name": "'USD'",
        **columns,
    }
    return insert("accounts", values)


def contractor(**columns: Any) -> str:
    values = {"name": "'other'", "enabled": "true", "vendor": "true", "customer": "true", **columns}
    return insert("contractors", values)


@pytest.mark.parametrize(
    ("statement", "violation", "column"),
    [
        pytest.param(account(), None, None, id="control-account"),
        pytest.param(contractor(), None, None, id="control-contractor"),
        pytest.param(account(min_balance=5, max_balance=5), None, None, id="control-equal-range"),
        pytest.param(
            account(name="'acme-main'"), asyncpg.UniqueViolationError, "name", id="accounts.name"
        ),
        pytest.param(
            account(uuid=f"'{EXISTING_UUID}'"),
            asyncpg.UniqueViolationError,
            "uuid",
            id="accounts.uuid",
        ),
        pytest.param(
            account(external_id=100),
            asyncpg.UniqueViolationError,
            "external_id",
            id="accounts.external_id",
        ),
        pytest.param(
            contractor(name="'acme'"), asyncpg.UniqueViolationError, "name", id="contractors.name"
        ),
        pytest.param(
            account(contractor_id=999),
            asyncpg.ForeignKeyViolationError,
            "contractor_id",
            id="accounts.contractor_id",
        ),
        pytest.param(
            contractor(enabled="NULL"),
            asyncpg.NotNullViolationError,
            "enabled",
            id="contractors.enabled",
        ),
        pytest.param(
            account(min_balance=10, max_balance=5),
            asyncpg.CheckViolationError,
            None,
            id="accounts.max_balance>=min_balance",
        ),
    ],
)
def test_the_database_enforces(
    url: str, statement: str, violation: type[Exception] | None, column: str | None
) -> None:
    async def attempt() -> BaseException | None:
        connection = await asyncpg.connect(url)
        try:
            transaction = connection.transaction()
            await transaction.start()
            try:
                await connection.execute(ARRANGE)
                await connection.execute(statement)
            except asyncpg.PostgresError as error:
                return error
            finally:
                await transaction.rollback()
            return None
        finally:
            await connection.close()

    error = run(attempt())
    if violation is None:
        assert error is None
    else:
        assert isinstance(error, violation), error
        if isinstance(error, asyncpg.NotNullViolationError):
            assert error.column_name == column
        elif column is not None:  # the violation is about that column, not another key
            assert f"Key ({column})=" in error.detail  # type: ignore[attr-defined]


CONCURRENTLY = Path(__file__).resolve().parents[2] / "deploy" / "indexes-concurrently.sql"


def statements(script: str) -> list[str]:
    """The script's statements one by one, as psql sends them (CREATE INDEX CONCURRENTLY may not
    share a transaction, and a string of several statements is one)."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def indexes(url: str) -> dict[str, tuple[int, str]]:
    """The indexes of accounts and contractors: name -> (oid, definition)."""
    rows = fetch(
        url,
        "SELECT c.oid::int AS oid, i.indexname, i.indexdef FROM pg_indexes i"
        " JOIN pg_class c ON c.relname = i.indexname"
        " WHERE i.schemaname = 'public' AND i.tablename IN ('accounts', 'contractors')",
    )
    return {row["indexname"]: (row["oid"], row["indexdef"]) for row in rows}


def test_indexes_built_concurrently_first_are_kept_by_the_migrations(
    database_url: str, url: str
) -> None:
    """docs/deploy.md, "Upgrading a large database": deploy/indexes-concurrently.sql builds the
    indexes of 0006 and 0008 on a database at 0005 without blocking writes; the migrations then
    build none again (the same index objects remain) and end where a fresh upgrade ends."""
    fresh = {name: definition for name, (_, definition) in indexes(url).items()}
    with scratch_database(database_url, "accounts_api_scratch_concurrently") as large:
        migrate.upgrade(large, "0005")
        for statement in statements(CONCURRENTLY.read_text()):
            run(_execute(large, statement))
        built = indexes(large)

        migrate.upgrade(large)

        after = indexes(large)
    assert {name: definition for name, (_, definition) in after.items()} == fresh
    kept = set(built) & set(after)
    assert {
        "accounts_name_trgm_idx",
        "accounts_balance_id_idx",
        "accounts_external_id_id_idx",
    } <= kept
    assert all(after[name][0] == built[name][0] for name in kept)
