"""Resource declarations: what a resource is (attributes, relationships, filters, sorting,
links), as data. Routing, parsing, SQL building and rendering all read these; nothing
repeats them.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from accounts_api.db.pool import Connection

if TYPE_CHECKING:
    from accounts_api.jsonapi.body import WritePayload
    from accounts_api.jsonapi.document import Row


def dasherize(name: str) -> str:
    return name.replace("_", "-")


def underscore(name: str) -> str:
    """ActiveSupport's String#underscore, which unformats incoming filter and sort names
    (contract §0.2): `maxCallDuration` -> `max_call_duration`, `name-cont` -> `name_cont`."""
    name = _ACRONYM_BOUNDARY.sub(r"\1_\2", name)
    name = _WORD_BOUNDARY.sub(r"\1_\2", name)
    return name.replace("-", "_").lower()


_ACRONYM_BOUNDARY = re.compile(r"([A-Z\d]+)([A-Z][a-z])")
_WORD_BOUNDARY = re.compile(r"([a-z\d])([A-Z])")


class ValueType(enum.Enum):
    STRING = "string"
    DECIMAL = "decimal"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    INT_ARRAY = "int_array"
    UUID = "uuid"
    TIMESTAMP = "timestamp"


class FilterFamily(enum.Enum):
    """Ransack-style predicate families (contract §2.5)."""

    STRING = "string"
    NUMBER = "number"
    UUID = "uuid"
    FOREIGN_KEY = "foreign_key"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    ENUM = "enum"

    @property
    def predicates(self) -> tuple[str, ...]:
        return _PREDICATES[self]


_ORDERED = ("eq", "not_eq", "gt", "gteq", "lt", "lteq", "in", "not_in")
_SET = ("eq", "not_eq", "in", "not_in")
_PREDICATES = {
    FilterFamily.STRING: ("eq", "not_eq", "cont", "start", "end", "in", "not_in", "cont_any"),
    FilterFamily.NUMBER: _ORDERED,
    FilterFamily.UUID: _SET,
    FilterFamily.FOREIGN_KEY: _SET,
    FilterFamily.BOOLEAN: ("eq", "not_eq"),
    FilterFamily.DATETIME: _ORDERED,
    FilterFamily.ENUM: _SET,
}


class Shown(enum.Enum):
    """Which answers render an attribute's stored value."""

    ALWAYS = "always"
    # write-only: taken by writes, never read back (an SMTP password)
    NEVER = "never"
    # once, in the answer to the create that stored it (a generated signing secret)
    ON_CREATE = "on_create"


@dataclass(frozen=True)
class Attribute:
    """One attribute. `name` is the underscored contract name; `sql` its select expression."""

    name: str
    type: ValueType
    sql: str
    creatable: bool = True
    updatable: bool = True
    sortable: bool = True
    filter: FilterFamily | None = None
    # ENUM filters: wire value -> stored value.
    enum_values: Mapping[str, object] | None = None
    shown: Shown = Shown.ALWAYS
    # What a schema says of the value (the OpenAPI document). They describe the rules the
    # resource's validation applies; they do not drive it.
    description: str = ""
    # a create must carry it
    required: bool = False
    # may be null, in answers and in writes
    nullable: bool = True
    max_length: int | None = None
    minimum: Decimal | int | None = None
    # the value must be greater than `minimum`, not equal to it
    exclusive_minimum: bool = False
    maximum: Decimal | int | None = None
    # the values a write may give (invoice periods; enum filters take `enum_values`' keys)
    choices: tuple[object, ...] | None = None
    # what a create that leaves it out stores (a resource's create applies it; the schema says it)
    default: object = None
    # `sql` reads a table the resource's `base_from_sql` lacks: a list filtered or sorted by it
    # joins before it pages
    joined: bool = False
    # no two records share a value (a unique column that is never null): a list sorted by it
    # has no ties, so no id is added to its ORDER BY (an index of the column alone serves it)
    unique: bool = False

    def __post_init__(self) -> None:
        if self.filter is not None and not self.readable:
            # a filter answers questions about the value (`auth_password_start=a`)
            raise ValueError(f"{self.name} is not always shown, so it cannot be filtered")
        if self.unique and self.nullable:
            raise ValueError(f"{self.name} may be null: its nulls are ties")

    @property
    def key(self) -> str:
        return dasherize(self.name)

    @property
    def readable(self) -> bool:
        """Rendered in every answer: only such an attribute may be sorted or filtered on."""
        return self.shown is Shown.ALWAYS

    def rendered(self, *, created: bool = False) -> bool:
        """Is the stored value selected and rendered in this answer? (`created`: the answer to
        the create that stored it)."""
        return self.readable or (created and self.shown is Shown.ON_CREATE)


def read_only(
    name: str,
    value_type: ValueType,
    sql: str,
    *,
    sortable: bool = False,
    filter: FilterFamily | None = None,
    enum_values: Mapping[str, object] | None = None,
    description: str = "",
    nullable: bool = True,
) -> Attribute:
    """An attribute no write sets (logs: ledger entries, deliveries)."""
    return Attribute(
        name,
        value_type,
        sql,
        creatable=False,
        updatable=False,
        sortable=sortable,
        filter=filter,
        enum_values=enum_values,
        description=description,
        nullable=nullable,
    )


@dataclass(frozen=True)
class Relationship:
    """A to-one relationship: linkage `type`, the foreign key's select expression `fk_sql`."""

    name: str
    type: str
    fk_sql: str
    creatable: bool = True
    updatable: bool = True
    # contract §2.12: invoice-template linkage may also be spelled invoice_templates
    extra_types: tuple[str, ...] = ()
    # `filter[<name>.id]` (contract §2.5, relationship filters)
    filterable: bool = False
    # the related resource's `type` in the registry, for include and related endpoints
    resource_type: str | None = None
    # GET /<resource>/{id}/<relationship> serves the related resource
    related_route: bool = True
    # said in the 403 to a write of a relationship that cannot change
    immutable_hint: str | None = None
    # for the OpenAPI document: a create must link it; one line on what it is
    required: bool = False
    description: str = ""

    @property
    def key(self) -> str:
        return dasherize(self.name)

    def accepts(self, linkage_type: str) -> bool:
        return linkage_type == self.type or linkage_type in self.extra_types


@dataclass(frozen=True)
class Context:
    """Who writes, for the audit log (contract §4.3)."""

    admin_id: int
    ip: str | None


CreateHook = Callable[[Connection, Context, "WritePayload"], Awaitable[object]]
# an update may return the record's row as `endpoints.select_sql` reads it after the write,
# sparing the engine that read; None: the engine reads it
UpdateHook = Callable[[Connection, Context, object, "WritePayload"], Awaitable["Row | None"]]
DeleteHook = Callable[[Connection, Context, object], Awaitable[None]]
ActionHook = Callable[[Connection, Context, object], Awaitable[None]]
# The record a write will lock, from the URL key (None on a collection) and the decoded
# body ({} when it is not a JSON object): writes naming the same record take turns in the
# worker before they take a connection (write_queue.py). None: no turn to take.
WriteQueueKey = Callable[[str | None, Mapping[str, object]], str | None]


@dataclass(frozen=True)
class Writer:
    create: CreateHook | None = None
    update: UpdateHook | None = None
    delete: DeleteHook | None = None
    # `create` raises its refusals (JsonApiError) only before its first statement that changes
    # anything (reads and row locks may come first): in a batch it needs no savepoint of its
    # own (group_commit.py). A promise read from the code: a refusal after a change would
    # commit the change.
    create_refuses_before_writing: bool = False


@dataclass(frozen=True)
class Resource:
    type: str
    # the URL segment under /api/rest/admin/
    path: str
    # FROM clause; attributes' `sql` refer to its aliases
    from_sql: str
    id_sql: str
    attributes: tuple[Attribute, ...]
    relationships: tuple[Relationship, ...] = ()
    # plain exact-match filters (contract §2.5 kind 1): name -> SQL expression
    plain_filters: Mapping[str, str] = field(default_factory=dict)
    # ransack filters on columns that are not attributes (accounts `currency_id_*`)
    filter_only: tuple[Attribute, ...] = ()
    # a scope every query gets (contacts without a contractor are invisible, contract §5.2)
    scope_sql: str | None = None
    # integer ids (most) or string ids (timezones)
    integer_keys: bool = True
    # the largest key the id column can hold; larger URL ids are simply not found
    key_max: int = 2**31 - 1
    paginated: bool = True
    self_links: bool = True
    # contract §5.4: links are built from the type, not the route (invoice-templates)
    link_path: str | None = None
    # is `id` sortable (payments: no, contract §5.6)
    id_sortable: bool = True
    writer: Writer = field(default_factory=Writer)
    # contract §5.5: timezones' total-count ignores filters
    count_ignores_filters: bool = False
    # when `from_sql` joins tables to one (`accounts a LEFT JOIN ... s`): that one alone
    # (`accounts a`), with exactly the rows of `from_sql`. A list picks its page's ids from it
    # and joins the rest for those rows only, unless a filter or sort reads a `joined`
    # attribute. Plain and relationship filters, extra sorts and `scope_sql` must read it alone.
    base_from_sql: str | None = None
    # a statement giving the list's total without a filter, as `count(*)` over `from_sql` and
    # `scope_sql` would, without reading the rows (accounts: a counter kept by triggers)
    unfiltered_count_sql: str | None = None
    # contract §5.5: sort is validated but not applied
    sort_ignored: bool = False
    # sort fields that are not attributes (transactions `account-id`): name -> SQL
    extra_sorts: Mapping[str, str] = field(default_factory=dict)
    # POST /<path>/{id}/<name>: an operation on one record, answered with the record
    actions: Mapping[str, ActionHook] = field(default_factory=dict)
    # GET /<parent path>/{id}/<path>: this collection scoped to one parent record
    nested_under: tuple[str, str] | None = None
    # single-record responses carry a strong ETag; writes honour If-Match
    versioned: bool = False
    # how a read locks the row (a LEFT JOIN needs `FOR UPDATE OF <alias>`)
    row_lock: str = "FOR UPDATE"
    # which record a write to this resource locks, for the worker's write queues
    write_queue: WriteQueueKey | None = None
    # one line on what the resource is, for the OpenAPI document
    description: str = ""

    @property
    def links_path(self) -> str:
        return self.link_path or self.type

    def attribute(self, key: str) -> Attribute | None:
        for attribute in self.attributes:
            if attribute.key == key:
                return attribute
        return None

    def relationship(self, key: str) -> Relationship | None:
        for relationship in self.relationships:
            if relationship.key == key:
                return relationship
        return None

    @property
    def field_keys(self) -> frozenset[str]:
        attributes = {a.key for a in self.attributes if a.shown is not Shown.NEVER}
        keys = {"id"} | attributes | {r.key for r in self.relationships}
        return frozenset(keys)

    @property
    def joined_sql(self) -> frozenset[str]:
        """The select expressions of `joined` attributes."""
        return frozenset(a.sql for a in (*self.attributes, *self.filter_only) if a.joined)

    @functools.cached_property
    def tieless_sql(self) -> frozenset[str]:
        """Sort expressions that order the records totally: the id's and unique attributes'."""
        return frozenset([self.id_sql, *(a.sql for a in self.attributes if a.unique)])

    def sort_sql(self, name: str) -> str | None:
        """ORDER BY expression for an underscored sort field, None when not sortable."""
        if name == "id":
            return self.id_sql if self.id_sortable else None
        if name in self.extra_sorts:
            return self.extra_sorts[name]
        for attribute in self.attributes:
            if attribute.name == name and attribute.sortable and attribute.readable:
                return attribute.sql
        return None
