"""Currency rules (contract §5.3): names, rates, rate providers and the default currency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts_api.domain.currencies import NAMES, RATE_PROVIDERS, Lookups, validate


def lookups(**overrides: Any) -> Lookups:
    values: dict[str, Any] = {"name_taken": False, "system_currency": "USD"}
    values.update(overrides)
    return Lookups(**values)


def check(
    values: dict[str, Any],
    found: Lookups | None = None,
    *,
    is_default: bool = False,
    name_changed: bool = False,
) -> list[tuple[str, str]]:
    errors, _ = validate(
        values, found or lookups(), is_default=is_default, name_changed=name_changed
    )
    return list(errors.grouped())


def test_empty_body_gives_exactly_four_errors() -> None:
    assert check({}) == [
        ("name", "can't be blank"),
        ("name", "is not included in the list"),
        ("rate", "can't be blank"),
        ("rate", "is not a number"),
    ]


def test_valid() -> None:
    errors, values = validate(
        {"name": "EUR", "rate": Decimal("1.2"), "rate_provider_id": "1"},
        lookups(),
        is_default=False,
        name_changed=False,
    )
    assert not errors
    assert values == {"name": "EUR", "rate": 1.2, "rate_provider_id": 1}
    assert type(values["rate"]) is float


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"name": "", "rate": 1},
            [("name", "can't be blank"), ("name", "is not included in the list")],
        ),
        ({"name": "XYZ", "rate": 1}, [("name", "is not included in the list")]),
        ({"name": "usd", "rate": 1}, [("name", "is not included in the list")]),
        ({"name": "ABCDE", "rate": 1}, [("name", "is not included in the list")]),
        ({"name": "USDT", "rate": 1}, []),
        ({"name": "UAH", "rate": "27.5"}, []),
        ({"name": "EUR", "rate": None}, [("rate", "can't be blank"), ("rate", "is not a number")]),
        ({"name": "EUR", "rate": "abc"}, [("rate", "is not a number")]),
        ({"name": "EUR", "rate": 0}, [("rate", "must be greater than 0")]),
        ({"name": "EUR", "rate": "-1"}, [("rate", "must be greater than 0")]),
        (
            {"name": "EUR", "rate": 1, "rate_provider_id": 4},
            [("rate_provider_id", "is not included in the list")],
        ),
        (
            {"name": "EUR", "rate": 1, "rate_provider_id": 0},
            [("rate_provider_id", "is not included in the list")],
        ),
        (
            {"name": "EUR", "rate": 1, "rate_provider_id": "x"},
            [("rate_provider_id", "is not included in the list")],
        ),
        (
            {"name": "EUR", "rate": 1, "rate_provider_id": Decimal("1.5")},
            [("rate_provider_id", "is not included in the list")],
        ),
        ({"name": "EUR", "rate": 1, "rate_provider_id": None}, []),
        # provider support, in the provider's own name
        (
            {"name": "UAH", "rate": 1, "rate_provider_id": 1},
            [("rate_provider_id", "Frankfurter does not support UAH")],
        ),
        (
            {"name": "BRL", "rate": 1, "rate_provider_id": 2},
            [("rate_provider_id", "Bank of Israel does not support BRL")],
        ),
        (
            {"name": "BRL", "rate": 1, "rate_provider_id": 3},
            [("rate_provider_id", "National Bank of Ukraine does not support BRL")],
        ),
        ({"name": "UAH", "rate": 1, "rate_provider_id": 3}, []),
        ({"name": "ILS", "rate": 1, "rate_provider_id": 2}, []),
    ],
)
def test_rule(values: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert check(values) == expected


def test_name_taken() -> None:
    assert check({"name": "EUR", "rate": 1}, lookups(name_taken=True)) == [
        ("name", "has already been taken")
    ]


def test_provider_must_support_the_system_currency() -> None:
    found = lookups(system_currency="UAH")
    assert check({"name": "EUR", "rate": 1, "rate_provider_id": 1}, found) == [
        (
            "rate_provider_id",
            "Frankfurter does not support system currency UAH required for cross rates",
        )
    ]
    assert check({"name": "EUR", "rate": 1, "rate_provider_id": 3}, found) == []
    assert check({"name": "UAH", "rate": 1, "rate_provider_id": 1}, found) == [
        ("rate_provider_id", "Frankfurter does not support UAH"),
        (
            "rate_provider_id",
            "Frankfurter does not support system currency UAH required for cross rates",
        ),
    ]


def test_default_currency() -> None:
    assert check({"name": "USD", "rate": 1}, is_default=True) == []
    assert check({"name": "USD", "rate": 2, "rate_provider_id": 1}, is_default=True) == [
        ("rate", "must be 1 for default currency"),
        ("rate_provider_id", "must be empty for default currency"),
    ]
    assert check({"name": "USD", "rate": "1.0"}, is_default=True) == []


def test_renaming_the_default_currency() -> None:
    found = lookups(used_provider_ids={3, 1, 2})
    assert check({"name": "UAH", "rate": 1}, found, is_default=True, name_changed=True) == [
        (
            "name",
            "is not supported as system currency by used rate provider(s): "
            "Frankfurter, Bank of Israel",
        )
    ]
    assert check({"name": "EUR", "rate": 1}, found, is_default=True, name_changed=True) == []
    assert check({"name": "UAH", "rate": 1}, found, is_default=True, name_changed=False) == []


def test_names_and_providers() -> None:
    assert {"USD", "EUR", "UAH", "USDT", "GBP", "ILS"} <= NAMES
    assert all(len(name) in (3, 4) and name.isupper() for name in NAMES)
    assert {i: p.name for i, p in RATE_PROVIDERS.items()} == {
        1: "Frankfurter",
        2: "Bank of Israel",
        3: "National Bank of Ukraine",
    }
    assert all(provider.supported <= NAMES for provider in RATE_PROVIDERS.values())
