"""Strong entity tags of stored rows and If-Match (optimistic locking, RFC 9110 §13.1.1)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from starlette.requests import Request

from accounts_api.jsonapi.errors import PreconditionFailed
from accounts_api.jsonapi.versioning import check_if_match, entity_tag, if_match

STRONG = re.compile(r'\A"[0-9a-f]{32}"\Z')
ROW: tuple[Any, ...] = (
    7,
    "acme-usd",
    Decimal("10.50"),
    None,
    [1, 2],
    uuid.UUID("0b5f7a8e-3c1d-4d7e-9f3a-2b6c8d9e0f11"),
    datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
)


def request(headers: list[tuple[str, str]]) -> Request:
    return Request(
        {
            "type": "http",
            "method": "PATCH",
            "path": "/api/rest/admin/accounts/7",
            "query_string": b"",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            "scheme": "http",
            "server": ("api.example.com", 80),
            "client": ("10.0.0.1", 50000),
        }
    )


# -- entity_tag ---------------------------------------------------------------------------------


def test_entity_tag_is_a_strong_quoted_32_hex_tag() -> None:
    assert STRONG.match(entity_tag(ROW))


def test_entity_tag_depends_only_on_the_values() -> None:
    assert entity_tag(ROW) == entity_tag(list(ROW)) == entity_tag(iter(ROW))


@pytest.mark.parametrize(
    "position, other",
    [
        (0, 8),
        (1, "acme-eur"),
        (2, Decimal("10.51")),
        (3, Decimal(0)),
        (4, [2, 1]),
        (5, uuid.UUID("0b5f7a8e-3c1d-4d7e-9f3a-2b6c8d9e0f12")),
        (6, datetime(2024, 5, 1, 12, 31, tzinfo=UTC)),
    ],
)
def test_entity_tag_changes_with_any_value(position: int, other: Any) -> None:
    changed = list(ROW)
    changed[position] = other
    assert entity_tag(changed) != entity_tag(ROW)


def test_entity_tag_depends_on_the_order_of_values() -> None:
    assert entity_tag(["a", "b"]) != entity_tag(["b", "a"])


def test_entity_tag_tells_a_null_from_a_missing_column() -> None:
    assert entity_tag([1, None]) != entity_tag([1])


# -- if_match -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, wanted",
    [
        ('"abc"', ['"abc"']),
        ("*", ["*"]),
        ('"a", "b"', ['"a"', '"b"']),
        ('  "a" ,"b" ,  ', ['"a"', '"b"']),
        ('W/"a", "b"', ['W/"a"', '"b"']),
        ("", []),
    ],
)
def test_if_match_reads_the_listed_tags(header: str, wanted: list[str]) -> None:
    assert if_match(request([("If-Match", header)])) == wanted


def test_if_match_is_none_without_the_header() -> None:
    assert if_match(request([("If-None-Match", '"abc"')])) is None


def test_if_match_reads_every_field_line() -> None:
    # RFC 9110 §5.3: field lines of a list-based field form one comma-separated list
    headers = [("If-Match", '"a"'), ("If-Match", '"b", "c"')]
    assert if_match(request(headers)) == ['"a"', '"b"', '"c"']


# -- check_if_match -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wanted",
    [
        [entity_tag(ROW)],
        ["*"],
        ['"00000000000000000000000000000000"', entity_tag(ROW)],
        [entity_tag(ROW), '"00000000000000000000000000000000"'],
    ],
)
def test_check_if_match_accepts_the_current_tag_or_any(wanted: list[str]) -> None:
    check_if_match(wanted, ROW)


@pytest.mark.parametrize(
    "wanted",
    [
        [],
        ['"00000000000000000000000000000000"'],
        # RFC 9110 §13.1.1: strong comparison, a weak tag never matches
        [f"W/{entity_tag(ROW)}"],
        # the bare hex, unquoted, is not the tag
        [entity_tag(ROW).strip('"')],
        [entity_tag(ROW).upper()],
    ],
)
def test_check_if_match_refuses_any_other_tag(wanted: list[str]) -> None:
    with pytest.raises(PreconditionFailed) as raised:
        check_if_match(wanted, ROW)
    assert raised.value.status == 412
    assert raised.value.as_dict() == {
        "title": "Precondition Failed",
        "detail": "The record has changed since the ETag given in If-Match;"
        " read it again and retry.",
        "code": "412",
        "status": "412",
    }


def test_check_if_match_compares_with_the_row_given() -> None:
    changed = [*ROW[:2], Decimal("11.50"), *ROW[3:]]
    with pytest.raises(PreconditionFailed):
        check_if_match([entity_tag(ROW)], changed)
