"""Rendering: values (contract §0.2), resource objects and documents in the contract's key
order (§0.3), pagination links (§2.4) and error documents (§0.4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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


# how a stored value of each type is written, when it is not null (§0.2); others as they are
_WRITERS: dict[ValueType, Callable[[Any], Any]] = {
    ValueType.DECIMAL: format_decimal,
    ValueType.TIMESTAMP: format_timestamp,
    ValueType.UUID: str,
    ValueType.INT_ARRAY: list,
}


def render_value(value_type: ValueType, value: Any) -> Any:
    if value is None:
        return None
    write = _WRITERS.get(value_type)
    return value if write is None else write(value)


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


@dataclass(frozen=True)
class _Plan:
    """What one kind of answer renders of a resource's row, by position: (position, key, how
    to write the value) for each attribute shown, (position, key, type) for each
    relationship. Made once per resource, answer kind and fieldset (issue 10: the
    declaration was read again for every attribute of every row)."""

    attributes: tuple[tuple[int, str, Callable[[Any], Any] | None], ...]
    relationships: tuple[tuple[int, str, str], ...]


# (resource id, created, fieldset) -> (the resource, its plan); holding the resource keeps its
# id from being reused
_PLANS: dict[tuple[int, bool, frozenset[str] | None], tuple[Resource, _Plan]] = {}


def _plan(resource: Resource, created: bool, wanted: frozenset[str] | None) -> _Plan:
    known = _PLANS.get((id(resource), created, wanted))
    if known is not None:
        return known[1]
    attributes = []
    position = 1
    for attribute in resource.attributes:
        if attribute.rendered(created=created) and (wanted is None or attribute.key in wanted):
            attributes.append((position, attribute.key, _WRITERS.get(attribute.type)))
        position += 1
    relationships = []
    for relationship in resource.relationships:
        if wanted is None or relationship.key in wanted:
            relationships.append((position, relationship.key, relationship.type))
        position += 1
    plan = _Plan(tuple(attributes), tuple(relationships))
    _PLANS[id(resource), created, wanted] = (resource, plan)
    return plan


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
        self.plan = _plan(resource, created, self.fields)
        self.links_base = f"{base_url}{API_PREFIX}/{resource.links_path}/"

    def self_link(self, key: object) -> str:
        return f"{self.links_base}{key}"

    def relationship_links(self, key: object, relationship_key: str) -> dict[str, str]:
        own = self.self_link(key)
        return {
            "self": f"{own}/relationships/{relationship_key}",
            "related": f"{own}/{relationship_key}",
        }

    def resource_object(self, row: Row) -> dict[str, Any]:
        key = row[0]
        obj: dict[str, Any] = {"id": str(key), "type": self.resource.type}
        if self.resource.self_links:
            obj["links"] = {"self": self.self_link(key)}
        attributes: dict[str, Any] = {}
        for position, name, write in self.plan.attributes:
            value = row[position]
            attributes[name] = value if value is None or write is None else write(value)
        if attributes or self.fields is None:
            obj["attributes"] = attributes
        if self.plan.relationships:
            relationships: dict[str, Any] = {}
            for position, name, target_type in self.plan.relationships:
                target = row[position]
                relationships[name] = {
                    "links": self.relationship_links(key, name),
                    "data": None if target is None else {"type": target_type, "id": str(target)},
                }
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
