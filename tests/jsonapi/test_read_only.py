"""Read-only attributes sent back on update (issue 8): the same as a GET renders them, or 105."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from accounts_api.jsonapi.body import parse_update
from accounts_api.jsonapi.declaration import Attribute, Resource, Shown, ValueType, read_only
from accounts_api.jsonapi.errors import ParamNotAllowed
from accounts_api.jsonapi.read_only import check_unchanged

STAMP = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

THINGS = Resource(
    type="things",
    path="things",
    from_sql="things t",
    id_sql="t.id",
    attributes=(
        Attribute("name", ValueType.STRING, "t.name"),
        read_only("balance", ValueType.DECIMAL, "t.balance"),
        read_only("label", ValueType.STRING, "t.label"),
        read_only("count", ValueType.INTEGER, "t.count"),
        read_only("enabled", ValueType.BOOLEAN, "t.enabled"),
        read_only("created_at", ValueType.TIMESTAMP, "t.created_at"),
        read_only("send_to", ValueType.INT_ARRAY, "t.send_to"),
        read_only("uuid", ValueType.UUID, "t.uuid"),
        read_only("limit", ValueType.DECIMAL, "t.limit"),
        Attribute("secret", ValueType.STRING, "t.secret", updatable=False, shown=Shown.ON_CREATE),
        Attribute("password", ValueType.STRING, "t.password", updatable=False, shown=Shown.NEVER),
    ),
)
UUID = "29161666-c29c-11e8-a11d-a088b4454590"
# id, name, balance, label, count, enabled, created_at, send_to, uuid, limit, secret, password
ROW = (
    12,
    "n",
    Decimal("0.00"),
    "x",
    5,
    True,
    STAMP,
    [3, 4],
    UUID,
    None,
    None,
    None,
)


def case_id(value: object) -> str:
    """The keys sent (values may be numbers too long for repr)."""
    return ",".join(value) if isinstance(value, dict) else str(value)


def check(attributes: dict[str, Any]) -> None:
    document = {"data": {"type": "things", "id": "12", "attributes": attributes}}
    payload = parse_update(document, THINGS, "12")
    check_unchanged(THINGS, payload.read_only, ROW)


def refused(attributes: dict[str, Any]) -> str:
    with pytest.raises(ParamNotAllowed) as caught:
        check(attributes)
    return str(caught.value.as_dict()["detail"])


@pytest.mark.parametrize(
    "attributes",
    [
        # decimals by value, whatever the spelling (rendered "0.0")
        {"balance": "0.0"},
        {"balance": "0.00"},
        {"balance": "0"},
        {"balance": 0},
        {"balance": Decimal("0.000")},
        {"balance": "-0"},
        {"label": "x"},
        {"count": 5},
        {"count": Decimal("5.0")},
        {"enabled": True},
        {"created-at": "2024-05-06T07:08:09.123Z"},
        {"send-to": [3, 4]},
        {"uuid": UUID},
        {"limit": None},
        {"name": "changed", "balance": "0.0", "label": "x", "limit": None},
    ],
    ids=case_id,
)
def test_a_read_only_value_as_stored_is_accepted(attributes: dict[str, Any]) -> None:
    check(attributes)


@pytest.mark.parametrize(
    ("attributes", "offender"),
    [
        ({"balance": "1.0"}, "balance"),
        ({"balance": None}, "balance"),
        ({"balance": "zero"}, "balance"),
        ({"balance": False}, "balance"),
        ({"balance": "1e1000000"}, "balance"),
        ({"balance": 10**5000}, "balance"),
        ({"label": "y"}, "label"),
        ({"label": None}, "label"),
        ({"count": "5"}, "count"),
        ({"count": 6}, "count"),
        # JSON: `1` is not `true`
        ({"enabled": 1}, "enabled"),
        # as rendered: the same instant written otherwise is a different string
        ({"created-at": "2024-05-06T07:08:09.123+00:00"}, "created-at"),
        ({"send-to": [4, 3]}, "send-to"),
        ({"send-to": [3]}, "send-to"),
        ({"send-to": [True, 4]}, "send-to"),
        ({"uuid": UUID.upper()}, "uuid"),
        ({"limit": "0"}, "limit"),
        # the first value that differs, in body order
        ({"label": "x", "count": 6, "balance": "1"}, "count"),
        ({"balance": 1, "label": "y"}, "balance"),
    ],
    ids=case_id,
)
def test_a_read_only_value_changed_is_105(attributes: dict[str, Any], offender: str) -> None:
    assert refused(attributes) == f"{offender} is not allowed."


@pytest.mark.parametrize("key", ["secret", "password"])
def test_an_attribute_no_get_renders_is_refused_while_parsing(key: str) -> None:
    # a client cannot have read it, so it cannot be sending it back: 105 as before
    document = {"data": {"type": "things", "id": "12", "attributes": {key: "s"}}}
    with pytest.raises(ParamNotAllowed) as caught:
        parse_update(document, THINGS, "12")
    assert caught.value.as_dict()["detail"] == f"{key} is not allowed."
