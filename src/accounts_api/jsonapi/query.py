"""Query-string parsing: fields, include, filter, sort and page (contract §0.5, §2.4-§2.8).

Parameters arrive Rails-style (`filter[name_eq]=x`, `page[size]=10`). Errors follow the
parser's order: `fields` and `sort` raise at once (hiding what was collected before),
`include`, filter names and `page` are collected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from accounts_api.jsonapi.declaration import Resource, underscore
from accounts_api.jsonapi.errors import (
    BadRequest,
    ErrorList,
    InvalidField,
    InvalidFieldFormat,
    InvalidFiltersSyntax,
    InvalidInclude,
    InvalidPageValue,
    InvalidResource,
    InvalidSortCriteria,
    JsonApiError,
)
from accounts_api.jsonapi.filters import MAX_VALUES, FilterCondition, csv_values, resolve_filter

DEFAULT_PAGE_SIZE = 50
MAXIMUM_PAGE_SIZE = 1000

_BRACKETED = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


@dataclass
class Param:
    """One top-level parameter: a scalar string, or a mapping of sub-keys (possibly lists)."""

    scalar: str | None = None
    members: dict[str, str | list[str]] = field(default_factory=dict)
    # (raw key, raw value) pairs as received, for echoing into pagination links
    pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_hash(self) -> bool:
        return self.scalar is None


def parse_params(query_string: str) -> dict[str, Param]:
    """Group `a[b]=c` pairs by their top-level name; the last scalar wins, as in Rails."""
    params: dict[str, Param] = {}
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The query string is not valid UTF-8.") from None
    for raw_key, value in pairs:
        match = _BRACKETED.match(raw_key)
        if match is None:
            continue
        name, brackets = match.group(1), match.group(2)
        param = params.setdefault(name, Param())
        param.pairs.append((raw_key, value))
        if not brackets:
            param.scalar = value
            param.members = {}
            continue
        parts = re.findall(r"\[([^\[\]]*)\]", brackets)
        member = parts[0]
        param.scalar = None
        if len(parts) > 1 and parts[1] == "":
            existing = param.members.get(member)
            values = existing if isinstance(existing, list) else []
            values.append(value)
            param.members[member] = values
        else:
            param.members[member] = value
    return params


def ruby_to_i(raw: str) -> int:
    """String#to_i: the leading integer, 0 when there is none ("2abc" -> 2, "abc" -> 0)."""
    match = re.match(r"\s*([+-]?[0-9]+(?:_[0-9]+)*)", raw)
    if not match:
        return 0
    digits = match.group(1).replace("_", "")
    # past 20 digits every page value is out of range alike (int() refuses 4,300 digits)
    if len(digits.lstrip("+-0")) > 20:
        return -(10**20) if digits.startswith("-") else 10**20
    return int(digits)


def _last_values(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What Rails' params hold: the last value of a repeated key, every value of `key[]`."""
    kept: dict[str, tuple[str, str]] = {}
    for index, (key, value) in enumerate(pairs):
        kept[f"{key}#{index}" if key.endswith("[]") else key] = (key, value)
    return list(kept.values())


@dataclass(frozen=True)
class SortField:
    sql: str
    descending: bool


@dataclass
class Query:
    fields: dict[str, frozenset[str]] = field(default_factory=dict)
    include: list[list[str]] = field(default_factory=list)
    filters: list[FilterCondition] = field(default_factory=list)
    sort: list[SortField] = field(default_factory=list)
    page_number: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    # pairs echoed into pagination links (fields, include, sort, filter as sent)
    echo: list[tuple[str, str]] = field(default_factory=list)


class QueryParser:
    """Parses one request's query for one resource; `registry` resolves types for fields/include,
    `max_filter_values` bounds the values of one filter (issue 6)."""

    def __init__(
        self,
        resource: Resource,
        registry: dict[str, Resource],
        *,
        max_filter_values: int = MAX_VALUES,
    ):
        self.resource = resource
        self.registry = registry
        self.max_filter_values = max_filter_values

    def parse(self, query_string: str, *, index: bool, write: bool = False) -> Query:
        """`index`: everything; show: fields, include and filter names (not applied);
        `write` (create, update): fields and include only (contract §0.5)."""
        params = parse_params(query_string)
        query = Query()
        collected: list[JsonApiError] = []
        self._fields(params.get("fields"), query)
        collected += self._include(params.get("include"), query)
        if not write:
            collected += self._filters(params.get("filter"), query, apply=index)
        if index:
            self._sort(params.get("sort"), query)
            if self.resource.paginated:
                collected += self._page(params.get("page"), query)
            for name in ("fields", "include", "filter", "sort"):
                if name in params:
                    query.echo.extend(_last_values(params[name].pairs))
        if collected:
            raise ErrorList(collected)
        return query

    def _fields(self, param: Param | None, query: Query) -> None:
        if param is None:
            return
        if not param.is_hash:
            raise InvalidFieldFormat()
        for type_name, raw in param.members.items():
            resource = self.registry.get(type_name)
            if resource is None:
                raise InvalidResource(type_name)
            values = raw if isinstance(raw, list) else raw.split(",")
            names = [value.strip() for value in values if value.strip()]
            if not names:
                raise InvalidField("nil", type_name)
            for name in names:
                if name not in resource.field_keys:
                    raise InvalidField(name, type_name)
            query.fields[type_name] = frozenset(names)

    def _include(self, param: Param | None, query: Query) -> list[JsonApiError]:
        if param is None:
            return []
        if param.is_hash:
            return [BadRequest("include must be a comma-separated list of relationship paths.")]
        if not param.scalar:
            return []
        paths = param.scalar.split(",")
        for path in paths:
            segments = path.split(".")
            resource = self.resource
            for segment in segments:
                relationship = resource.relationship(segment)
                if relationship is None or relationship.resource_type not in self.registry:
                    # the library stops at the first bad path and collects that one error
                    return [InvalidInclude(segment, resource.type)]
                resource = self.registry[relationship.resource_type]
            query.include.append(segments)
        return []

    def _filters(self, param: Param | None, query: Query, *, apply: bool) -> list[JsonApiError]:
        if param is None:
            return []
        if not param.is_hash:
            return [InvalidFiltersSyntax(param.scalar or "")]
        for raw_name, raw_value in param.members.items():
            try:
                condition = resolve_filter(
                    self.resource, raw_name, raw_value, max_values=self.max_filter_values
                )
            except JsonApiError as error:
                # contract §0.5: the first bad filter name is reported, the rest not parsed
                return [error]
            if apply and condition is not None:
                query.filters.append(condition)
        return []

    def _sort(self, param: Param | None, query: Query) -> None:
        if param is None:
            return
        raw = param.scalar if param.scalar is not None else ""
        for item in csv_values(raw):
            descending = item.startswith("-")
            name = underscore(item[1:] if descending else item)
            sql = self.resource.sort_sql(name)
            if sql is None:
                raise InvalidSortCriteria(name, self.resource.type)
            if not self.resource.sort_ignored:
                query.sort.append(SortField(sql, descending))

    def _page(self, param: Param | None, query: Query) -> list[JsonApiError]:
        if param is None:
            return []
        if not param.is_hash:
            number_raw: str | list[str] | None = param.scalar
            size_raw: str | list[str] | None = None
        else:
            number_raw = param.members.get("number")
            size_raw = param.members.get("size")
        if number_raw is not None:
            query.page_number = ruby_to_i(number_raw if isinstance(number_raw, str) else "")
        if size_raw is not None:
            query.page_size = ruby_to_i(size_raw if isinstance(size_raw, str) else "")
        # the paged paginator checks size, then number, and stops at the first problem
        size, number = query.page_size, query.page_number
        if size < 1:
            return [InvalidPageValue(f"{size} is not a valid value for size page parameter.")]
        if size > MAXIMUM_PAGE_SIZE:
            return [InvalidPageValue(f"size exceeds maximum page size of {MAXIMUM_PAGE_SIZE}.")]
        if number < 1:
            return [InvalidPageValue(f"{number} is not a valid value for number page parameter.")]
        return []
