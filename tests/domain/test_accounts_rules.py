"""Account validation (contract §3.1): every rule, its message, and the order of the error
groups, with hand-built lookups; plus the invoice-schedule helpers (§4.2)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts_api.domain.accounts import (
    Lookups,
    candidates,
    invoice_schedule,
    needs_invoice_schedule,
    validate,
)

# A create as the resource layer hands it over: stored defaults, then the request values.
VALID: dict[str, Any] = {
    "min_balance": 0,
    "max_balance": 0,
    "vat": 0,
    "timezone": "UTC",
    "name": "acme",
    "currency": "USD",
    "contractor_id": 5,
}
TIMEZONES = frozenset({"UTC", "Europe/Kyiv", "America/Los_Angeles"})
THRESHOLD = "must be less than balance high threshold"


def lookups(**overrides: Any) -> Lookups:
    values: dict[str, Any] = {
        "contractor_exists": True,
        "currency_id": 0,
        "taken": set(),
        "timezones": TIMEZONES,
    }
    values.update(overrides)
    return Lookups(**values)


def check(
    overrides: dict[str, Any], found: Lookups | None = None, *, creating: bool = True
) -> list[tuple[str, str]]:
    errors, _ = validate({**VALID, **overrides}, found or lookups(), creating=creating)
    return list(errors.grouped())


def clean(overrides: dict[str, Any]) -> dict[str, Any]:
    errors, values = validate({**VALID, **overrides}, lookups(), creating=True)
    assert not errors
    return values


def test_valid_create() -> None:
    assert check({}) == []


def test_every_rule_in_order() -> None:
    values = {
        "min_balance": "abc",
        "uuid": "29161666-c29c-11e8-a11d-a088b4454590",
        "vat": None,
        "timezone": "Mars/Base",
        "max_balance": "x",
        "termination_capacity": 0,
        "origination_capacity": 40000,
        "total_capacity": Decimal("1.5"),
        "external_id": 100,
        "destination_rate_limit": -1,
        "max_call_duration": 0,
        "invoice_period_id": 9,
        "currency": "EUR",
        "balance_low_threshold": 90,
        "balance_high_threshold": 90,
    }
    found = lookups(
        contractor_exists=False, currency_id=None, taken={"uuid", "name", "external_id"}
    )
    assert check(values, found) == [
        ("contractor", "must exist"),  # 1
        ("currency", "must exist"),  # 2
        ("currency", "is not found"),  # 18 joins the currency group
        ("min_balance", "is not a number"),  # 3
        ("uuid", "has already been taken"),  # 4
        ("name", "has already been taken"),  # 5
        ("vat", "can't be blank"),  # 6
        ("vat", "is not a number"),  # 11 joins the vat group
        ("timezone", "Mars/Base is not a valid timezone"),  # 7
        ("max_balance", "is not a number"),  # 8
        ("termination_capacity", "must be greater than 0"),  # 9
        ("origination_capacity", "must be less than or equal to 32767"),
        ("total_capacity", "must be an integer"),
        ("external_id", "has already been taken"),  # 10
        ("destination_rate_limit", "must be greater than or equal to 0"),  # 12
        ("max_call_duration", "must be greater than 0"),  # 13
        ("invoice_period_id", "is not included in the list"),  # 16
        ("balance_low_threshold", THRESHOLD),  # 19
    ]


def test_presence_order_and_second_messages() -> None:
    # contract §3.1 #6 and §3.2 example 7
    blank = {"name": None, "timezone": None, "vat": None, "max_balance": None, "min_balance": None}
    assert check(blank) == [
        ("name", "can't be blank"),
        ("timezone", "can't be blank"),
        ("timezone", " is not a valid timezone"),
        ("vat", "can't be blank"),
        ("vat", "is not a number"),
        ("max_balance", "can't be blank"),
        ("max_balance", "is not a number"),
        ("min_balance", "can't be blank"),
    ]


@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_whitespace_is_blank(value: str) -> None:
    assert check({"name": value}) == [("name", "can't be blank")]


def test_example_without_contractor_and_currency() -> None:
    # contract §3.2 example 1: the min balance default makes the bound 0.0
    found = lookups(contractor_exists=False, currency_id=None)
    assert check({"name": "name", "max_balance": -1, "currency": None}, found) == [
        ("contractor", "must exist"),
        ("currency", "must exist"),
        ("max_balance", "must be greater than or equal to 0.0"),
    ]


def test_unknown_currency_on_create_and_update() -> None:
    # contract §3.2 example 2; rule 18 is a create-time form check
    assert check({"currency": "INVALID"}, lookups(currency_id=None)) == [
        ("currency", "must exist"),
        ("currency", "is not found"),
    ]
    assert check({"currency": ""}, lookups(currency_id=None)) == [("currency", "must exist")]
    assert check({"currency": "INVALID"}, lookups(currency_id=None), creating=False) == [
        ("currency", "must exist")
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # 3: min-balance numericality only when present
        ({"min_balance": "abc"}, [("min_balance", "is not a number")]),
        ({"min_balance": ""}, [("min_balance", "can't be blank")]),
        # 7: timezone
        ({"timezone": "Mars/Base"}, [("timezone", "Mars/Base is not a valid timezone")]),
        ({"timezone": "Kyiv"}, [("timezone", "Kyiv is not a valid timezone")]),
        ({"timezone": "europe/kyiv"}, [("timezone", "europe/kyiv is not a valid timezone")]),
        ({"timezone": "Europe/Kyiv"}, []),
        # 8: max-balance against min-balance, N as a decimal string
        (
            {"min_balance": 10, "max_balance": 0},
            [("max_balance", "must be greater than or equal to 10.0")],
        ),
        (
            {"min_balance": Decimal("-5.50"), "max_balance": -6},
            [("max_balance", "must be greater than or equal to -5.5")],
        ),
        (
            {"min_balance": "100", "max_balance": "99.99"},
            [("max_balance", "must be greater than or equal to 100.0")],
        ),
        ({"min_balance": 10, "max_balance": 10}, []),
        ({"max_balance": "abc"}, [("max_balance", "is not a number")]),
        # 9: capacities
        ({"origination_capacity": 0}, [("origination_capacity", "must be greater than 0")]),
        (
            {"origination_capacity": 40000},
            [("origination_capacity", "must be less than or equal to 32767")],
        ),
        (
            {"origination_capacity": Decimal("1.5")},
            [("origination_capacity", "must be an integer")],
        ),
        ({"termination_capacity": "abc"}, [("termination_capacity", "is not a number")]),
        ({"total_capacity": -1}, [("total_capacity", "must be greater than 0")]),
        ({"total_capacity": 32767, "origination_capacity": 1, "termination_capacity": "5"}, []),
        # 10: external id
        ({"external_id": Decimal("1.5")}, [("external_id", "must be an integer")]),
        (
            {"external_id": 2**63},
            [("external_id", "must be less than or equal to 9223372036854775807")],
        ),
        ({"external_id": 2**63 - 1}, []),
        # 11: vat
        ({"vat": 101}, [("vat", "must be less than or equal to 100")]),
        ({"vat": -1}, [("vat", "must be greater than or equal to 0")]),
        ({"vat": "abc"}, [("vat", "is not a number")]),
        ({"vat": 100}, []),
        # 12: destination rate limit
        (
            {"destination_rate_limit": Decimal("-0.1")},
            [("destination_rate_limit", "must be greater than or equal to 0")],
        ),
        ({"destination_rate_limit": "x"}, [("destination_rate_limit", "is not a number")]),
        ({"destination_rate_limit": 0}, []),
        # 13: max call duration
        ({"max_call_duration": 0}, [("max_call_duration", "must be greater than 0")]),
        ({"max_call_duration": "x"}, [("max_call_duration", "is not a number")]),
        (
            {"max_call_duration": 2**31},
            [("max_call_duration", "must be less than or equal to 2147483647")],
        ),
        # 16: invoice period
        ({"invoice_period_id": 9}, [("invoice_period_id", "is not included in the list")]),
        ({"invoice_period_id": 0}, [("invoice_period_id", "is not included in the list")]),
        ({"invoice_period_id": "abc"}, [("invoice_period_id", "is not included in the list")]),
        (
            {"invoice_period_id": Decimal("2.5")},
            [("invoice_period_id", "is not included in the list")],
        ),
        ({"invoice_period_id": 7}, []),
        # 19: thresholds, equal values fail
        (
            {"balance_low_threshold": 90, "balance_high_threshold": 90},
            [("balance_low_threshold", THRESHOLD)],
        ),
        (
            {"balance_low_threshold": 95, "balance_high_threshold": "90"},
            [("balance_low_threshold", THRESHOLD)],
        ),
        ({"balance_low_threshold": -5, "balance_high_threshold": -4}, []),
        ({"balance_low_threshold": 95}, []),
        ({"balance_high_threshold": 1}, []),
        # deliberate extras
        ({"balance_low_threshold": "abc"}, [("balance_low_threshold", "is not a number")]),
        ({"balance_high_threshold": [1]}, [("balance_high_threshold", "is not a number")]),
        ({"uuid": "nope"}, [("uuid", "is invalid")]),
        ({"uuid": 5}, [("uuid", "is invalid")]),
        ({"send_invoices_to": [0]}, [("send_invoices_to", "must be a list of contact ids")]),
        (
            {"send_balance_notifications_to": ["abc"]},
            [("send_balance_notifications_to", "must be a list of contact ids")],
        ),
        ({"name": "x" * 256}, [("name", "is too long (maximum is 255 characters)")]),
        ({"name": "a\x00b"}, [("name", "must not contain null bytes")]),
        ({"name": ["acme"]}, [("name", "must be a string")]),
        ({"name": {"a": 1}}, [("name", "must be a string")]),
        ({"max_balance": Decimal("1E+40")}, [("max_balance", "is out of range")]),
    ],
)
def test_rule(overrides: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert check(overrides) == expected


@pytest.mark.parametrize("key", ["uuid", "name", "external_id"])
def test_taken(key: str) -> None:
    overrides = {"uuid": "29161666-c29c-11e8-a11d-a088b4454590", "external_id": 100}
    assert check(overrides, lookups(taken={key})) == [(key, "has already been taken")]


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("timezone", ["UTC"]),
        ("timezone", {"name": "UTC"}),
        ("currency", ["USD"]),
    ],
)
def test_string_attributes_refuse_other_json(key: str, raw: Any) -> None:
    # deliberate deviation: non-string JSON for a string attribute is "must be a string"
    messages = check({key: raw}, lookups(currency_id=None) if key == "currency" else None)
    assert (key, "must be a string") in messages
    assert not any(repr(raw) in message for _, message in messages)


def test_timezone_with_nul_byte() -> None:
    messages = check({"timezone": "UTC\x00"})
    assert ("timezone", "must not contain null bytes") in messages


def test_clean_values() -> None:
    values = clean(
        {
            "name": 5,
            "min_balance": "-1.50",
            "max_balance": Decimal("0.333"),
            "max_call_duration": Decimal("1.5"),
            "invoice_period_id": "2",
            "termination_capacity": "10",
            "external_id": "100",
            "send_invoices_to": 3,
            "send_balance_notifications_to": [],
            "balance_low_threshold": 90,
            "balance_high_threshold": "95.5",
            "uuid": "29161666-C29C-11E8-A11D-A088B4454590",
            "invoice_template_id": 3,
        }
    )
    assert values["name"] == "5"
    assert values["min_balance"] == Decimal("-1.50")
    assert values["max_balance"] == Decimal("0.333")
    # contract §3.1 #13: 1.5 is stored as 1
    assert values["max_call_duration"] == 1
    assert values["invoice_period_id"] == 2
    assert values["termination_capacity"] == 10
    assert values["external_id"] == 100
    assert values["send_invoices_to"] == [3]
    assert values["send_balance_notifications_to"] is None
    assert (values["balance_low_threshold"], values["balance_high_threshold"]) == (
        Decimal(90),
        Decimal("95.5"),
    )
    assert str(values["uuid"]) == "29161666-c29c-11e8-a11d-a088b4454590"
    assert (values["contractor_id"], values["invoice_template_id"], values["currency_id"]) == (
        5,
        3,
        0,
    )
    assert values["timezone"] == "UTC"


def test_candidates_for_lookups() -> None:
    found = candidates(
        {
            "name": "acme",
            "uuid": "29161666-C29C-11E8-A11D-A088B4454590",
            "external_id": "100",
            "currency": "USD",
            "contractor_id": 5,
        }
    )
    assert (found.name, found.uuid, found.external_id, found.currency, found.contractor_id) == (
        "acme",
        "29161666-c29c-11e8-a11d-a088b4454590",
        100,
        "USD",
        5,
    )
    odd = candidates(
        {
            "name": ["acme"],
            "uuid": "nope",
            "external_id": 2**63,
            "currency": "US\x00D",
            "contractor_id": 2**31,
        }
    )
    assert (odd.name, odd.uuid, odd.external_id, odd.currency, odd.contractor_id) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert candidates({"external_id": Decimal("1.5")}).external_id is None


# contract §4.2: when the hidden schedule is recomputed


@pytest.mark.parametrize(
    ("before", "after", "needed"),
    [
        (None, {"invoice_period_id": None, "timezone": "UTC"}, True),
        (
            {"invoice_period_id": 2, "timezone": "UTC"},
            {"invoice_period_id": 2, "timezone": "UTC"},
            False,
        ),
        (
            {"invoice_period_id": 2, "timezone": "UTC"},
            {"invoice_period_id": 3, "timezone": "UTC"},
            True,
        ),
        (
            {"invoice_period_id": 2, "timezone": "UTC"},
            {"invoice_period_id": None, "timezone": "UTC"},
            True,
        ),
        (
            {"invoice_period_id": 2, "timezone": "UTC"},
            {"invoice_period_id": 2, "timezone": "Europe/Kyiv"},
            True,
        ),
        (
            {"invoice_period_id": None, "timezone": "UTC"},
            {"invoice_period_id": None, "timezone": "Europe/Kyiv"},
            False,
        ),
    ],
)
def test_needs_invoice_schedule(
    before: dict[str, Any] | None, after: dict[str, Any], needed: bool
) -> None:
    assert needs_invoice_schedule(before, after) is needed


def test_invoice_schedule() -> None:
    now = datetime(2024, 1, 31, 12, tzinfo=UTC)  # a Wednesday
    assert invoice_schedule(None, "UTC", now) == (None, None)
    # daily: the next local midnight, a full period (type 2)
    moment, invoice_type = invoice_schedule(1, "Europe/Kyiv", now)
    assert moment == datetime(2024, 2, 1, tzinfo=ZoneInfo("Europe/Kyiv"))
    assert invoice_type == 2
