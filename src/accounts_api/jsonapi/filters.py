"""Filters -> SQL (contract §2.5).

Three kinds: plain exact-match filters (`filter[name]=a,b`), relationship filters
(`filter[contractor.id]=5`) and ransack-style `<attr>_<predicate>` filters. Column
expressions come only from declarations; values are always bind parameters.

Where Yeti silently ignores a bad value (a non-numeric number, an unknown boolean) we
answer 107 instead: a filter that is dropped returns rows the client did not ask for. So is a
number no column holds, and a list longer than the server takes (issue 6: 5,000 `cont_any`
patterns kept PostgreSQL busy for two minutes).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from accounts_api import numerals
from accounts_api.jsonapi.body import integer_key
from accounts_api.jsonapi.declaration import Attribute, FilterFamily, Resource, underscore
from accounts_api.jsonapi.errors import (
    FilterNotAllowed,
    InvalidFieldValue,
    InvalidFilterValue,
    TooManyFilterValues,
)

MULTI_VALUE = frozenset({"in", "not_in", "cont_any"})
# values one filter takes by default; the application passes its own (QueryParser)
MAX_VALUES = 100
# ISO 8601 with microseconds and a zone is 32 characters; nothing longer is a timestamp
MAX_DATETIME_LENGTH = 64

_COMPARISON = {"eq": "=", "not_eq": "<>", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<="}
_BOOLEANS = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}


class BadValue(Exception):
    pass


@dataclass
class FilterCondition:
    """A resolved filter: its underscored name, its raw values and how to turn them into SQL."""

    name: str
    values: list[str]
    build: Callable[[FilterCondition, list[object]], str | None]
    max_values: int = MAX_VALUES
    # it reads a `joined` attribute (declaration.py): the list joins before it pages
    joined: bool = False

    def verify(self) -> None:
        """Value checks run after all parameters parsed cleanly (contract §0.5, step 7)."""
        self.sql([])

    def sql(self, args: list[object]) -> str | None:
        if len(self.values) > self.max_values:
            raise TooManyFilterValues(self.name, self.max_values)
        return self.build(self, args)


def resolve_filter(
    resource: Resource, raw_name: str, raw_value: str | list[str], *, max_values: int = MAX_VALUES
) -> FilterCondition:
    name = underscore(raw_name)
    values = _values(raw_value)
    if any("\x00" in value for value in values):
        return FilterCondition(name, values, _reject, max_values)
    table = _filter_table(resource)
    entry = table.get(name)
    if entry is None:
        # contract §2.5: `contractor.name` reports `name is not allowed.`
        raise FilterNotAllowed(name.rsplit(".", 1)[-1])
    builder, joined = entry
    return FilterCondition(name, values, builder, max_values, joined)


def accepted_names(resource: Resource) -> frozenset[str]:
    """Every underscored filter name the resource takes: what `resolve_filter` looks up."""
    return frozenset(_filter_table(resource))


def csv_values(raw: str) -> list[str]:
    """One CSV line, as Ruby's CSV.parse_line: `a,b` -> [a, b]; `"a,b"` -> [a,b]; `` -> []."""
    if raw == "":
        return []
    try:
        # the first record only, as Ruby: what follows an unquoted line break is not part of it
        return next(csv.reader(io.StringIO(raw)), [])
    except csv.Error:
        return [raw]


def _values(raw: str | list[str]) -> list[str]:
    return list(raw) if isinstance(raw, list) else csv_values(raw)


def _reject(condition: FilterCondition, args: list[object]) -> str | None:
    raise InvalidFilterValue(condition.values, condition.name)


Builder = Callable[[FilterCondition, list[object]], str | None]
# a filter name -> its builder, and whether it reads a joined attribute
Table = dict[str, tuple[Builder, bool]]
_TABLES: dict[int, tuple[Resource, Table]] = {}


def _filter_table(resource: Resource) -> Table:
    # keyed by identity; the cached declaration is kept alive with its table, so its id
    # cannot be reused by another object
    cached = _TABLES.get(id(resource))
    if cached is None or cached[0] is not resource:
        cached = (resource, _build_table(resource))
        _TABLES[id(resource)] = cached
    return cached[1]


def _build_table(resource: Resource) -> Table:
    key_cast = "::bigint" if resource.integer_keys else "::text"
    table: Table = {"id": (_plain(resource.id_sql, _key_parser(resource), key_cast), False)}
    for name, sql in resource.plain_filters.items():
        table[name] = (_plain(sql, str, "::text"), False)
    for relationship in resource.relationships:
        if relationship.filterable:
            fk = _plain(relationship.fk_sql, _integer, "::bigint")
            table[f"{relationship.name}.id"] = (fk, False)
    for attribute in (*resource.attributes, *resource.filter_only):
        if attribute.filter is None:
            continue
        for predicate in attribute.filter.predicates:
            builder = _ransack(attribute, predicate)
            table[f"{attribute.name}_{predicate}"] = (builder, attribute.joined)
    return table


def _key_parser(resource: Resource) -> Callable[[str], object]:
    if not resource.integer_keys:
        return str

    def parse(value: str) -> object:
        try:
            key = integer_key(value)
        except InvalidFieldValue:
            raise BadValue(value) from None
        # a key no column can hold matches nothing
        return key if abs(key) < 2**63 else None

    return parse


def _plain(sql: str, parse: Callable[[str], object], cast: str) -> Builder:
    """contract §2.5 kind 1 and 2: `col IN (values)`, exact match."""

    def build(condition: FilterCondition, args: list[object]) -> str | None:
        parsed = []
        for value in condition.values:
            try:
                parsed.append(parse(value))
            except BadValue:
                raise InvalidFilterValue(condition.values, condition.name) from None
        values = [value for value in parsed if value is not None]
        if len(values) == 1:
            # one value is `=`, not `= ANY`: the planner then knows the column is constant and
            # an index on (column, x) gives the order of `sort=x` (contractor and balance)
            args.append(values[0])
            return f"{sql} = ${len(args)}{cast}"
        args.append(values)
        return f"{sql} = ANY(${len(args)}{cast}[])"

    return build


def _ransack(attribute: Attribute, predicate: str) -> Builder:
    family = attribute.filter
    assert family is not None
    parse = _parser(attribute)
    cast = _SQL_CAST[family]
    if family is FilterFamily.ENUM and all(
        isinstance(value, str) for value in (attribute.enum_values or {}).values()
    ):
        cast = "::text"
    # a key column is compared as it is (an integer of any width equals a bigint exactly), so
    # that its index serves the filter; other columns are cast to the family's type
    column_cast = "" if family is FilterFamily.FOREIGN_KEY else cast

    def build(condition: FilterCondition, args: list[object]) -> str | None:
        values = condition.values
        if predicate not in MULTI_VALUE and len(values) != 1:
            raise InvalidFilterValue(values, condition.name)
        try:
            parsed = [parse(value) for value in values]
        except BadValue:
            raise InvalidFilterValue(values, condition.name) from None
        column = attribute.sql
        if predicate in ("in", "not_in"):
            if not parsed:
                return None  # contract §2.5: an empty list adds no condition
            args.append(parsed)
            operator = "= ANY" if predicate == "in" else "<> ALL"
            return f"{column}{column_cast} {operator}(${len(args)}{cast}[])"
        if predicate == "cont_any":
            if not parsed:
                return None
            args.append(["%" + _escape_like(str(value)) + "%" for value in parsed])
            return f"{column} ILIKE ANY(${len(args)}::text[])"
        value = parsed[0]
        if predicate in ("cont", "start", "end"):
            escaped = _escape_like(str(value))
            pattern = {"cont": f"%{escaped}%", "start": f"{escaped}%", "end": f"%{escaped}"}
            args.append(pattern[predicate])
            return f"{column} ILIKE ${len(args)}"
        args.append(value)
        return f"{column}{column_cast} {_COMPARISON[predicate]} ${len(args)}{cast}"

    return build


_SQL_CAST = {
    FilterFamily.STRING: "::text",
    FilterFamily.NUMBER: "::numeric",
    FilterFamily.UUID: "::uuid",
    FilterFamily.FOREIGN_KEY: "::bigint",
    FilterFamily.BOOLEAN: "::boolean",
    FilterFamily.DATETIME: "::timestamptz",
    FilterFamily.ENUM: "::integer",
}


def _escape_like(value: str) -> str:
    # contract §2.5: %, _ and \ match literally
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _parser(attribute: Attribute) -> Callable[[str], object]:
    family = attribute.filter
    if family is FilterFamily.ENUM:
        mapping = attribute.enum_values or {}

        def parse_enum(value: str) -> object:
            if value not in mapping:
                raise BadValue(value)
            return mapping[value]

        return parse_enum
    return _PARSERS[family]  # type: ignore[index]


def _decimal(value: str) -> Decimal:
    # a number PostgreSQL's numeric takes as a parameter (and far beyond any stored value),
    # decided on the text: 16,384 fractional digits made the query fail (500)
    try:
        return numerals.read_decimal(value)
    except ValueError:
        raise BadValue(value) from None


def _integer(value: str) -> int:
    # bigint, decided on the text: int() reads no more than 4,300 digits
    try:
        number = numerals.read_integer(value, digits=19)
    except ValueError:
        raise BadValue(value) from None
    if abs(number) >= 2**63:
        raise BadValue(value)
    return number


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise BadValue(value) from None


def _boolean(value: str) -> bool:
    try:
        return _BOOLEANS[value.strip().lower()]
    except KeyError:
        raise BadValue(value) from None


def _datetime(value: str) -> datetime:
    # Python reads any number of fractional digits and drops those past the microsecond
    if len(value) > MAX_DATETIME_LENGTH:
        raise BadValue(value)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadValue(value) from None
    # contract §2.5: values are read in the server zone, which is UTC here
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)  # the first and last hours of year 1 and 9999 overflow
    except OverflowError:
        raise BadValue(value) from None
    return moment


_PARSERS: dict[FilterFamily, Callable[[str], object]] = {
    FilterFamily.STRING: str,
    FilterFamily.NUMBER: _decimal,
    FilterFamily.UUID: _uuid,
    FilterFamily.FOREIGN_KEY: _integer,
    FilterFamily.BOOLEAN: _boolean,
    FilterFamily.DATETIME: _datetime,
}
