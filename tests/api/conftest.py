"""Arrangement helpers for the HTTP-level tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, Db


def account_body(contractor_id: int, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "accounts",
            "attributes": {"name": "acme-usd", "currency": "USD", **attributes},
            "relationships": {
                "contractor": {"data": {"type": "contractors", "id": str(contractor_id)}}
            },
        }
    }


@pytest.fixture
def make_contractor(db: Db) -> Callable[..., int]:
    counter = iter(range(1, 10_000))

    def make(**columns: Any) -> int:
        values = {
            "name": f"contractor{next(counter)}",
            "enabled": True,
            "vendor": True,
            "customer": False,
        }
        values.update(columns)
        names = list(values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        return int(
            db.fetchval(
                f"INSERT INTO contractors ({', '.join(names)})"
                f" VALUES ({placeholders}) RETURNING id",
                *values.values(),
            )
        )

    return make


@pytest.fixture
def contractor_id(make_contractor: Callable[..., int]) -> int:
    return make_contractor()


@pytest.fixture
def make_account(api: Api, contractor_id: int) -> Callable[..., dict[str, Any]]:
    counter = iter(range(1, 10_000))

    def make(**attributes: Any) -> dict[str, Any]:
        attributes.setdefault("name", f"account{next(counter)}")
        response = api.post("/api/rest/admin/accounts", account_body(contractor_id, **attributes))
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    return make
