"""Request bodies: JSON decoding and the resource-object checks of contract §2.9, §2.10, §2.12.

The result is a `WritePayload` of raw attribute values (JSON numbers as Decimal or int,
never float; a number too large or too precise to hold is kept as its text) and relationship
keys; resources validate the values themselves.

Issue 8: JSON:API clients send a fetched resource object back whole. Its `links` and `meta`
are ignored, and on update its read-only attributes are set aside (`WritePayload.read_only`)
for the endpoint to compare with the stored row (read_only.py); Yeti refuses all three.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from starlette.requests import Request

from accounts_api import numerals
from accounts_api.jsonapi.declaration import Relationship, Resource
from accounts_api.jsonapi.errors import (
    BadRequest,
    InvalidDataFormat,
    InvalidFieldValue,
    InvalidLinksObject,
    InvalidResource,
    KeyNotIncludedInUrl,
    KeyRequired,
    MissingParameter,
    ParamNotAllowed,
    PayloadTooLarge,
    TypeMismatch,
)

MAX_BODY_BYTES = 1024 * 1024
# keys are at most bigint (19 digits); a longer one stands for "beyond every column"
KEY_DIGITS = 20
OUT_OF_RANGE: int = 10**KEY_DIGITS


def _json_number(literal: str) -> Decimal | str:
    """contract §0.2: a JSON float is read losslessly as a decimal. One past what a Decimal
    may hold (`1e1000000` overflows its arithmetic, `1e99999999999999999999` Decimal() itself)
    is kept as its text: validation refuses it as it refuses the same string (issue 6)."""
    try:
        return numerals.read_decimal(literal)
    except ValueError:
        return literal


def _json_integer(literal: str) -> int | str:
    """A JSON integer as an int when a Decimal could hold it, else kept as its text."""
    try:
        return numerals.read_integer(literal, digits=numerals.HOLDABLE.integer_digits)
    except ValueError:
        return literal


_decoder = msgspec.json.Decoder(float_hook=_json_number)
_INTEGER_OUT_OF_RANGE = "Integer value out of range"


@dataclass
class WritePayload:
    """Attributes by underscored name (raw JSON values) and relationship targets (key or None)."""

    attributes: dict[str, Any] = field(default_factory=dict)
    relationships: dict[str, object | None] = field(default_factory=dict)
    id: object | None = None
    # update only: read-only attributes sent back (by key as sent, in body order), allowed
    # only with their stored values; never handed to a writer
    read_only: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.attributes and not self.relationships

    def values(self) -> dict[str, Any]:
        """Attributes and foreign keys in one mapping: relationship `x` becomes `x_id`."""
        values = dict(self.attributes)
        for name, target in self.relationships.items():
            values[f"{name}_id"] = target
        return values


async def read_body(request: Request) -> bytes:
    """The request body, read once (kept in request.state), at most MAX_BODY_BYTES (413)."""
    cached: bytes | None = getattr(request.state, "body", None)
    if cached is not None:
        return cached
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(MAX_BODY_BYTES)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(MAX_BODY_BYTES)
        chunks.append(chunk)
    body = b"".join(chunks)
    request.state.body = body
    return body


def decode(body: bytes) -> dict[str, Any]:
    """contract §6.3: invalid JSON and a non-object top level are 400 Bad Request."""
    if not body.strip():
        return {}  # Rails parses no empty body: `data` is then missing (106)
    try:
        try:
            document = _decoder.decode(body)
        except msgspec.ValidationError as error:
            if not str(error).startswith(_INTEGER_OUT_OF_RANGE):
                raise
            document = _decode_with_long_integers(body)
    except UnicodeError:
        raise BadRequest("The request body is not valid UTF-8.") from None
    except (msgspec.DecodeError, ValueError) as error:
        raise BadRequest(str(error)) from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.") from None
    if not isinstance(document, dict):
        raise BadRequest("Request must be a hash")
    return document


def _decode_with_long_integers(body: bytes) -> Any:
    """The document msgspec refused for an integer of more than 4,300 digits, read by the
    standard library instead, which hands every number over as text. It refuses what msgspec
    refuses: bytes that are not UTF-8, NaN and Infinity, lone surrogates (escaped `\\ud800`)."""
    document = json.loads(
        body.decode("utf-8"),
        parse_float=_json_number,
        parse_int=_json_integer,
        parse_constant=_no_constant,
    )
    _check_strings(document)
    return document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number.")


def _check_strings(value: Any) -> None:
    """Every string of the document, keys too, must be encodable as UTF-8 (UnicodeError)."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            key.encode("utf-8")
            _check_strings(item)


def _blank(value: object) -> bool:
    return value is None or value == "" or value == {} or value == []


def data_member(document: dict[str, Any]) -> dict[str, Any]:
    data = document.get("data")
    if _blank(data):
        raise MissingParameter("data")
    if not isinstance(data, dict):
        raise InvalidDataFormat()
    return data


def integer_key(raw: object) -> int:
    """An integer key from a URL or linkage, as a string or a number; 103 otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvalidFieldValue(raw)
    text = str(raw).strip()
    if not text.lstrip("-").isdigit() or not text.isascii():
        raise InvalidFieldValue(raw)
    if len(text.lstrip("-0")) > KEY_DIGITS:
        # far beyond any key column (and Python's int() refuses past 4,300 digits)
        return -OUT_OF_RANGE if text.startswith("-") else OUT_OF_RANGE
    return int(text)


def parse_key(raw: object, resource: Resource) -> object:
    if resource.integer_keys:
        return integer_key(raw)
    # contract §5.5: a string key with a comma is an id list, not a key; no key holds NUL
    if "," in str(raw) or "\x00" in str(raw):
        raise InvalidFieldValue(raw)
    return str(raw)


def _check_type(data: dict[str, Any], resource: Resource) -> None:
    resource_type = data.get("type")
    if _blank(resource_type):
        raise MissingParameter("type")
    if resource_type != resource.type:
        raise InvalidResource(str(resource_type))


def parse_create(document: dict[str, Any], resource: Resource) -> WritePayload:
    data = data_member(document)
    _check_type(data, resource)
    return _parse_members(data, resource, creating=True)


def parse_update(document: dict[str, Any], resource: Resource, url_key: str) -> WritePayload:
    data = data_member(document)
    if "id" not in data or data["id"] is None:
        raise KeyRequired()
    # contract §2.10: compared as strings, "12" vs "012" is a mismatch
    if str(data["id"]) != url_key:
        raise KeyNotIncludedInUrl(data["id"])
    _check_type(data, resource)
    payload = _parse_members(data, resource, creating=False, echoed=True)
    payload.id = data["id"]
    return payload


def parse_singleton(document: dict[str, Any], resource: Resource) -> WritePayload:
    """A write addressed by `data.id` alone, whatever the URL says (contract §5.8, §5.9)."""
    data = data_member(document)
    if "id" not in data or data["id"] is None:
        raise KeyRequired()
    _check_type(data, resource)
    payload = _parse_members(data, resource, creating=False)
    payload.id = data["id"]
    return payload


# JSON:API 1.0 §5.2: members a resource object may carry that the server sets; a client that
# sends a fetched object back whole sends them too (issue 8; contract §2.9: Yeti says 105)
IGNORED_MEMBERS = frozenset({"links", "meta"})


def _parse_members(
    data: dict[str, Any], resource: Resource, *, creating: bool, echoed: bool = False
) -> WritePayload:
    """`echoed`: an update of a member, whose read-only attributes a client may send back
    as it read them; they are kept aside, not refused."""
    attributes = data.get("attributes")
    relationships = data.get("relationships")
    attributes = {} if attributes is None else attributes
    relationships = {} if relationships is None else relationships
    if not isinstance(attributes, dict):
        raise BadRequest("attributes must be an object.", pointer="/data/attributes")
    if not isinstance(relationships, dict):
        raise BadRequest("relationships must be an object.", pointer="/data/relationships")
    payload = WritePayload()
    # contract §2.9: only the first offending key, in body order, is reported
    for member in data:
        if member == "type" or (member == "id" and not creating) or member in IGNORED_MEMBERS:
            continue
        if member == "attributes":
            for key, value in attributes.items():
                attribute = resource.attribute(key)
                if attribute and (attribute.creatable if creating else attribute.updatable):
                    payload.attributes[attribute.name] = value
                # only a value every GET renders can be sent back as read (declaration.Shown)
                elif attribute and echoed and attribute.readable:
                    payload.read_only[key] = value
                else:
                    raise ParamNotAllowed(key)
        elif member == "relationships":
            for key in relationships:
                target = resource.relationship(key)
                linkable = target and (target.creatable if creating else target.updatable)
                # contract §2.9 quirk: a writable attribute's name passes here (and is ignored)
                attribute = resource.attribute(key)
                writable = attribute and (attribute.creatable if creating else attribute.updatable)
                if not linkable and not writable:
                    raise ParamNotAllowed(key)
        else:
            raise ParamNotAllowed(member)
    for key, value in relationships.items():
        relationship = resource.relationship(key)
        if relationship is None:
            continue  # contract §2.9 quirk: an attribute name under relationships is ignored
        linkage = value.get("data") if isinstance(value, dict) else value
        if isinstance(value, dict) and set(value) - {"data", "links", "meta"}:
            raise InvalidLinksObject()
        payload.relationships[relationship.name] = parse_linkage(linkage, relationship)
    return payload


def parse_linkage(linkage: object, relationship: Relationship) -> object | None:
    """`null` or exactly `{type, id}`; 115/116/103 otherwise (contract §2.9)."""
    if linkage is None:
        return None
    # contract §0.4: like every 400 of the parser, 115 and 116 carry no source pointer
    if not isinstance(linkage, dict) or set(linkage) != {"type", "id"}:
        raise InvalidLinksObject()
    linkage_type = linkage["type"]
    if not isinstance(linkage_type, str) or not relationship.accepts(linkage_type):
        raise TypeMismatch(str(linkage_type).replace("-", "_"))
    # a null id is no target, as a null linkage
    return None if linkage["id"] is None else integer_key(linkage["id"])


def parse_relationship_body(document: dict[str, Any], relationship: Relationship) -> object | None:
    """PATCH /<resource>/{id}/relationships/<name> (contract §2.12)."""
    if "data" not in document:
        raise MissingParameter("data")
    return parse_linkage(document["data"], relationship)
