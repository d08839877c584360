"""Query budgets (DESIGN: a request does a fixed number of queries, whatever the page size or
the includes). Each budget counts every statement the app sends for one request, with warm
connections and a warm cache of admins (issue 10: the token's admin costs no statement while
the cache listens; the pool sends nothing on release)."""

from __future__ import annotations

from collections.abc import Callable

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import Api, Db, QueryLog, wait_until

PREFIX = "/api/rest/admin"

# resource path -> (SQL inserting `count` rows, the include to ask for or None)
ROWS: dict[str, tuple[str, str | None]] = {
    "contractors": (
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " SELECT 'contractor-' || g, true, true, false FROM generate_series($1::int, $2::int) g",
        "smtp-connection",
    ),
    "contacts": (
        "INSERT INTO contacts (contractor_id, email)"
        " SELECT (SELECT min(id) FROM contractors), 'e' || g"
        " FROM generate_series($1::int, $2::int) g",
        "contractor",
    ),
    "currencies": (
        "INSERT INTO currencies (name, rate)"
        " SELECT (ARRAY['EUR','GBP','JPY','CHF','PLN','UAH','ILS','CAD'])[g], 1.5"
        " FROM generate_series($1::int, $2::int) g",
        None,
    ),
    "invoice-template": (
        "INSERT INTO invoice_templates (name, html_template)"
        " SELECT 't' || g, 'x' FROM generate_series($1::int, $2::int) g",
        None,
    ),
    "accounts": (
        "WITH a AS (INSERT INTO accounts (name, contractor_id, currency_id, currency_name)"
        " SELECT 'a' || g, (SELECT min(id) FROM contractors), 0, 'USD'"
        " FROM generate_series($1::int, $2::int) g RETURNING id)"
        " INSERT INTO account_balance_notification_settings (account_id) SELECT id FROM a",
        "contractor,invoice-template",
    ),
    "balance-notifications": (
        "INSERT INTO balance_notifications (event_id, account_id, account_balance)"
        " SELECT 1 + g % 4, g, g FROM generate_series($1::int, $2::int) g",
        None,
    ),
    "smtp-connections": (
        "INSERT INTO smtp_connections (name, host, from_address)"
        " SELECT 'smtp-' || g, 'smtp.example.com', 'billing@example.com'"
        " FROM generate_series($1::int, $2::int) g",
        None,
    ),
    "event-subscriptions": (
        "INSERT INTO event_subscriptions (event, secret)"
        " SELECT (ARRAY['AccountLowThesholdCleared', 'AccountHighThesholdCleared',"
        " 'AccountLowThesholdReached', 'AccountHighThesholdReached'])[g],"
        " 'whsec_AAAAAAAAAAAAAAAAAAAAAA' FROM generate_series($1::int, $2::int) g",
        None,
    ),
    # issue 7: the delivery logs, each call under an event of its own
    "webhook-deliveries": (
        "WITH o AS (INSERT INTO outbox (event, data) VALUES ('AccountLowThesholdReached', '{}')"
        " RETURNING id)"
        " INSERT INTO webhook_deliveries (outbox_id, webhook_id, event, url, body)"
        " SELECT o.id, 'msg_' || g, 'AccountLowThesholdReached', 'http://127.0.0.1/', '{}'"
        " FROM o, generate_series($1::int, $2::int) g",
        None,
    ),
    "webhook-attempts": (
        "WITH o AS (INSERT INTO outbox (event, data) VALUES ('AccountLowThesholdReached', '{}')"
        " RETURNING id),"
        " w AS (INSERT INTO webhook_deliveries (outbox_id, webhook_id, event, url, body)"
        " SELECT o.id, 'msg_' || o.id, 'AccountLowThesholdReached', 'http://127.0.0.1/', '{}'"
        " FROM o RETURNING id)"
        " INSERT INTO webhook_attempts (webhook_delivery_id, attempt, duration_ms)"
        " SELECT w.id, g, 1 FROM w, generate_series($1::int, $2::int) g",
        "webhook-delivery",
    ),
}
# tables that cannot hold 50 rows: one row per currency name, per event
MOST_ROWS = {"currencies": 8, "event-subscriptions": 4}

# The most statements one request may send: the page and the count; one more per include
# path; a show has no count.
INDEX_BUDGET = 2
SHOW_BUDGET = 1


def count(query_log: QueryLog, send: Callable[[], httpx.Response]) -> int:
    assert send().status_code == 200  # warm-up: prepared statements, caches
    query_log.reset()
    response = send()
    assert response.status_code == 200, response.text
    return query_log.count


@pytest.fixture(autouse=True)
def admins_cached(app_client: TestClient) -> None:
    """The cache of admins listens (it reconnects after a test that ended its session)."""
    cache = app_client.app.state.admin_cache  # type: ignore[attr-defined]
    assert wait_until(lambda: cache.listening)


@pytest.fixture
def arranged(db: Db) -> Callable[[str, int, int], None]:
    db.execute(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('base', true, true, false)"
    )

    def arrange(path: str, first: int, last: int) -> None:
        db.execute(ROWS[path][0], first, last)

    return arrange


@pytest.mark.parametrize("path", list(ROWS))
def test_index_queries_do_not_grow_with_the_page(
    api: Api, arranged: Callable[[str, int, int], None], query_log: QueryLog, path: str
) -> None:
    include = ROWS[path][1]
    params = {"include": include} if include else {}
    arranged(path, 1, 1)
    with_one = count(query_log, lambda: api.get(f"{PREFIX}/{path}", params=params))
    arranged(path, 2, MOST_ROWS.get(path, 50))
    with_many = count(query_log, lambda: api.get(f"{PREFIX}/{path}", params=params))
    assert with_one == with_many
    assert with_many <= INDEX_BUDGET + (len(include.split(",")) if include else 0)


@pytest.mark.parametrize("path", list(ROWS))
def test_show_stays_within_budget(
    api: Api, arranged: Callable[[str, int, int], None], db: Db, query_log: QueryLog, path: str
) -> None:
    arranged(path, 1, 1)
    listed = api.get(f"{PREFIX}/{path}").json()["data"]
    key = listed[-1]["id"]
    assert count(query_log, lambda: api.get(f"{PREFIX}/{path}/{key}")) <= SHOW_BUDGET


def test_timezones_index_within_budget(api: Api, query_log: QueryLog) -> None:
    assert count(query_log, lambda: api.get(f"{PREFIX}/timezones")) <= INDEX_BUDGET


def test_nested_attempts_queries_do_not_grow_with_the_page(
    api: Api, arranged: Callable[[str, int, int], None], db: Db, query_log: QueryLog
) -> None:
    arranged("webhook-attempts", 1, 1)
    delivery = db.fetchval("SELECT min(id) FROM webhook_deliveries")
    path = f"{PREFIX}/webhook-deliveries/{delivery}/webhook-attempts"
    with_one = count(query_log, lambda: api.get(path))
    db.execute(
        "INSERT INTO webhook_attempts (webhook_delivery_id, attempt, duration_ms)"
        " SELECT $1, g, 1 FROM generate_series(2, 50) g",
        delivery,
    )
    with_many = count(query_log, lambda: api.get(path))
    # one more than an index: the parent delivery must exist
    assert with_one == with_many <= INDEX_BUDGET + 1


# issue 10: the contract's update example, which changes the name, max-balance and period:
# BEGIN, the row locked, then one statement with its lookups (after the lock: see
# resources/accounts.py `update`), the change with its audit and settings rows and the answer's
# row, COMMIT
UPDATE_BUDGET = 4


def test_account_update_within_budget(api: Api, db: Db, query_log: QueryLog) -> None:
    contractor = db.fetchval(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('budget', true, true, false) RETURNING id"
    )
    body = {
        "data": {
            "type": "accounts",
            "attributes": {"name": "budget", "currency": "USD"},
            "relationships": {"contractor": {"data": {"type": "contractors", "id": contractor}}},
        }
    }
    account = api.post(f"{PREFIX}/accounts", body).json()["data"]["id"]
    max_balances = iter(range(20, 30))

    def update() -> httpx.Response:
        attributes = {"name": "name", "max-balance": next(max_balances), "invoice-period-id": 3}
        document = {"data": {"type": "accounts", "id": int(account), "attributes": attributes}}
        return api.put(f"{PREFIX}/accounts/{account}", document)

    assert count(query_log, update) == UPDATE_BUDGET
