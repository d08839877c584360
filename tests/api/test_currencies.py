"""Currencies (contract §5.3): the default currency, the float rate, validations (names, rates,
providers, default-currency rules), the rename side effect, delete rules, filters, sorting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.contract import PREFIX, ResourceContract, ids
from tests.conftest import BASE_URL, Api, Db

CURRENCIES = f"{PREFIX}/currencies"
ACCOUNTS = f"{PREFIX}/accounts"


def currency_body(**attributes: Any) -> dict[str, Any]:
    return {
        "data": {"type": "currencies", "attributes": {"name": "EUR", "rate": 1.2, **attributes}}
    }


def update_body(key: object, **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "currencies", "id": str(key), "attributes": attributes}}


def error(attribute: str, message: str) -> dict[str, Any]:
    return {
        "title": message,
        "detail": f"{attribute} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/attributes/{attribute}"},
        "status": "422",
    }


def base_error(message: str) -> dict[str, Any]:
    return {
        "title": message,
        "detail": message,
        "code": "100",
        "source": {"pointer": "/data"},
        "status": "422",
    }


def currency_in(db: Db, name: str, rate: float = 1.5, provider: int | None = None) -> int:
    return int(
        db.fetchval(
            "INSERT INTO currencies (name, rate, rate_provider_id) VALUES ($1, $2, $3)"
            " RETURNING id",
            name,
            rate,
            provider,
        )
    )


def stored(db: Db, key: int) -> tuple[Any, ...]:
    row = db.fetchrow("SELECT name, rate, rate_provider_id FROM currencies WHERE id = $1", key)
    assert row is not None
    return tuple(row)


class TestCurrencies(ResourceContract):
    path = "currencies"
    type = "currencies"

    def create_body(self) -> dict[str, Any]:
        return currency_body()

    def make(self, api: Api) -> str:
        response = api.post(self.collection, currency_body(name="GBP"))
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])


# -- shape --------------------------------------------------------------------------------


def test_default_currency_is_seeded_with_rate_as_a_json_number(api: Api) -> None:
    response = api.get(f"{CURRENCIES}/0")

    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "id": "0",
            "type": "currencies",
            "links": {"self": f"{BASE_URL}{CURRENCIES}/0"},
            "attributes": {"name": "USD", "rate": 1.0, "rate-provider-id": None},
        }
    }
    assert b'"rate":1.0' in response.content


def test_show_matches_the_contract_example(api: Api, db: Db) -> None:
    key = currency_in(db, "EUR", 1.2)

    response = api.get(f"{CURRENCIES}/{key}")

    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "id": str(key),
            "type": "currencies",
            "links": {"self": f"{BASE_URL}{CURRENCIES}/{key}"},
            "attributes": {"name": "EUR", "rate": 1.2, "rate-provider-id": None},
        }
    }
    assert b'"rate":1.2,' in response.content
    assert list(response.json()["data"]["attributes"]) == ["name", "rate", "rate-provider-id"]


def test_index_lists_the_default_currency_first(api: Api, db: Db) -> None:
    key = currency_in(db, "EUR")

    response = api.get(CURRENCIES)

    assert ids(response) == [0, key]
    assert response.json()["meta"]["total-count"] == 2


# -- create, update, delete -----------------------------------------------------------------


def test_create_stores_the_currency(api: Api, db: Db) -> None:
    response = api.post(
        CURRENCIES, currency_body(name="EUR", rate="0.9", **{"rate-provider-id": 1})
    )

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert response.headers["location"] == f"{BASE_URL}{CURRENCIES}/{data['id']}"
    assert data["attributes"] == {"name": "EUR", "rate": 0.9, "rate-provider-id": 1}
    assert stored(db, int(data["id"])) == ("EUR", 0.9, 1)


@pytest.mark.parametrize("name", ["USDT", "UAH", "JPY"])
def test_iso_codes_and_usdt_are_accepted(api: Api, name: str) -> None:
    response = api.post(CURRENCIES, currency_body(name=name))

    assert response.status_code == 201, response.text


def test_update_changes_the_given_attributes(api: Api, db: Db) -> None:
    key = currency_in(db, "EUR", 1.2)

    response = api.patch(f"{CURRENCIES}/{key}", update_body(key, rate=1.25))

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {
        "name": "EUR",
        "rate": 1.25,
        "rate-provider-id": None,
    }
    assert stored(db, key) == ("EUR", 1.25, None)


def test_default_currency_may_be_updated_within_its_rules(api: Api, db: Db) -> None:
    response = api.patch(f"{CURRENCIES}/0", update_body(0, name="EUR", rate=1))

    assert response.status_code == 200, response.text
    assert stored(db, 0) == ("EUR", 1.0, None)


def test_rename_updates_the_accounts_currency(
    api: Api, db: Db, make_account: Callable[..., dict[str, Any]]
) -> None:
    key = currency_in(db, "EUR")
    in_euro = make_account(currency="EUR")
    in_dollar = make_account(currency="USD")

    response = api.patch(f"{CURRENCIES}/{key}", update_body(key, name="GBP"))

    assert response.status_code == 200, response.text
    shown = api.get(f"{ACCOUNTS}/{in_euro['id']}").json()["data"]["attributes"]
    assert shown["currency"] == "GBP"
    shown = api.get(f"{ACCOUNTS}/{in_dollar['id']}").json()["data"]["attributes"]
    assert shown["currency"] == "USD"


def test_renaming_the_default_currency_updates_its_accounts(
    api: Api, make_account: Callable[..., dict[str, Any]]
) -> None:
    account = make_account(currency="USD")

    response = api.patch(f"{CURRENCIES}/0", update_body(0, name="EUR"))

    assert response.status_code == 200, response.text
    shown = api.get(f"{ACCOUNTS}/{account['id']}").json()["data"]["attributes"]
    assert shown["currency"] == "EUR"
    filtered = api.get(ACCOUNTS, params={"filter[currency_id_eq]": "0"})
    assert [item["attributes"]["currency"] for item in filtered.json()["data"]] == ["EUR"]


def test_delete_answers_204(api: Api, db: Db) -> None:
    key = currency_in(db, "EUR")

    response = api.delete(f"{CURRENCIES}/{key}")

    assert response.status_code == 204
    assert response.content == b""
    assert db.fetchval("SELECT count(*) FROM currencies WHERE id = $1", key) == 0


def test_delete_default_currency_is_422(api: Api, db: Db) -> None:
    response = api.delete(f"{CURRENCIES}/0")

    assert response.status_code == 422
    assert response.json() == {"errors": [base_error("Default currency cannot be deleted")]}
    assert stored(db, 0) == ("USD", 1.0, None)


def test_delete_with_accounts_is_422(
    api: Api, db: Db, make_account: Callable[..., dict[str, Any]]
) -> None:
    key = currency_in(db, "EUR")
    make_account(currency="EUR")

    response = api.delete(f"{CURRENCIES}/{key}")

    assert response.status_code == 422
    assert response.json() == {
        "errors": [base_error("Cannot delete record because dependent accounts exist")]
    }
    assert db.fetchval("SELECT count(*) FROM currencies WHERE id = $1", key) == 1


def test_delete_default_with_accounts_reports_accounts_first(
    api: Api, db: Db, make_account: Callable[..., dict[str, Any]]
) -> None:
    make_account(currency="USD")

    response = api.delete(f"{CURRENCIES}/0")

    assert response.status_code == 422
    assert response.json() == {
        "errors": [base_error("Cannot delete record because dependent accounts exist")]
    }
    assert stored(db, 0) == ("USD", 1.0, None)


# -- validations ------------------------------------------------------------------------------


def test_empty_attributes_give_exactly_four_errors(api: Api, db: Db) -> None:
    response = api.post(CURRENCIES, {"data": {"type": "currencies", "attributes": {}}})

    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            error("name", "can't be blank"),
            error("name", "is not included in the list"),
            error("rate", "can't be blank"),
            error("rate", "is not a number"),
        ]
    }
    assert db.fetchval("SELECT count(*) FROM currencies") == 1


@pytest.mark.parametrize(
    ("attributes", "errors"),
    [
        ({"name": "RUB"}, [("name", "is not included in the list")]),
        ({"name": "eur"}, [("name", "is not included in the list")]),
        ({"name": "EURO1"}, [("name", "is not included in the list")]),
        ({"name": "USD"}, [("name", "has already been taken")]),
        ({"rate": 0}, [("rate", "must be greater than 0")]),
        ({"rate": -1.5}, [("rate", "must be greater than 0")]),
        ({"rate": "abc"}, [("rate", "is not a number")]),
        ({"rate-provider-id": 9}, [("rate-provider-id", "is not included in the list")]),
        ({"rate-provider-id": 0}, [("rate-provider-id", "is not included in the list")]),
        (
            {"name": "UAH", "rate-provider-id": 1},
            [("rate-provider-id", "Frankfurter does not support UAH")],
        ),
        (
            {"name": "UAH", "rate-provider-id": 2},
            [("rate-provider-id", "Bank of Israel does not support UAH")],
        ),
    ],
)
def test_invalid_create_is_422(
    api: Api, db: Db, attributes: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    response = api.post(CURRENCIES, currency_body(**attributes))

    assert response.status_code == 422
    assert response.json() == {"errors": [error(key, message) for key, message in errors]}
    assert db.fetchval("SELECT count(*) FROM currencies") == 1


@pytest.mark.parametrize("provider", [1, 2, 3])
def test_supported_provider_is_accepted(api: Api, db: Db, provider: int) -> None:
    response = api.post(CURRENCIES, currency_body(name="EUR", **{"rate-provider-id": provider}))

    assert response.status_code == 201, response.text
    assert stored(db, int(response.json()["data"]["id"]))[2] == provider


def test_taken_name_on_update_is_422(api: Api, db: Db) -> None:
    key = currency_in(db, "EUR")

    response = api.patch(f"{CURRENCIES}/{key}", update_body(key, name="USD"))

    assert response.status_code == 422
    assert response.json() == {"errors": [error("name", "has already been taken")]}
    assert stored(db, key) == ("EUR", 1.5, None)


@pytest.mark.parametrize(
    ("attributes", "errors"),
    [
        ({"rate": 2}, [("rate", "must be 1 for default currency")]),
        ({"rate-provider-id": 1}, [("rate-provider-id", "must be empty for default currency")]),
        (
            {"rate": 0.5, "rate-provider-id": 3},
            [
                ("rate", "must be 1 for default currency"),
                ("rate-provider-id", "must be empty for default currency"),
            ],
        ),
    ],
)
def test_default_currency_rules(
    api: Api, db: Db, attributes: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    response = api.patch(f"{CURRENCIES}/0", update_body(0, **attributes))

    assert response.status_code == 422
    assert response.json() == {"errors": [error(key, message) for key, message in errors]}
    assert stored(db, 0) == ("USD", 1.0, None)


def test_renaming_default_to_a_name_a_used_provider_cannot_serve_is_422(api: Api, db: Db) -> None:
    euro = currency_in(db, "EUR", 1.1, provider=1)

    response = api.patch(f"{CURRENCIES}/0", update_body(0, name="UAH"))

    message = "is not supported as system currency by used rate provider(s): Frankfurter"
    assert response.status_code == 422
    assert response.json() == {"errors": [error("name", message)]}
    assert stored(db, 0) == ("USD", 1.0, None)
    assert stored(db, euro) == ("EUR", 1.1, 1)


def test_renaming_default_lists_every_provider_that_cannot_serve(api: Api, db: Db) -> None:
    currency_in(db, "EUR", 1.1, provider=1)
    currency_in(db, "ILS", 3.5, provider=2)
    currency_in(db, "GBP", 0.8, provider=3)

    response = api.patch(f"{CURRENCIES}/0", update_body(0, name="BRL"))

    message = (
        "is not supported as system currency by used rate provider(s): "
        "Bank of Israel, National Bank of Ukraine"
    )
    assert response.status_code == 422
    assert response.json() == {"errors": [error("name", message)]}
    assert stored(db, 0)[0] == "USD"


def test_renaming_to_a_name_its_provider_cannot_serve_is_422(api: Api, db: Db) -> None:
    key = currency_in(db, "EUR", 1.1, provider=1)

    response = api.patch(f"{CURRENCIES}/{key}", update_body(key, name="UAH", rate=1.1))

    assert response.status_code == 422
    assert response.json() == {
        "errors": [error("rate-provider-id", "Frankfurter does not support UAH")]
    }
    assert stored(db, key) == ("EUR", 1.1, 1)


def test_update_without_rate_keeps_the_stored_rate(api: Api, db: Db) -> None:
    key = currency_in(db, "EUR", 1.1, provider=1)

    response = api.patch(f"{CURRENCIES}/{key}", update_body(key, **{"rate-provider-id": 3}))

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {
        "name": "EUR",
        "rate": 1.1,
        "rate-provider-id": 3,
    }
    assert stored(db, key) == ("EUR", 1.1, 3)


def test_provider_must_support_the_system_currency(api: Api, db: Db) -> None:
    renamed = api.patch(f"{CURRENCIES}/0", update_body(0, name="UAH"))
    assert renamed.status_code == 200, renamed.text

    response = api.post(CURRENCIES, currency_body(name="EUR", **{"rate-provider-id": 1}))

    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            error(
                "rate-provider-id",
                "Frankfurter does not support system currency UAH required for cross rates",
            )
        ]
    }
    assert db.fetchval("SELECT count(*) FROM currencies") == 1


# -- filters and sorting -------------------------------------------------------------------------


@pytest.fixture
def three(api: Api, db: Db) -> list[int]:
    # the default USD (id 0, rate 1, no provider) is listed too
    return [0, currency_in(db, "EUR", 1.2, 1), currency_in(db, "UAH", 0.025, 3)]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("name_eq", "EUR", [1]),
        ("name_not_eq", "EUR", [0, 2]),
        ("name_cont", "a", [2]),
        ("name_start", "u", [0, 2]),
        ("name_end", "R", [1]),
        ("name_in", "EUR,UAH", [1, 2]),
        ("name_not_in", "EUR,UAH", [0]),
        ("name_cont_any", "SD,AH", [0, 2]),
        ("rate_eq", "1.2", [1]),
        ("rate_not_eq", "1", [1, 2]),
        ("rate_gt", "1", [1]),
        ("rate_gteq", "1", [0, 1]),
        ("rate_lt", "1", [2]),
        ("rate_lteq", "1.2", [0, 1, 2]),
        ("rate_in", "1,0.025", [0, 2]),
        ("rate_not_in", "1", [1, 2]),
        ("rate_provider_id_eq", "3", [2]),
        ("rate_provider_id_not_eq", "3", [1]),
        ("rate_provider_id_gt", "1", [2]),
        ("rate_provider_id_gteq", "1", [1, 2]),
        ("rate_provider_id_lt", "3", [1]),
        ("rate_provider_id_lteq", "3", [1, 2]),
        ("rate_provider_id_in", "1,2", [1]),
        ("rate_provider_id_not_in", "1", [2]),
        ("rate-provider-id-eq", "1", [1]),
    ],
)
def test_filters(api: Api, three: list[int], name: str, value: str, expected: list[int]) -> None:
    response = api.get(CURRENCIES, params={f"filter[{name}]": value})

    assert ids(response) == [three[i] for i in expected]
    assert response.json()["meta"]["total-count"] == len(expected)


def test_non_numeric_rate_filter_is_107(api: Api) -> None:
    response = api.get(CURRENCIES, params={"filter[rate_gt]": "abc"})

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "title": "Invalid filter value",
                "detail": "abc is not a valid value for rate_gt.",
                "code": "107",
                "status": "400",
            }
        ]
    }


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-id", [2, 1, 0]),
        ("name", [1, 2, 0]),
        ("-name", [0, 2, 1]),
        ("rate", [2, 0, 1]),
        ("-rate", [1, 0, 2]),
        ("rate-provider-id", [1, 2, 0]),
        ("-rate_provider_id", [0, 2, 1]),
    ],
)
def test_sort(api: Api, three: list[int], sort: str, expected: list[int]) -> None:
    assert ids(api.get(CURRENCIES, params={"sort": sort})) == [three[i] for i in expected]
