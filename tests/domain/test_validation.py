"""Validation helpers: Rails 8.1's English messages (contract §3) and the deliberate extras
(out of range, string shape, contact id lists), on raw request values."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from accounts_api.domain.validation import (
    Errors,
    check_boolean,
    check_id_list,
    check_numericality,
    check_string,
    check_uuid,
    decimal_text,
    is_blank,
    to_decimal,
)


@pytest.mark.parametrize(
    ("value", "blank"),
    [
        (None, True),
        (False, True),
        ("", True),
        ("  \t\n", True),
        ([], True),
        ({}, True),
        ("x", False),
        (" x ", False),
        (0, False),
        (Decimal(0), False),
        (True, False),
        ([None], False),
    ],
)
def test_is_blank(value: Any, blank: bool) -> None:
    assert is_blank(value) is blank


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (5, Decimal(5)),
        (Decimal("0.333"), Decimal("0.333")),
        ("10", Decimal(10)),
        (" -5.5 ", Decimal("-5.5")),
        ("1e3", Decimal(1000)),
        (".5", Decimal("0.5")),
        ("+7", Decimal(7)),
        ("abc", None),
        ("", None),
        ("1,5", None),
        ("0x1A", None),
        ("NaN", None),
        ("Infinity", None),
        # ASCII digits only, as Rails' numericality: Python would read these as 12 and 1000
        ("\u0661\u0662", None),
        ("1_000", None),
        (Decimal("NaN"), None),
        (True, None),
        (None, None),
        ([1], None),
    ],
)
def test_to_decimal(raw: Any, number: Decimal | None) -> None:
    assert to_decimal(raw) == number


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal(10), "10.0"),
        (Decimal("-5.50"), "-5.5"),
        (Decimal(0), "0.0"),
        (Decimal("0.00"), "0.0"),
        (Decimal(100), "100.0"),
        (Decimal("1E+2"), "100.0"),
        (Decimal("0.001"), "0.001"),
        (Decimal("12.340"), "12.34"),
    ],
)
def test_decimal_text(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text


def numericality(raw: Any, **options: Any) -> tuple[list[tuple[str, str]], Decimal | None]:
    errors = Errors()
    number = check_numericality(errors, "vat", raw, **options)
    return list(errors.grouped()), number


@pytest.mark.parametrize(
    ("raw", "options", "messages", "number"),
    [
        (None, {}, ["is not a number"], None),
        (None, {"allow_nil": True}, [], None),
        ("abc", {"allow_nil": True}, ["is not a number"], None),
        ("", {}, ["is not a number"], None),
        ([1], {}, ["is not a number"], None),
        (True, {}, ["is not a number"], None),
        ("12", {}, [], Decimal(12)),
        (Decimal("1.5"), {"only_integer": True}, ["must be an integer"], None),
        ("1.0", {"only_integer": True}, ["must be an integer"], None),
        ("7", {"only_integer": True}, [], Decimal(7)),
        (-7, {"only_integer": True}, [], Decimal(-7)),
        (0, {"greater_than": 0}, ["must be greater than 0"], Decimal(0)),
        (Decimal("0.1"), {"greater_than": 0}, [], Decimal("0.1")),
        (-1, {"greater_than_or_equal_to": 0}, ["must be greater than or equal to 0"], Decimal(-1)),
        (0, {"greater_than_or_equal_to": 0}, [], Decimal(0)),
        (
            -1,
            {"greater_than_or_equal_to": Decimal(10), "count_text": "10.0"},
            ["must be greater than or equal to 10.0"],
            Decimal(-1),
        ),
        (
            32768,
            {"less_than_or_equal_to": 32767},
            ["must be less than or equal to 32767"],
            Decimal(32768),
        ),
        (32767, {"less_than_or_equal_to": 32767}, [], Decimal(32767)),
        (
            Decimal(-3),
            {"greater_than": 0, "less_than_or_equal_to": -5},
            ["must be greater than 0", "must be less than or equal to -5"],
            Decimal(-3),
        ),
    ],
)
def test_check_numericality(
    raw: Any, options: dict[str, Any], messages: list[str], number: Decimal | None
) -> None:
    assert numericality(raw, **options) == ([("vat", m) for m in messages], number)


@pytest.mark.parametrize(
    "raw",
    [
        Decimal("1E+31"),
        Decimal("-1E+31"),
        # beyond 1e30 in magnitude, though of the same order
        Decimal("2E+30"),
        Decimal("-9.99E+30"),
        "1e40",
        # 32 significant digits: abs() would round it to 1e30 (28 digits) and let it pass
        "1.0000000000000000000000000000001e30",
        # more fractional digits than a balance carries, trailing zeros included
        "0." + "0" * 100 + "1",
        "1." + "0" * 101,
        # issue 6: each overflowed Decimal arithmetic (500), or was slow, before its range was
        # known; as text and as the values the body decoder makes
        "1e1000000",
        "-1e1000000",
        "1e-1000000",
        "1e99999999999999999999",
        "0e1000000",
        "0." + "1" * 16_384,
        "1" * 5_000,
        "-" + "9" * 100_000,
        "9" * 5_000 + "." + "9" * 5_000 + "e-1000000",
        pytest.param(10**5000, id="10**5000"),
        Decimal("1E+1000000"),
        Decimal("-1E-1000000"),
        1e300,
    ],
)
def test_out_of_range(raw: Any) -> None:
    assert numericality(raw) == ([("vat", "is out of range")], None)


@pytest.mark.parametrize(
    "options",
    [
        {"only_integer": True},
        {"greater_than": 0, "less_than_or_equal_to": 32767},
        {"greater_than_or_equal_to": Decimal(10), "count_text": "10.0"},
    ],
)
def test_out_of_range_is_the_only_error_whatever_else_is_checked(options: dict[str, Any]) -> None:
    # the comparisons run on the number only once it is known to be in range
    assert numericality("1e1000000", **options) == ([("vat", "is out of range")], None)


@pytest.mark.parametrize(
    "raw",
    ["1e1000000", "1e99999999999999999999", "1" * 5_000, pytest.param(10**5000, id="10**5000")],
)
def test_to_decimal_of_a_number_out_of_range_is_none(raw: Any) -> None:
    # its callers (external-id lookups, invoice periods, rate providers) then treat it as no
    # number, instead of computing with it
    assert to_decimal(raw) is None


@pytest.mark.parametrize(
    "raw", [Decimal("1E+30"), Decimal("-1E+30"), Decimal("1E-30"), Decimal(0), "0.000"]
)
def test_in_range(raw: Any) -> None:
    assert numericality(raw) == ([], Decimal(raw))


def string(raw: Any, **options: Any) -> tuple[list[tuple[str, str]], str | None]:
    errors = Errors()
    text = check_string(errors, "name", raw, **options)
    return list(errors.grouped()), text


@pytest.mark.parametrize(
    ("raw", "options", "messages", "text"),
    [
        (None, {}, [], None),
        ("acme", {}, [], "acme"),
        ("", {}, [], ""),
        ("x" * 255, {}, [], "x" * 255),
        ("x" * 256, {}, ["is too long (maximum is 255 characters)"], None),
        ("\u00fc" * 255, {}, [], "\u00fc" * 255),
        ("abcde", {"max_length": 4}, ["is too long (maximum is 4 characters)"], None),
        ("a\x00b", {}, ["must not contain null bytes"], None),
        (5, {}, [], "5"),
        (Decimal("1.5"), {}, [], "1.5"),
        (True, {}, ["must be a string"], None),
        ([1], {}, ["must be a string"], None),
        ({"a": 1}, {}, ["must be a string"], None),
    ],
)
def test_check_string(
    raw: Any, options: dict[str, Any], messages: list[str], text: str | None
) -> None:
    assert string(raw, **options) == ([("name", m) for m in messages], text)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (None, None),
        (True, True),
        (False, False),
        ("true", True),
        ("T", True),
        ("1", True),
        (1, True),
        ("false", False),
        (" f ", False),
        ("0", False),
        (0, False),
    ],
)
def test_check_boolean(raw: Any, value: bool | None) -> None:
    errors = Errors()
    assert check_boolean(errors, "enabled", raw) is value
    assert not errors


@pytest.mark.parametrize("raw", ["yes", "", 2, [True], Decimal("1.0")])
def test_check_boolean_rejects(raw: Any) -> None:
    errors = Errors()
    assert check_boolean(errors, "enabled", raw) is None
    assert list(errors.grouped()) == [("enabled", "must be true or false")]


def test_check_uuid() -> None:
    errors = Errors()
    text = "29161666-c29c-11e8-a11d-a088b4454590"
    assert check_uuid(errors, "uuid", text) == uuid.UUID(text)
    assert check_uuid(errors, "uuid", text.upper()) == uuid.UUID(text)
    assert check_uuid(errors, "uuid", None) is None
    assert not errors
    for raw in ("nope", "", 5, ["x"]):
        errors = Errors()
        assert check_uuid(errors, "uuid", raw) is None
        assert list(errors.grouped()) == [("uuid", "is invalid")]


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        (None, None),
        (3, [3]),
        ("3", [3]),
        ([3, 7], [3, 7]),
        (["3", " 7 "], [3, 7]),
        ([], None),
        ("", None),
        (["", None, 4], [4]),
        ([""], None),
        ([2147483647], [2147483647]),
    ],
)
def test_check_id_list(raw: Any, ids: list[int] | None) -> None:
    errors = Errors()
    assert check_id_list(errors, "send_invoices_to", raw) == ids
    assert not errors


@pytest.mark.parametrize(
    "raw",
    [0, [0], [-1], ["abc"], [3, "x"], [Decimal("1.5")], [True], [[3]], [2147483648], {"a": 1}],
)
def test_check_id_list_rejects(raw: Any) -> None:
    errors = Errors()
    assert check_id_list(errors, "send_invoices_to", raw) is None
    assert list(errors.grouped()) == [("send_invoices_to", "must be a list of contact ids")]


def test_errors_grouped_by_first_error() -> None:
    errors = Errors()
    assert not errors
    errors.add("vat", "can't be blank")
    errors.add("name", "has already been taken")
    errors.add("vat", "is not a number")
    assert "vat" in errors
    assert "timezone" not in errors
    assert list(errors.grouped()) == [
        ("vat", "can't be blank"),
        ("vat", "is not a number"),
        ("name", "has already been taken"),
    ]
