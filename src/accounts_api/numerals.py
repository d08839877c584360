"""Numbers as clients write them (numeric strings, JSON number literals, filter values), read
on their text.

How far a numeral reaches and how many fractional digits it carries are decided on the text,
before any Decimal or int is made of it (issue 6): `1e1000000` overflows Decimal arithmetic,
`1e99999999999999999999` is refused by Decimal() itself, a zero may carry an exponent no column
takes, `0.` + 16,384 digits is more than PostgreSQL's numeric holds, and int() refuses more than
4,300 digits. Refused here, none of them reaches arithmetic, a comparison or a query.

Generic: knows nothing of billing or HTTP. Callers say what they accept (`Bounds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache


class NotANumber(ValueError):
    """The value is not a decimal numeral (nor a number)."""


class OutOfRange(ValueError):
    """A numeral whose value lies outside the bounds the caller accepts."""


@dataclass(frozen=True)
class Bounds:
    """At most `integer_digits` digits before the decimal point and `fraction_digits` after
    it, counted as Decimal holds the number: `1e3` has four integer digits, `1.50` two
    fractional digits (trailing zeros are kept, so they count), and a zero's exponent counts
    as if it were a digit's (`0e3` reaches four digits before the point)."""

    integer_digits: int
    fraction_digits: int


# What may be held as a Decimal at all: far inside Decimal's default context (exponents up to
# 999,999) and PostgreSQL's numeric (131,072 digits before the point, 16,383 after).
HOLDABLE = Bounds(integer_digits=1000, fraction_digits=1000)
# No numeral is longer, whatever it denotes (a number padded with thousands of leading zeros is
# refused): reading one is never more work than this many characters.
MAX_LENGTH = 1024

# ASCII digits only, as Rails' numericality: Python's Decimal() and int() also read digits of
# other scripts and `1_000`, which no client means as a number.
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_INTEGER = re.compile(r"[+-]?([0-9]+)")
# surrounding whitespace is ignored, ASCII whitespace only (as Ruby's Float())
_WHITESPACE = " \t\n\v\f\r"


def read_decimal(text: str, bounds: Bounds = HOLDABLE) -> Decimal:
    """The number `text` writes, `[+-]digits[.digits][e[+-]digits]`: NotANumber when it is no
    such numeral, OutOfRange when its value lies past `bounds` or the text is longer than
    MAX_LENGTH. The Decimal is made only once both are known."""
    numeral = text.strip(_WHITESPACE)
    match = _DECIMAL.fullmatch(numeral)
    if match is None:
        raise NotANumber(text)
    _, whole, fraction, exponent_text = match.groups(default="")
    if not whole and not fraction:
        raise NotANumber(text)  # "", ".", "e5"
    if len(numeral) > MAX_LENGTH:
        raise OutOfRange(text)
    # short enough now for int(): at most MAX_LENGTH digits, far below its 4,300
    exponent = int(exponent_text or "0") - len(fraction)
    digits = (whole + fraction).lstrip("0")
    # the position of the leading digit, as Decimal.adjusted() (a zero: its exponent)
    adjusted = exponent + len(digits) - 1 if digits else exponent
    _check(adjusted, exponent, bounds, text)
    return Decimal(numeral)


def read_number(value: object, bounds: Bounds = HOLDABLE) -> Decimal:
    """A JSON value as a number: a numeral string, or a number as the body decoder makes them
    (int, Decimal; a float from a stored double). Anything else, booleans included, is
    NotANumber."""
    if isinstance(value, str):
        return read_decimal(value, bounds)
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise NotANumber(repr(value))
    if isinstance(value, float):
        return read_decimal(repr(value), bounds)  # `inf` and `nan` are no numerals
    if isinstance(value, int):
        # compared, not printed: str() of an int past 4,300 digits raises
        if abs(value) >= _power_of_ten(bounds.integer_digits):
            raise OutOfRange("an integer of more digits")
        return Decimal(value)
    if not value.is_finite():
        raise NotANumber(str(value))
    # adjusted() is free; the exponent needs the digits, which the decoder has bounded
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    _check(value.adjusted(), exponent, bounds, "a decimal")
    return value


def read_integer(text: str, *, digits: int) -> int:
    """An integer numeral, `[+-]digits`, of at most `digits` digits (leading zeros aside);
    NotANumber for anything else (`1.0`, `1e3`), OutOfRange for more digits."""
    numeral = text.strip(_WHITESPACE)
    match = _INTEGER.fullmatch(numeral)
    if match is None:
        raise NotANumber(text)
    if len(numeral) > MAX_LENGTH or len(match.group(1).lstrip("0")) > digits:
        raise OutOfRange(text)
    return int(numeral)


def _check(adjusted: int, exponent: int, bounds: Bounds, shown: str) -> None:
    if adjusted >= bounds.integer_digits or -exponent > bounds.fraction_digits:
        raise OutOfRange(shown)


@cache
def _power_of_ten(digits: int) -> int:
    power: int = 10**digits
    return power
