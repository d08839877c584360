"""Inputs at the edges of what numbers, dates and keys can be: never a 500, never a rounded
cent."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.api.conftest import account_body
from tests.conftest import Api, Db

PREFIX = "/api/rest/admin"
HUGE = "1" * 5000  # past Python's 4,300-digit int() limit


@pytest.fixture
def account(api: Api, contractor_id: int) -> dict[str, Any]:
    response = api.post(f"{PREFIX}/accounts", account_body(contractor_id, **{"external-id": 7}))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def ledger(db: Db, account_id: int) -> list[tuple[str, Decimal, Decimal]]:
    rows = db.fetch(
        "SELECT kind, amount, balance_after FROM ledger_entries WHERE account_id = $1 ORDER BY id",
        account_id,
    )
    return [(row["kind"], row["amount"], row["balance_after"]) for row in rows]


def money_body(kind: str, account_id: str, amount: str) -> dict[str, Any]:
    return {
        "data": {
            "type": kind,
            "attributes": {"amount": amount},
            "relationships": {"account": {"data": {"type": "accounts", "id": account_id}}},
        }
    }


# 30 significant digits: Decimal's default 28-digit arithmetic would round these
LONG = "0.100000000000000000000000000001"


def test_a_long_transaction_amount_is_charged_to_the_last_digit(
    api: Api, db: Db, account: dict[str, Any]
) -> None:
    response = api.post(f"{PREFIX}/transactions", money_body("transactions", account["id"], LONG))

    assert response.status_code == 201, response.text
    assert ledger(db, int(account["id"]))[-1] == (
        "transaction",
        Decimal(LONG).copy_negate(),
        Decimal(LONG).copy_negate(),
    )


def test_a_long_payment_rolled_back_restores_the_balance_exactly(
    api: Api, db: Db, account: dict[str, Any]
) -> None:
    paid = api.post(f"{PREFIX}/payments", money_body("payments", account["id"], LONG))
    assert paid.status_code == 201, paid.text

    rolled = api.post(f"{PREFIX}/payments/{paid.json()['data']['id']}/rollback")

    assert rolled.status_code == 200, rolled.text
    assert ledger(db, int(account["id"]))[-1][1:] == (Decimal(LONG).copy_negate(), Decimal(0))


def test_a_long_absolute_balance_is_set_exactly(api: Api, db: Db, account: dict[str, Any]) -> None:
    wanted = "0.12345678901234567890123456789"
    body = {"data": {"type": "balances", "id": "7", "attributes": {"balance": wanted}}}

    response = api.put(f"{PREFIX}/accounts/7/balance", body)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["balance"] == wanted
    assert ledger(db, int(account["id"]))[-1] == ("absolute_set", Decimal(wanted), Decimal(wanted))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/accounts/{HUGE}", 404),
        (f"/accounts/-{HUGE}", 404),
        (f"/payments/{HUGE}/rollback", 404),
        ("/timezones/%00", 400),
    ],
)
def test_keys_no_column_can_hold_are_not_found(api: Api, path: str, status: int) -> None:
    method = "POST" if path.endswith("rollback") else "GET"
    response = api.request(method, f"{PREFIX}{path}")

    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    "params",
    [
        {"page[number]": HUGE},
        {"page[number]": "99999999999999999999999"},
    ],
)
def test_page_numbers_past_every_row_are_empty_pages(
    api: Api, account: dict[str, Any], params: dict[str, str]
) -> None:
    response = api.get(f"{PREFIX}/accounts", params=params)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


def test_a_huge_page_size_is_118(api: Api) -> None:
    response = api.get(f"{PREFIX}/accounts", params={"page[size]": HUGE})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "118"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("balance_gt", "1e999999"),
        ("balance_gt", "1e-100000"),
        ("id", HUGE + "x"),
        ("created_at_gt", "0001-01-01T00:00:00+01:00"),
        ("created_at_lt", "9999-12-31T23:59:59-01:00"),
    ],
)
def test_filter_values_beyond_the_columns_are_107(api: Api, name: str, value: str) -> None:
    path = "/payments" if name.startswith("created_at") else "/accounts"
    response = api.get(f"{PREFIX}{path}", params={f"filter[{name}]": value})

    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "107"


def test_a_huge_filter_id_matches_nothing(api: Api, account: dict[str, Any]) -> None:
    response = api.get(f"{PREFIX}/accounts", params={"filter[id]": HUGE})

    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


def test_a_huge_contact_id_is_422(api: Api, account: dict[str, Any]) -> None:
    body = {
        "data": {
            "type": "accounts",
            "id": account["id"],
            "attributes": {"send-invoices-to": [HUGE]},
        }
    }

    response = api.patch(f"{PREFIX}/accounts/{account['id']}", body)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["detail"] == (
        "send-invoices-to - must be a list of contact ids"
    )


@pytest.mark.parametrize("provider", [1e30, "1e400", 10**40, 1.5])
def test_a_rate_provider_id_that_is_no_provider_is_422(api: Api, provider: object) -> None:
    body = {
        "data": {
            "type": "currencies",
            "attributes": {"name": "EUR", "rate": 1.1, "rate-provider-id": provider},
        }
    }

    response = api.post(f"{PREFIX}/currencies", body)

    assert response.status_code == 422, response.text
    assert (
        response.json()["errors"][0]["detail"] == "rate-provider-id - is not included in the list"
    )


def test_an_unexpected_failure_is_a_500_with_every_header(
    api: Api, account: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from accounts_api.jsonapi import endpoints

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected")

    broken_single: Callable[..., Any] = broken
    monkeypatch.setattr(endpoints.Api, "_single", broken_single)

    response = api.get(f"{PREFIX}/accounts/{account['id']}", headers={"X-Request-Id": "abc-1"})

    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {
                "title": "Internal Server Error",
                "detail": "Internal Server Error",
                "code": "500",
                "status": "500",
            }
        ]
    }
    assert response.headers["x-request-id"] == "abc-1"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_transaction_aborted_by_a_deadlock_is_run_again(
    api: Api, db: Db, account: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    from accounts_api.jsonapi import endpoints

    original = endpoints.Api.create
    calls = []

    async def deadlocked_once(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(endpoints.Api, "create", deadlocked_once)

    response = api.post(f"{PREFIX}/payments", money_body("payments", account["id"], "5"))

    assert response.status_code == 201, response.text
    assert len(calls) == 2
    assert db.fetchval("SELECT count(*) FROM payments") == 1
