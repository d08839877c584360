"""Rendering: values (contract §0.2), resource objects and documents in the contract's key
order (§0.3), pagination links (§2.4) and error documents (§0.4).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote_plus

import msgspec

from accounts_api.jsonapi.declaration import Resource, ValueType
from accounts_api.jsonapi.errors import JsonApiError

API_PREFIX = "/api/rest/admin"

_encoder = msgspec.json.Encoder()


def format_decimal(value: Decimal) -> str:
    """BigDecimal#to_s("F"): no exponent, trailing zeros dropped, at least one fractional digit."""
    if value.is_zero():
        return "0.0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0")
        return text + "0" if text.endswith(".") else text
    return text + ".0"


def format_timestamp(value: datetime) -> str:
    """ISO-8601 with milliseconds in UTC, rendered with `Z`."""
    moment = value.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def render_value(value_type: ValueType, value: Any) -> Any:
    if value is None:
        return None
    if value_type is ValueType.DECIMAL:
        return format_decimal(value)
    if value_type is ValueType.TIMESTAMP:
        return format_timestamp(value)
    if value_type is ValueType.UUID:
        return str(value)
    if value_type is ValueType.INT_ARRAY:
        return list(value)
    return value


def encode(document: Mapping[str, Any]) -> bytes:
    return _encoder.encode(document)


def encode_errors(errors: Iterable[JsonApiError]) -> bytes:
    body = _encoder.encode({"errors": [error.as_dict() for error in errors]})
    # contract §0.3: error bodies escape <, > and & (they can only occur inside JSON strings)
    return body.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


class Row(Protocol):
    """A database row: the id, the attributes, then the relationship keys, by position."""

    def __getitem__(self, index: int, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Renderer:
    """Renders rows of one resource into resource objects for one request; `created`: the
    answer to a create, which alone shows attributes shown on create."""

    def __init__(
        self,
        resource: Resource,
        base_url: str,
        fields: Mapping[str, frozenset[str]],
        *,
        created: bool = False,
    ):
        self.resource = resource
        self.base_url = base_url
        self.fields = fields.get(resource.type)
        self.created = created

    def self_link(self, key: object) -> str:
        return f"{self.base_url}{API_PREFIX}/{self.resource.links_path}/{key}"

    def relationship_links(self, key: object, relationship_key: str) -> dict[str, str]:
        own = self.self_link(key)
        return {
            "self": f"{own}/relationships/{relationship_key}",
            "related": f"{own}/{relationship_key}",
        }

    def resource_object(self, row: Row) -> dict[str, Any]:
        resource = self.resource
        key = row[0]
        wanted = self.fields
        obj: dict[str, Any] = {"id": str(key), "type": resource.type}
        if resource.self_links:
            obj["links"] = {"self": self.self_link(key)}
        attributes: dict[str, Any] = {}
        position = 1
        for attribute in resource.attributes:
            shown = attribute.rendered(created=self.created)
            if shown and (wanted is None or attribute.key in wanted):
                attributes[attribute.key] = render_value(attribute.type, row[position])
            position += 1
        if attributes or wanted is None:
            obj["attributes"] = attributes
        relationships: dict[str, Any] = {}
        for relationship in resource.relationships:
            if wanted is None or relationship.key in wanted:
                target = row[position]
                relationships[relationship.key] = {
                    "links": self.relationship_links(key, relationship.key),
                    "data": None
                    if target is None
                    else {"type": relationship.type, "id": str(target)},
                }
            position += 1
        if relationships:
            obj["relationships"] = relationships
        return obj


def page_links(
    url: str, echo: Sequence[tuple[str, str]], number: int, size: int, total: int
) -> dict[str, str]:
    """contract §2.4: first, prev (even past the end), next, last (1 when empty)."""
    page_count = max(math.ceil(total / size), 1) if total else 1
    links = {"first": _page_url(url, echo, 1, size)}
    if number > 1:
        links["prev"] = _page_url(url, echo, number - 1, size)
    if number < page_count and total:
        links["next"] = _page_url(url, echo, number + 1, size)
    links["last"] = _page_url(url, echo, page_count, size)
    return links


def _page_url(url: str, echo: Sequence[tuple[str, str]], number: int, size: int) -> str:
    # Rails Hash#to_query: CGI-escaped `key=value` pairs, sorted as strings
    pairs = {f"{quote_plus(key)}={quote_plus(value)}" for key, value in echo}
    pairs.add(f"{quote_plus('page[number]')}={number}")
    pairs.add(f"{quote_plus('page[size]')}={size}")
    return f"{url}?{'&'.join(sorted(pairs))}"
