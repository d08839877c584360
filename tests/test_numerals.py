"""Numbers read on their text (issue 6): what a numeral denotes, and whether it lies within
what the caller accepts, decided before any Decimal is made."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts_api.numerals import (
    HOLDABLE,
    MAX_LENGTH,
    Bounds,
    NotANumber,
    OutOfRange,
    read_decimal,
    read_integer,
    read_number,
)

# three digits before the point, two after: the boundaries are easy to write down
SMALL = Bounds(integer_digits=3, fraction_digits=2)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", Decimal(0)),
        ("-0", Decimal("-0")),
        ("+1", Decimal(1)),
        ("12.5", Decimal("12.5")),
        # trailing zeros are kept, as Decimal keeps them
        ("1.50", Decimal("1.50")),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("1e2", Decimal("1E+2")),
        ("1E+2", Decimal("1E+2")),
        ("25e-1", Decimal("2.5")),
        (" \t12\n", Decimal(12)),
        # leading zeros do not count as digits of the value
        ("000999.99", Decimal("999.99")),
        ("0.000e2", Decimal("0.0")),
        ("0.0000000001e10", Decimal("1")),
    ],
)
def test_a_numeral_is_read_exactly(text: str, number: Decimal) -> None:
    read = read_decimal(text, SMALL)

    assert read == number
    assert str(read) == str(number)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        ".",
        "-",
        "e5",
        "1e",
        "1e+",
        "abc",
        "1.2.3",
        "--1",
        "1 2",
        "0x10",
        "NaN",
        "Infinity",
        "-inf",
        # Python's int() and Decimal() read these; Rails' numericality does not
        "1_000",
        "\u0661\u0662",
        "\u00a012",
        "1e\u0665",
    ],
)
def test_what_is_no_numeral_is_not_a_number(text: str) -> None:
    with pytest.raises(NotANumber):
        read_decimal(text, SMALL)


@pytest.mark.parametrize(
    "text",
    [
        "999.99",
        "-999.99",
        "0.01",
        "9.9e2",
        "1e2",
        "0e2",
        "0.00",
        "99999e-2",
    ],
)
def test_numerals_up_to_the_bounds_are_read(text: str) -> None:
    assert read_decimal(text, SMALL) == Decimal(text)


@pytest.mark.parametrize(
    "text",
    [
        "1000",
        "-1000",
        "1e3",
        "0.001",
        "1e-3",
        # trailing zeros count: Decimal keeps them, and so would the numeric column
        "1.000",
        # a zero carries its exponent too
        "0e3",
        "0.000",
        "100000e-2",
    ],
)
def test_numerals_past_the_bounds_are_out_of_range(text: str) -> None:
    with pytest.raises(OutOfRange):
        read_decimal(text, SMALL)


# Each of these made a Decimal overflow, raise or take its time before; read on the text they
# are refused without one: `1e99999999999999999999` is past what Decimal() itself accepts,
# so a Decimal made first would raise InvalidOperation, not OutOfRange.
HOSTILE = {
    "exponent": "1e1000000",
    "negative-exponent": "-1e1000000",
    "tiny-exponent": "1e-1000000",
    "exponent-past-decimal": "1e99999999999999999999",
    "negative-exponent-past-decimal": "1e-99999999999999999999",
    "zero-with-exponent": "0e1000000",
    "fraction-16384-digits": "0." + "1" * 16_384,
    "zeros-16384-digits": "0." + "0" * 16_383 + "1",
    "integer-5000-digits": "1" * 5_000,
    "integer-100k-digits": "-" + "9" * 100_000,
    "leading-zeros": "0" * 5_000 + "1",
    "all-at-once": "9" * 5_000 + "." + "9" * 5_000 + "e-1000000",
    "exponent-digits": "1e" + "1" * 5_000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_numerals_are_out_of_range_of_anything_held(text: str) -> None:
    with pytest.raises(OutOfRange):
        read_decimal(text, HOLDABLE)


def test_the_holdable_bounds_are_what_postgresql_and_decimal_take() -> None:
    assert read_decimal("9" * 1000) == Decimal("9" * 1000)
    assert read_decimal("0." + "9" * 1000) == Decimal("0." + "9" * 1000)
    for text in ("1e1000", "1e-1001", "0." + "9" * 1001):
        with pytest.raises(OutOfRange):
            read_decimal(text)


def test_a_numeral_longer_than_the_limit_is_out_of_range_whatever_it_denotes() -> None:
    padded = "0" * (MAX_LENGTH - 1) + "1"
    assert read_decimal(padded) == 1
    with pytest.raises(OutOfRange):
        read_decimal("0" + padded)


def test_a_long_text_that_is_no_numeral_is_not_a_number() -> None:
    with pytest.raises(NotANumber):
        read_decimal("1" * 100_000 + "x")


# JSON values: strings are numerals, numbers are read as the body decoder made them


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("12.5", Decimal("12.5")),
        (7, Decimal(7)),
        (-999, Decimal(-999)),
        (Decimal("1.50"), Decimal("1.50")),
        (0.1, Decimal("0.1")),
    ],
)
def test_a_json_value_is_read_as_a_number(value: object, number: Decimal) -> None:
    read = read_number(value, SMALL)

    assert read == number
    assert str(read) == str(number)


@pytest.mark.parametrize(
    "value",
    [True, False, None, [], {}, [1], "abc", Decimal("NaN"), Decimal("-Infinity"), float("nan")],
)
def test_a_json_value_that_is_no_number_is_not_a_number(value: object) -> None:
    with pytest.raises(NotANumber):
        read_number(value, SMALL)


@pytest.mark.parametrize(
    "value",
    [
        1000,
        -1000,
        # str() of an integer this long raises ValueError (4,300 digits): it is never made
        pytest.param(10**5000, id="10**5000"),
        pytest.param(-(10**5000), id="-10**5000"),
        Decimal("1E+1000000"),
        Decimal("1E-1000000"),
        Decimal("0E+1000000"),
        Decimal("1.000"),
        1e300,
        "1e1000000",
    ],
)
def test_a_json_value_past_the_bounds_is_out_of_range(value: object) -> None:
    with pytest.raises(OutOfRange):
        read_number(value, SMALL)


# integers (filter values on integer columns)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("42", 42),
        ("-42", -42),
        ("+7", 7),
        (" 7 ", 7),
        ("0009", 9),
        ("9" * 19, 10**19 - 1),
    ],
)
def test_an_integer_numeral_is_read(text: str, number: int) -> None:
    assert read_integer(text, digits=19) == number


@pytest.mark.parametrize("text", ["", "1.0", "1e3", "abc", "1_000", "\u0661", "- 1", "0x1"])
def test_what_is_no_integer_numeral_is_not_a_number(text: str) -> None:
    with pytest.raises(NotANumber):
        read_integer(text, digits=19)


@pytest.mark.parametrize("text", ["1" * 20, "-" + "1" * 20, "1" * 5_000, "0" * 5_000 + "1"])
def test_an_integer_numeral_with_more_digits_is_out_of_range(text: str) -> None:
    with pytest.raises(OutOfRange):
        read_integer(text, digits=19)
