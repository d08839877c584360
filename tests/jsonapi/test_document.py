"""Rendering (contract §0.2 values, §0.3 key order, §2.4 pagination links, §0.4 error bodies)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from accounts_api.jsonapi.declaration import Attribute, Resource, Shown, ValueType
from accounts_api.jsonapi.document import (
    Renderer,
    encode_errors,
    format_decimal,
    format_timestamp,
    page_links,
    render_value,
)
from accounts_api.jsonapi.errors import (
    BadRequest,
    ParamNotAllowed,
    RecordNotFound,
    ValidationFailed,
)
from accounts_api.resources.accounts import ACCOUNTS

BASE = "http://api.example.com"
URL = f"{BASE}/api/rest/admin/accounts"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0", "0.0"),
        ("23.1", "23.1"),
        ("-100", "-100.0"),
        ("0.3444", "0.3444"),
        ("1000", "1000.0"),
        ("1E+2", "100.0"),
        ("-1E+2", "-100.0"),
        ("1.50", "1.5"),
        ("100.00", "100.0"),
        ("-0", "0.0"),
        ("0E-10", "0.0"),
        ("0.00", "0.0"),
        ("-0.5", "-0.5"),
        ("1E-20", "0.00000000000000000001"),
        ("-5E-7", "-0.0000005"),
        ("1E+25", "10000000000000000000000000.0"),
        ("123456789012345678901234567890.5", "123456789012345678901234567890.5"),
    ],
)
def test_format_decimal(value: str, text: str) -> None:
    assert format_decimal(Decimal(value)) == text


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2024, 1, 31, 12, tzinfo=UTC), "2024-01-31T12:00:00.000Z"),
        (datetime(2024, 1, 31, 12, 0, 0, 999999, tzinfo=UTC), "2024-01-31T12:00:00.999Z"),
        (datetime(2024, 1, 31, 12, 0, 0, 5000, tzinfo=UTC), "2024-01-31T12:00:00.005Z"),
        (datetime(2024, 7, 1, 3, 4, 5, tzinfo=ZoneInfo("Europe/Kyiv")), "2024-07-01T00:04:05.000Z"),
        (
            datetime(2024, 12, 31, 22, tzinfo=timezone(timedelta(hours=-5))),
            "2025-01-01T03:00:00.000Z",
        ),
    ],
)
def test_format_timestamp(moment: datetime, text: str) -> None:
    assert format_timestamp(moment) == text


@pytest.mark.parametrize(
    ("value_type", "value", "rendered"),
    [
        (ValueType.DECIMAL, Decimal("23.10"), "23.1"),
        (ValueType.DECIMAL, None, None),
        (ValueType.FLOAT, 1.2, 1.2),
        (ValueType.INTEGER, 36000, 36000),
        (ValueType.INT_ARRAY, (3, 7), [3, 7]),
        (ValueType.BOOLEAN, False, False),
        (
            ValueType.UUID,
            uuid.UUID("29161666-c29c-11e8-a11d-a088b4454590"),
            "29161666-c29c-11e8-a11d-a088b4454590",
        ),
        (ValueType.TIMESTAMP, datetime(2024, 1, 31, 12, tzinfo=UTC), "2024-01-31T12:00:00.000Z"),
    ],
)
def test_render_value(value_type: ValueType, value: object, rendered: object) -> None:
    assert render_value(value_type, value) == rendered


# contract §2.4: pagination links


def page(number: int, size: int, extra: str = "") -> str:
    return f"{URL}?{extra}page%5Bnumber%5D={number}&page%5Bsize%5D={size}"


def test_links_middle_page() -> None:
    links = page_links(URL, [], 2, 1, 3)
    assert list(links) == ["first", "prev", "next", "last"]
    assert links == {
        "first": page(1, 1),
        "prev": page(1, 1),
        "next": page(3, 1),
        "last": page(3, 1),
    }


def test_links_no_records() -> None:
    assert page_links(URL, [], 1, 50, 0) == {"first": page(1, 50), "last": page(1, 50)}


def test_links_past_the_last_page_keep_prev() -> None:
    links = page_links(URL, [], 5, 1, 3)
    assert list(links) == ["first", "prev", "last"]
    assert links == {"first": page(1, 1), "prev": page(4, 1), "last": page(3, 1)}


@pytest.mark.parametrize(
    ("number", "size", "total", "keys", "last"),
    [
        (1, 50, 50, ["first", "last"], 1),
        (1, 50, 51, ["first", "next", "last"], 2),
        (2, 50, 51, ["first", "prev", "last"], 2),
        (1, 2, 2, ["first", "last"], 1),
        (1, 1, 2, ["first", "next", "last"], 2),
        (3, 10, 0, ["first", "prev", "last"], 1),
    ],
)
def test_links_present(number: int, size: int, total: int, keys: list[str], last: int) -> None:
    links = page_links(URL, [], number, size, total)
    assert list(links) == keys
    assert links["last"] == page(last, size)


def test_links_echo_sorted_and_encoded() -> None:
    echo = [("sort", "-name"), ("filter[name_cont]", "acme")]
    expected = f"{URL}?filter%5Bname_cont%5D=acme&page%5Bnumber%5D=1&page%5Bsize%5D=50&sort=-name"
    assert page_links(URL, echo, 1, 50, 10) == {"first": expected, "last": expected}


def test_links_escape_as_cgi() -> None:
    echo = [
        ("include", "contractor,invoice-template"),
        ("fields[accounts]", "name,balance"),
        ("filter[name_in]", "a b,ü/&=*~._-"),
    ]
    expected = (
        "fields%5Baccounts%5D=name%2Cbalance"
        "&filter%5Bname_in%5D=a+b%2C%C3%BC%2F%26%3D%2A~._-"
        "&include=contractor%2Cinvoice-template&"
    )
    assert page_links(URL, echo, 1, 50, 1) == {
        "first": page(1, 50, expected),
        "last": page(1, 50, expected),
    }


# contract §0.4: error documents, §0.3: `<`, `>` and `&` escaped


def test_encode_errors() -> None:
    body = encode_errors(
        [
            BadRequest("<b>&amp;</b>"),
            RecordNotFound(999),
            ValidationFailed(
                "must exist", key="contractor", pointer="/data/relationships/contractor"
            ),
            ParamNotAllowed("a<b"),
        ]
    )
    assert body == (
        b'{"errors":['
        b'{"title":"Bad Request","detail":"\\u003cb\\u003e\\u0026amp;\\u003c/b\\u003e",'
        b'"code":"400","status":"400"},'
        b'{"title":"Record not found","detail":"The record identified by 999 could not be found.",'
        b'"code":"404","status":"404"},'
        b'{"title":"must exist","detail":"contractor - must exist","code":"100",'
        b'"source":{"pointer":"/data/relationships/contractor"},"status":"422"},'
        b'{"title":"Param not allowed","detail":"a\\u003cb is not allowed.","code":"105",'
        b'"status":"400"}'
        b"]}"
    )
    assert json.loads(body)["errors"][3]["detail"] == "a<b is not allowed."


# contract §0.3: resource objects


def account_row(**overrides: object) -> list[object]:
    values: dict[str, object] = {
        "name": "acme-usd",
        "balance": Decimal(0),
        "min_balance": Decimal(-100),
        "max_balance": Decimal(1000),
        "vat": Decimal("23.1"),
        "balance_low_threshold": Decimal(90),
        "balance_high_threshold": Decimal("95.00"),
        "send_balance_notifications_to": [3],
        "destination_rate_limit": Decimal("0.3444"),
        "max_call_duration": 36000,
        "external_id": 100,
        "uuid": uuid.UUID("29161666-c29c-11e8-a11d-a088b4454590"),
        "origination_capacity": 10,
        "termination_capacity": 3,
        "total_capacity": 11,
        "send_invoices_to": [3],
        "invoice_period_id": 2,
        "timezone": "Europe/Kyiv",
        "currency": "USD",
    }
    values.update(overrides)
    return [12, *values.values(), 5, None]


def test_resource_object_layout() -> None:
    obj = Renderer(ACCOUNTS, BASE, {}).resource_object(account_row())
    assert json.dumps(obj) == json.dumps(
        {
            "id": "12",
            "type": "accounts",
            "links": {"self": f"{URL}/12"},
            "attributes": {
                "name": "acme-usd",
                "balance": "0.0",
                "min-balance": "-100.0",
                "max-balance": "1000.0",
                "vat": "23.1",
                "balance-low-threshold": "90.0",
                "balance-high-threshold": "95.0",
                "send-balance-notifications-to": [3],
                "destination-rate-limit": "0.3444",
                "max-call-duration": 36000,
                "external-id": 100,
                "uuid": "29161666-c29c-11e8-a11d-a088b4454590",
                "origination-capacity": 10,
                "termination-capacity": 3,
                "total-capacity": 11,
                "send-invoices-to": [3],
                "invoice-period-id": 2,
                "timezone": "Europe/Kyiv",
                "currency": "USD",
            },
            "relationships": {
                "contractor": {
                    "links": {
                        "self": f"{URL}/12/relationships/contractor",
                        "related": f"{URL}/12/contractor",
                    },
                    "data": {"type": "contractors", "id": "5"},
                },
                "invoice-template": {
                    "links": {
                        "self": f"{URL}/12/relationships/invoice-template",
                        "related": f"{URL}/12/invoice-template",
                    },
                    "data": None,
                },
            },
        }
    )


def test_sparse_fieldsets() -> None:
    # contract §2.8: only listed attributes and relationships; no `relationships` key when none
    renderer = Renderer(ACCOUNTS, BASE, {"accounts": frozenset({"balance", "name"})})
    assert renderer.resource_object(account_row()) == {
        "id": "12",
        "type": "accounts",
        "links": {"self": f"{URL}/12"},
        "attributes": {"name": "acme-usd", "balance": "0.0"},
    }
    renderer = Renderer(ACCOUNTS, BASE, {"accounts": frozenset({"contractor"})})
    obj = renderer.resource_object(account_row())
    assert list(obj) == ["id", "type", "links", "relationships"]
    assert list(obj["relationships"]) == ["contractor"]


def test_attributes_not_shown_are_left_out() -> None:
    # a write-only attribute never; a secret shown on create only in the create's answer
    resource = Resource(
        type="hidden",
        path="hidden",
        from_sql="hidden h",
        id_sql="h.id",
        attributes=(
            Attribute("name", ValueType.STRING, "h.name"),
            Attribute("password", ValueType.STRING, "NULL", shown=Shown.NEVER),
            Attribute("secret", ValueType.STRING, "h.secret", shown=Shown.ON_CREATE),
        ),
    )
    row = [1, "n", "pw", "whsec_x"]

    shown = Renderer(resource, BASE, {}).resource_object(row)["attributes"]
    on_create = Renderer(resource, BASE, {}, created=True).resource_object(row)["attributes"]
    sparse = Renderer(resource, BASE, {"hidden": frozenset({"secret"})}).resource_object(row)

    assert shown == {"name": "n"}
    assert on_create == {"name": "n", "secret": "whsec_x"}
    assert "attributes" not in sparse
