"""Request bodies: decoding (contract §0.2, §6.3) and the resource-object checks of create
(§2.9), update (§2.10) and relationship linkage (§2.9, §2.12), in their order."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from accounts_api.jsonapi.body import (
    WritePayload,
    decode,
    parse_create,
    parse_linkage,
    parse_relationship_body,
    parse_update,
)
from accounts_api.jsonapi.declaration import Relationship
from accounts_api.jsonapi.errors import BadRequest, JsonApiError
from accounts_api.resources.accounts import ACCOUNTS


def relationship(key: str) -> Relationship:
    found = ACCOUNTS.relationship(key)
    assert found is not None
    return found


CONTRACTOR = relationship("contractor")
INVOICE_TEMPLATE = relationship("invoice-template")


def error(code: str, title: str, detail: str) -> dict[str, object]:
    return {"title": title, "detail": detail, "code": code, "status": "400"}


def missing(parameter: str) -> dict[str, object]:
    return error("106", "Missing Parameter", f"The required parameter, {parameter}, is missing.")


def not_allowed(key: str) -> dict[str, object]:
    return error("105", "Param not allowed", f"{key} is not allowed.")


DATA_NOT_A_HASH = error("122", "Invalid data format", "Data must be a hash.")
LINKS_OBJECT = error("115", "Invalid Links Object", "Data is not a valid Links Object.")


def type_mismatch(resource_type: str) -> dict[str, object]:
    return error("116", "Type Mismatch", f"{resource_type} is not a valid type for this operation.")


def invalid_id(value: str) -> dict[str, object]:
    return error("103", "Invalid field value", f"{value} is not a valid value for id.")


def case_id(value: object) -> str:
    """Readable parametrize ids: the body as compact JSON, the expected error by its code."""
    if isinstance(value, dict) and "code" in value and "title" in value:
        return str(value["code"])
    return json.dumps(value, separators=(",", ":"), default=str)


def rejected(call: Any, *args: object) -> dict[str, object]:
    with pytest.raises(JsonApiError) as caught:
        call(*args)
    return caught.value.as_dict()


# decode


def test_decode_reads_floats_as_decimals() -> None:
    document = decode(b'{"a": 0.333, "b": 1.0, "c": 1E2, "d": -0.1, "e": 1e400}')
    assert document == {
        "a": Decimal("0.333"),
        "b": Decimal("1.0"),
        "c": Decimal("1E+2"),
        "d": Decimal("-0.1"),
        "e": Decimal("1E+400"),
    }
    assert all(type(value) is Decimal for value in document.values())


def test_decode_keeps_integers_exact() -> None:
    document = decode(
        b'{"small": 1, "big": 123456789012345678901234567890, "neg": -9223372036854775809}'
    )
    assert document == {
        "small": 1,
        "big": 123456789012345678901234567890,
        "neg": -9223372036854775809,
    }
    assert all(type(value) is int for value in document.values())


# issue 6: JSON number literals no number can be made of are kept as their text; validation
# then answers `is out of range` for them, as for the same text sent as a string
HUGE_LITERALS = {
    "exponent": "1e1000000",
    "negative-exponent": "-1e1000000",
    "exponent-past-decimal": "1e99999999999999999999",
    "tiny-exponent": "1e-1000000",
    "fraction-16384-digits": "0." + "1" * 16_384,
    "integer-5000-digits": "1" * 5_000,
    "integer-100k-digits": "-" + "9" * 100_000,
    "all-at-once": "9" * 5_000 + "." + "9" * 5_000 + "e-1000000",
}


@pytest.mark.parametrize("literal", HUGE_LITERALS.values(), ids=HUGE_LITERALS.keys())
def test_decode_keeps_a_number_too_large_to_hold_as_its_text(literal: str) -> None:
    body = f'{{"small": 1, "a": {literal}, "float": 1.5, "nested": [{literal}]}}'.encode()

    assert decode(body) == {
        "small": 1,
        "a": literal,
        "float": Decimal("1.5"),
        "nested": [literal],
    }


def test_decode_with_long_integers_keeps_what_it_decodes_otherwise() -> None:
    # an integer past Python's 4,300-digit limit takes the second decoder: the rest of the
    # document must decode exactly as the first would have decoded it
    document = decode(
        (
            '{"z": [1, -2, 0.5, 1e400, true, false, null, "\\u00e9\\n"], "a": {"b": {}}, "long": '
            + "1" * 5_000
            + ', "a": 3}'
        ).encode()
    )

    assert document == {
        "z": [1, -2, Decimal("0.5"), Decimal("1E+400"), True, False, None, "\u00e9\n"],
        "a": 3,
        "long": "1" * 5_000,
    }
    assert list(document) == ["z", "a", "long"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"long": ' + b"1" * 5_000 + b', "a": NaN}',
        b'{"long": ' + b"1" * 5_000 + b', "a": -Infinity}',
        b'{"long": ' + b"1" * 5_000 + b', "a": "\\ud800"}',
        b'{"long": ' + b"1" * 5_000 + b', "\\udfff": 1}',
        b'{"long": ' + b"1" * 5_000 + b", }",
        b'{"long": ' + b"1" * 5_000 + b"} x",
        b'{"long": ' + b"1" * 5_000 + b', "a": "\xff"}',
        b'{"long": ' + b"1" * 5_000 + b', "a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
    ids=[
        "nan",
        "infinity",
        "lone-surrogate",
        "lone-surrogate-key",
        "trailing-comma",
        "trailing-garbage",
        "non-utf8",
        "deeply-nested",
    ],
)
def test_decode_with_long_integers_refuses_what_the_first_decoder_refuses(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode(body)
    # the same document without the long integer is refused by the first decoder as well
    with pytest.raises(BadRequest):
        decode(body.replace(b"1" * 5_000, b"1"))


def test_decode_keeps_key_order() -> None:
    assert list(decode(b'{"z": 1, "a": 2, "m": 3}')) == ["z", "a", "m"]


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_decode_empty_body_is_an_empty_document(body: bytes) -> None:
    # Rails parses no empty body: the request then has no `data` (106), not a parse error
    assert decode(body) == {}


@pytest.mark.parametrize("body", [b"{", b'{"a": }', b"nope", b'{"a": 1} x', b"\xff"])
def test_decode_invalid_json_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        decode(body)
    as_dict = caught.value.as_dict()
    assert (as_dict["title"], as_dict["code"], as_dict["status"]) == ("Bad Request", "400", "400")
    assert as_dict["detail"]


@pytest.mark.parametrize("body", [b"[]", b'[{"data": {}}]', b'"x"', b"1", b"null", b"true"])
def test_decode_non_object_400(body: bytes) -> None:
    assert rejected(decode, body) == error("400", "Bad Request", "Request must be a hash")


# create (contract §2.9)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, missing("data")),
        ({"data": None}, missing("data")),
        ({"data": {}}, missing("data")),
        ({"data": []}, missing("data")),
        ({"data": ""}, missing("data")),
        ({"data": "x"}, DATA_NOT_A_HASH),
        ({"data": [{"type": "accounts"}]}, DATA_NOT_A_HASH),
        ({"data": 5}, DATA_NOT_A_HASH),
        ({"data": {"attributes": {"balance": 1}}}, missing("type")),
        ({"data": {"type": None, "id": "1"}}, missing("type")),
        # the type is checked before anything else in `data`
        (
            {"data": {"type": "contractors", "id": "1", "attributes": {"balance": 1}}},
            error("101", "Invalid resource", "contractors is not a valid resource."),
        ),
        ({"data": {"type": "accounts", "id": "1"}}, not_allowed("id")),
        ({"data": {"type": "accounts", "id": None}}, not_allowed("id")),
        ({"data": {"type": "accounts", "attributes": {"balance": "1"}}}, not_allowed("balance")),
        (
            {"data": {"type": "accounts", "attributes": {"min_balance": 1}}},
            not_allowed("min_balance"),
        ),
        ({"data": {"type": "accounts", "attributes": {"foo": 1}}}, not_allowed("foo")),
        (
            {"data": {"type": "accounts", "relationships": {"invoice_template": {"data": None}}}},
            not_allowed("invoice_template"),
        ),
        # an attribute name passes under relationships only when it is creatable
        (
            {"data": {"type": "accounts", "relationships": {"balance": {"data": None}}}},
            not_allowed("balance"),
        ),
        # only the first offender, in body order
        (
            {"data": {"type": "accounts", "attributes": {"name": "x", "foo": 1, "balance": 1}}},
            not_allowed("foo"),
        ),
        (
            {
                "data": {
                    "type": "accounts",
                    "relationships": {"bogus": None},
                    "attributes": {"balance": 1},
                }
            },
            not_allowed("bogus"),
        ),
        (
            {
                "data": {
                    "type": "accounts",
                    "attributes": {"balance": 1},
                    "relationships": {"bogus": None},
                }
            },
            not_allowed("balance"),
        ),
        (
            {"data": {"type": "accounts", "attributes": {"balance": 1}, "id": "7"}},
            not_allowed("balance"),
        ),
        # issue 8: `links` and `meta` are ignored, so the next offender is reported
        (
            {"data": {"type": "accounts", "meta": {}, "id": "7"}},
            not_allowed("id"),
        ),
        (
            {"data": {"type": "accounts", "links": {}, "attributes": {"balance": "0.0"}}},
            not_allowed("balance"),
        ),
    ],
    ids=case_id,
)
def test_create_rejected(document: dict[str, Any], expected: dict[str, object]) -> None:
    assert rejected(parse_create, document, ACCOUNTS) == expected


def test_create_payload() -> None:
    document = {
        "data": {
            "type": "accounts",
            "attributes": {"name": "acme", "min-balance": Decimal("1.5"), "currency": "USD"},
            "relationships": {
                "contractor": {"data": {"type": "contractors", "id": "5"}},
                "invoice-template": {"data": {"type": "invoice_templates", "id": 3}},
                # contract §2.9 quirk: an attribute name under relationships is ignored
                "timezone": {"data": {"type": "timezones", "id": "UTC"}},
            },
        },
        # top-level members other than data are ignored
        "meta": {"x": 1},
        "jsonapi": {"version": "1.0"},
        "token": "abc",
    }
    assert parse_create(document, ACCOUNTS) == WritePayload(
        attributes={"name": "acme", "min_balance": Decimal("1.5"), "currency": "USD"},
        relationships={"contractor": 5, "invoice_template": 3},
    )


def test_create_null_relationship_object() -> None:
    document = {"data": {"type": "accounts", "relationships": {"invoice-template": None}}}
    payload = parse_create(document, ACCOUNTS)
    assert payload.relationships == {"invoice_template": None}
    assert not payload.empty


@pytest.mark.parametrize(
    ("linkage", "expected"),
    [
        ({"type": "contractors", "id": "x"}, invalid_id("x")),
        ({"type": "contractors", "id": "7", "x": 1}, LINKS_OBJECT),
        # contract §0.4: a 400 is exactly {title, detail, code, status}, no source pointer
        ({"type": "accounts", "id": "7"}, type_mismatch("accounts")),
    ],
)
def test_create_checks_linkage(linkage: object, expected: dict[str, object]) -> None:
    document = {"data": {"type": "accounts", "relationships": {"contractor": {"data": linkage}}}}
    assert rejected(parse_create, document, ACCOUNTS) == expected


# update (contract §2.10), URL id 12


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, missing("data")),
        ({"data": {}}, missing("data")),
        ({"data": "x"}, DATA_NOT_A_HASH),
        (
            {"data": {"type": "accounts"}},
            error("109", "A key is required", "The resource object does not contain a key."),
        ),
        (
            {"data": {"type": "accounts", "id": None, "attributes": {"balance": 1}}},
            error("109", "A key is required", "The resource object does not contain a key."),
        ),
        # the id is checked before the type, compared as a string
        (
            {"data": {"type": "contractors", "id": "13"}},
            error("110", "Key is not included in URL", "The URL does not support the key 13"),
        ),
        (
            {"data": {"type": "accounts", "id": "012"}},
            error("110", "Key is not included in URL", "The URL does not support the key 012"),
        ),
        (
            {"data": {"id": "13"}},
            error("110", "Key is not included in URL", "The URL does not support the key 13"),
        ),
        ({"data": {"id": "12"}}, missing("type")),
        (
            {"data": {"type": "contractors", "id": "12", "attributes": {"balance": 1}}},
            error("101", "Invalid resource", "contractors is not a valid resource."),
        ),
        # a read-only attribute is set aside only when some GET renders it: an unknown or
        # underscored key is refused here, before any read-only key that comes first
        (
            {"data": {"type": "accounts", "id": "12", "attributes": {"balance": 1, "foo": 1}}},
            not_allowed("foo"),
        ),
        (
            {"data": {"type": "accounts", "id": "12", "attributes": {"min_balance": 1}}},
            not_allowed("min_balance"),
        ),
        (
            {"data": {"type": "accounts", "id": "12", "relationships": {"balance": None}}},
            not_allowed("balance"),
        ),
        ({"data": {"type": "accounts", "id": "12", "included": []}}, not_allowed("included")),
    ],
    ids=case_id,
)
def test_update_rejected(document: dict[str, Any], expected: dict[str, object]) -> None:
    assert rejected(parse_update, document, ACCOUNTS, "12") == expected


def test_update_payload() -> None:
    document = {
        "data": {
            "type": "accounts",
            "id": 12,
            "attributes": {"name": "n", "max-balance": 20, "invoice-period-id": 3},
            "relationships": {"invoice-template": {"data": None}},
        }
    }
    assert parse_update(document, ACCOUNTS, "12") == WritePayload(
        attributes={"name": "n", "max_balance": 20, "invoice_period_id": 3},
        relationships={"invoice_template": None},
        id=12,
    )


def test_update_without_changes_is_empty() -> None:
    assert parse_update({"data": {"type": "accounts", "id": "12"}}, ACCOUNTS, "12").empty


def test_update_of_an_object_sent_back_whole() -> None:
    # issue 8: `links` and `meta` are ignored, read-only attributes set aside in body order
    # (the endpoint compares them with the stored row), relationship `links` accepted
    document = {
        "data": {
            "id": "12",
            "type": "accounts",
            "links": {"self": "http://api.example.com/api/rest/admin/accounts/12"},
            "attributes": {"name": "n", "currency": "USD", "balance": "0.0"},
            "relationships": {
                "contractor": {
                    "links": {"self": "x", "related": "y"},
                    "data": {"type": "contractors", "id": "5"},
                    "meta": {},
                }
            },
            "meta": {"note": 1},
        }
    }
    payload = parse_update(document, ACCOUNTS, "12")
    assert payload == WritePayload(
        attributes={"name": "n"},
        relationships={"contractor": 5},
        id="12",
        read_only={"currency": "USD", "balance": "0.0"},
    )
    assert list(payload.read_only) == ["currency", "balance"]
    assert "balance" not in payload.values()


def test_update_with_only_read_only_attributes_is_empty() -> None:
    document = {"data": {"type": "accounts", "id": "12", "attributes": {"balance": 1}}}
    payload = parse_update(document, ACCOUNTS, "12")
    assert payload.empty
    assert payload.read_only == {"balance": 1}


def test_create_ignores_links_and_meta() -> None:
    document = {
        "data": {
            "type": "accounts",
            "links": {"self": "x"},
            "meta": {},
            "attributes": {"name": "n"},
        }
    }
    assert parse_create(document, ACCOUNTS) == WritePayload(attributes={"name": "n"})


# linkage (contract §2.9, §2.12)


@pytest.mark.parametrize(
    ("linkage", "expected"),
    [
        (None, None),
        ({"type": "contractors", "id": "7"}, 7),
        ({"id": 7, "type": "contractors"}, 7),
        ({"type": "contractors", "id": " 7 "}, 7),
        ({"type": "contractors", "id": "-3"}, -3),
    ],
)
def test_linkage(linkage: object, expected: object) -> None:
    assert parse_linkage(linkage, CONTRACTOR) == expected


@pytest.mark.parametrize("linkage_type", ["invoice-templates", "invoice_templates"])
def test_invoice_template_linkage_types(linkage_type: str) -> None:
    linkage = {"type": linkage_type, "id": "3"}
    assert parse_linkage(linkage, INVOICE_TEMPLATE) == 3


def test_linkage_with_null_id_is_no_target() -> None:
    # jsonapi-resources: a `{type, id: null}` links object names no record
    linkage = {"type": "invoice-templates", "id": None}
    assert parse_linkage(linkage, INVOICE_TEMPLATE) is None


@pytest.mark.parametrize(
    ("linkage", "expected"),
    [
        ({"type": "contractors"}, LINKS_OBJECT),
        ({"id": "7"}, LINKS_OBJECT),
        ({"type": "contractors", "id": "7", "meta": {}}, LINKS_OBJECT),
        ({}, LINKS_OBJECT),
        ("7", LINKS_OBJECT),
        ([{"type": "contractors", "id": "7"}], LINKS_OBJECT),
        ({"type": "accounts", "id": "7"}, type_mismatch("accounts")),
        ({"type": "contractor", "id": "7"}, type_mismatch("contractor")),
        ({"type": "smtp-connections", "id": "7"}, type_mismatch("smtp_connections")),
        ({"type": "contractors", "id": "abc"}, invalid_id("abc")),
        ({"type": "contractors", "id": "1.5"}, invalid_id("1.5")),
        ({"type": "contractors", "id": ""}, invalid_id("")),
        ({"type": "contractors", "id": "\u0663"}, invalid_id("\u0663")),
    ],
)
def test_linkage_rejected(linkage: object, expected: dict[str, object]) -> None:
    assert rejected(parse_linkage, linkage, CONTRACTOR) == expected


def test_invoice_template_singular_type_mismatch() -> None:
    linkage = {"type": "invoice-template", "id": "3"}
    assert rejected(parse_linkage, linkage, INVOICE_TEMPLATE) == type_mismatch("invoice_template")


def test_relationship_body() -> None:
    assert parse_relationship_body({"data": {"type": "contractors", "id": "7"}}, CONTRACTOR) == 7
    assert parse_relationship_body({"data": None}, CONTRACTOR) is None
    assert rejected(parse_relationship_body, {}, CONTRACTOR) == missing("data")
    assert rejected(parse_relationship_body, {"meta": {}}, CONTRACTOR) == missing("data")
