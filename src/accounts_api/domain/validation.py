"""Validation in the words of Rails 8.1's English messages (contract §3), on raw request values.

`Errors` collects `(attribute, message)` pairs; `grouped()` orders them as Rails'
`errors.messages` does: attributes in the order of their first error, messages in the
order the checks ran.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from accounts_api import numerals

BLANK = "can't be blank"
TAKEN = "has already been taken"
MUST_EXIST = "must exist"
NOT_A_NUMBER = "is not a number"
NOT_AN_INTEGER = "must be an integer"
NOT_INCLUDED = "is not included in the list"
OUT_OF_RANGE = "is out of range"
NULL_BYTE = "must not contain null bytes"
NOT_A_STRING = "must be a string"
NOT_A_BOOLEAN = "must be true or false"
INVALID = "is invalid"

# Decimals the API accepts: magnitudes far beyond any balance, precision far beyond any
# rate, both far inside PostgreSQL numeric's limits.
MAX_DECIMAL = Decimal("1e30")
MAX_FRACTION_DIGITS = 100
# the same, read on the text before any number is made of it (issue 6); 1e30 has 31 digits
_NUMBERS = numerals.Bounds(integer_digits=31, fraction_digits=MAX_FRACTION_DIGITS)

# the largest values of PostgreSQL's integer and bigint columns
INTEGER_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1


def is_row_id(value: object, maximum: int = INTEGER_MAX) -> bool:
    """Can `value` be the id of a row in a column holding up to `maximum`? (Ids beyond it
    cannot exist, and would overflow the query's parameter.)"""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= maximum


_INTEGER_TEXT = re.compile(r"\A[+-]?[0-9]+\Z")


class Errors:
    def __init__(self) -> None:
        self._messages: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self._messages.setdefault(key, []).append(message)

    def __contains__(self, key: str) -> bool:
        return key in self._messages

    def __bool__(self) -> bool:
        return bool(self._messages)

    def grouped(self) -> Iterator[tuple[str, str]]:
        for key, messages in self._messages.items():
            for message in messages:
                yield key, message


def is_blank(value: Any) -> bool:
    """Rails `blank?`: nil, false, empty or whitespace-only strings, empty collections."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict):
        return not value
    return False


def to_decimal(value: Any) -> Decimal | None:
    """The number a raw value denotes (JSON number or numeric string), None if it is none or
    lies beyond what the API accepts (see `check_numericality`)."""
    try:
        return _read_number(value)
    except ValueError:
        return None


def _read_number(value: Any) -> Decimal:
    """NotANumber or OutOfRange (both ValueErrors), or the number: at most 1e30 in magnitude
    and MAX_FRACTION_DIGITS fractional digits. Only stored values are floats (currency rates);
    requests decode to int or Decimal, or keep the text of a number too large to hold."""
    number = numerals.read_number(value, _NUMBERS)
    # exact: abs() would round to 28 digits, and 1e30 + 0.1 would pass as 1e30
    if number.copy_abs() > MAX_DECIMAL:
        raise numerals.OutOfRange(str(value))
    return number


def decimal_text(value: Decimal) -> str:
    """A number inside a message, as BigDecimal#to_s renders it (`10.0`, `-5.5`)."""
    text = format(value.normalize() if value else Decimal(0), "f")
    return text if "." in text else text + ".0"


def check_numericality(
    errors: Errors,
    key: str,
    raw: Any,
    *,
    allow_nil: bool = False,
    only_integer: bool = False,
    greater_than: Decimal | int | None = None,
    greater_than_or_equal_to: Decimal | int | None = None,
    less_than_or_equal_to: Decimal | int | None = None,
    count_text: str | None = None,
) -> Decimal | None:
    """Rails numericality on the raw value; returns the number when it passed the type checks."""
    if raw is None:
        if not allow_nil:
            errors.add(key, NOT_A_NUMBER)
        return None
    try:
        # the range is known before any comparison below computes with the number (issue 6)
        number = _read_number(raw)
    except numerals.NotANumber:
        errors.add(key, NOT_A_NUMBER)
        return None
    except numerals.OutOfRange:
        errors.add(key, OUT_OF_RANGE)
        return None
    if only_integer and not _INTEGER_TEXT.match(str(raw).strip()):
        errors.add(key, NOT_AN_INTEGER)
        return None
    if greater_than is not None and not number > greater_than:
        errors.add(key, f"must be greater than {count_text or greater_than}")
    if greater_than_or_equal_to is not None and not number >= greater_than_or_equal_to:
        errors.add(
            key, f"must be greater than or equal to {count_text or greater_than_or_equal_to}"
        )
    if less_than_or_equal_to is not None and not number <= less_than_or_equal_to:
        errors.add(key, f"must be less than or equal to {less_than_or_equal_to}")
    return number


def check_string(errors: Errors, key: str, raw: Any, *, max_length: int = 255) -> str | None:
    """A string attribute: numbers are taken as their text (Rails casts them); other JSON
    types, NUL bytes and over-long values are refused."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        errors.add(key, NOT_A_STRING)
        return None
    text = raw if isinstance(raw, str) else str(raw)
    if "\x00" in text:
        errors.add(key, NULL_BYTE)
        return None
    if len(text) > max_length:
        errors.add(key, f"is too long (maximum is {max_length} characters)")
        return None
    return text


def check_boolean(errors: Errors, key: str, raw: Any) -> bool | None:
    """true/false, or the strings and numbers Rails casts (`"true"`, `"0"`, `"f"`...)."""
    if raw is None or isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str | int) else None
    if text in ("true", "t", "1"):
        return True
    if text in ("false", "f", "0"):
        return False
    errors.add(key, NOT_A_BOOLEAN)
    return None


def check_uuid(errors: Errors, key: str, raw: Any) -> uuid.UUID | None:
    if raw is None or isinstance(raw, uuid.UUID):
        return raw
    try:
        if isinstance(raw, str):
            return uuid.UUID(raw)
    except ValueError:
        pass
    errors.add(key, INVALID)
    return None


def check_id_list(errors: Errors, key: str, raw: Any) -> list[int] | None:
    """Contact id lists (contract §2.2): a scalar or an array; blanks dropped; empty is null.
    Entries that are not integer ids are refused rather than cast to 0 (Yeti casts)."""
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    ids: list[int] = []
    for item in items:
        if is_blank(item):
            continue
        text = (
            str(item).strip() if isinstance(item, str | int) and not isinstance(item, bool) else ""
        )
        if not _INTEGER_TEXT.match(text) or len(text) > 12 or not is_row_id(int(text)):
            errors.add(key, "must be a list of contact ids")
            return None
        ids.append(int(text))
    return ids or None
