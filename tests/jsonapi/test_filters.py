"""Filters -> SQL (contract §2.5): every kind of filter, the SQL text and bind arguments of each
predicate, 107 for bad values and 102 for unknown names, with their exact details."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from accounts_api.jsonapi.declaration import Attribute, FilterFamily, Resource, ValueType
from accounts_api.jsonapi.errors import JsonApiError
from accounts_api.jsonapi.filters import FilterCondition, csv_values, resolve_filter
from accounts_api.resources.accounts import ACCOUNTS
from accounts_api.resources.contractors import CONTRACTORS

# Module level on purpose: filter tables are cached per declaration object.
EVENTS = Resource(
    type="events",
    path="events",
    from_sql="events e",
    id_sql="e.id",
    attributes=(
        Attribute("created_at", ValueType.TIMESTAMP, "e.created_at", filter=FilterFamily.DATETIME),
        Attribute(
            "status",
            ValueType.INTEGER,
            "e.status_id",
            filter=FilterFamily.ENUM,
            enum_values={"pending": 10, "completed": 20},
        ),
    ),
)

NUMBER_ATTRIBUTES = (
    "balance vat min_balance max_balance balance_low_threshold balance_high_threshold "
    "destination_rate_limit max_call_duration external_id origination_capacity "
    "termination_capacity total_capacity"
).split()
# contract §2.5: the full list of filter keys allowed on accounts
ACCOUNT_FILTERS = (
    ["id", "name", "contractor.id", "invoice_template.id"]
    + [f"name_{p}" for p in "eq not_eq cont start end in not_in cont_any".split()]
    + [f"{a}_{p}" for a in NUMBER_ATTRIBUTES for p in "eq not_eq gt gteq lt lteq in not_in".split()]
    + [f"uuid_{p}" for p in "eq not_eq in not_in".split()]
    + [f"currency_id_{p}" for p in "eq not_eq in not_in".split()]
)


def sql(
    resource: Resource, name: str, value: str | list[str], args: list[object] | None = None
) -> tuple[str | None, list[object]]:
    args = [] if args is None else args
    return resolve_filter(resource, name, value).sql(args), args


def filter_error(resource: Resource, name: str, value: str | list[str]) -> dict[str, object]:
    condition = resolve_filter(resource, name, value)
    with pytest.raises(JsonApiError) as caught:
        condition.sql([])
    return caught.value.as_dict()


def invalid_value(detail: str) -> dict[str, object]:
    return {"title": "Invalid filter value", "detail": detail, "code": "107", "status": "400"}


# csv_values: Ruby's CSV.parse_line


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a", ["a"]),
        ("a,b", ["a", "b"]),
        ('"a,b"', ["a,b"]),
        ('a,"b,c"', ["a", "b,c"]),
        ('"a""b"', ['a"b']),
        ("", []),
        (" a , b ", [" a ", " b "]),
        ('"a\nb"', ["a\nb"]),
        # one line: what follows a line break is not part of it
        ("a\nb", ["a"]),
        ("a\r\nb,c", ["a"]),
    ],
)
def test_csv_values(raw: str, expected: list[str]) -> None:
    assert csv_values(raw) == expected


# names


@pytest.mark.parametrize("name", ACCOUNT_FILTERS)
def test_every_contract_filter_is_allowed(name: str) -> None:
    assert resolve_filter(ACCOUNTS, name, "1").name == name


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Name-Cont", "name_cont"),
        ("min-balance_gt", "min_balance_gt"),
        ("MIN_BALANCE_GT", "min_balance_gt"),
        ("invoice-template.id", "invoice_template.id"),
    ],
)
def test_names_are_underscored(raw: str, name: str) -> None:
    assert resolve_filter(ACCOUNTS, raw, "1").name == name


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("foo", "foo is not allowed."),
        ("balance_cont", "balance_cont is not allowed."),
        ("name_gt", "name_gt is not allowed."),
        ("uuid_gt", "uuid_gt is not allowed."),
        ("currency_id_gt", "currency_id_gt is not allowed."),
        ("currency_eq", "currency_eq is not allowed."),
        ("timezone_eq", "timezone_eq is not allowed."),
        ("invoice_period_id_eq", "invoice_period_id_eq is not allowed."),
        ("send_invoices_to_eq", "send_invoices_to_eq is not allowed."),
        ("name_contains", "name_contains is not allowed."),
        ("Min-Balance_Foo", "min_balance_foo is not allowed."),
        ("contractor.name", "name is not allowed."),
        ("currency.id", "id is not allowed."),
        ("invoice_template.name", "name is not allowed."),
    ],
)
def test_unknown_filter_102(raw: str, detail: str) -> None:
    with pytest.raises(JsonApiError) as caught:
        resolve_filter(ACCOUNTS, raw, "1")
    assert caught.value.as_dict() == {
        "title": "Filter not allowed",
        "detail": detail,
        "code": "102",
        "status": "400",
    }


# SQL per kind and predicate


@pytest.mark.parametrize(
    ("resource", "name", "value", "expected_sql", "expected_arg"),
    [
        # plain and relationship filters: exact IN; one value is `=` (an index on (column, x)
        # then orders by x)
        (ACCOUNTS, "id", "1,2", "a.id = ANY($1::bigint[])", [1, 2]),
        (ACCOUNTS, "id", "99999999999999999999", "a.id = ANY($1::bigint[])", []),
        (ACCOUNTS, "id", "1,99999999999999999999", "a.id = $1::bigint", 1),
        (ACCOUNTS, "name", "acme,b c", "a.name = ANY($1::text[])", ["acme", "b c"]),
        (ACCOUNTS, "name", "", "a.name = ANY($1::text[])", []),
        (ACCOUNTS, "contractor.id", "5", "a.contractor_id = $1::bigint", 5),
        (ACCOUNTS, "contractor.id", "5,6", "a.contractor_id = ANY($1::bigint[])", [5, 6]),
        (
            ACCOUNTS,
            "invoice_template.id",
            "3,4",
            "a.invoice_template_id = ANY($1::bigint[])",
            [3, 4],
        ),
        # string
        (ACCOUNTS, "name_eq", "acme", "a.name::text = $1::text", "acme"),
        (ACCOUNTS, "name_eq", '"a,b"', "a.name::text = $1::text", "a,b"),
        (ACCOUNTS, "name_not_eq", "acme", "a.name::text <> $1::text", "acme"),
        (ACCOUNTS, "name_cont", "Acme", "a.name ILIKE $1", "%Acme%"),
        (ACCOUNTS, "name_cont", "50%_a\\b", "a.name ILIKE $1", "%50\\%\\_a\\\\b%"),
        (ACCOUNTS, "name_start", "a_b", "a.name ILIKE $1", "a\\_b%"),
        (ACCOUNTS, "name_end", "a%", "a.name ILIKE $1", "%a\\%"),
        (ACCOUNTS, "name_in", "a,b", "a.name::text = ANY($1::text[])", ["a", "b"]),
        (ACCOUNTS, "name_not_in", "a", "a.name::text <> ALL($1::text[])", ["a"]),
        (ACCOUNTS, "name_cont_any", "a,b_", "a.name ILIKE ANY($1::text[])", ["%a%", "%b\\_%"]),
        # number
        (ACCOUNTS, "balance_eq", "1.50", "a.balance::numeric = $1::numeric", Decimal("1.50")),
        (ACCOUNTS, "balance_not_eq", "0", "a.balance::numeric <> $1::numeric", Decimal(0)),
        (ACCOUNTS, "vat_gt", " 5 ", "a.vat::numeric > $1::numeric", Decimal(5)),
        (ACCOUNTS, "vat_gteq", "-1e2", "a.vat::numeric >= $1::numeric", Decimal(-100)),
        (
            ACCOUNTS,
            "balance_low_threshold_lt",
            "90",
            "s.low_threshold::numeric < $1::numeric",
            Decimal(90),
        ),
        (
            ACCOUNTS,
            "max_call_duration_lteq",
            "60",
            "a.max_call_duration::numeric <= $1::numeric",
            Decimal(60),
        ),
        (
            ACCOUNTS,
            "external_id_in",
            "1,2",
            "a.external_id::numeric = ANY($1::numeric[])",
            [Decimal(1), Decimal(2)],
        ),
        (
            ACCOUNTS,
            "total_capacity_not_in",
            "7",
            "a.total_capacity::numeric <> ALL($1::numeric[])",
            [Decimal(7)],
        ),
        # uuid
        (
            ACCOUNTS,
            "uuid_eq",
            "29161666-c29c-11e8-a11d-a088b4454590",
            "a.uuid::uuid = $1::uuid",
            uuid.UUID("29161666-c29c-11e8-a11d-a088b4454590"),
        ),
        (
            ACCOUNTS,
            "uuid_not_in",
            "29161666-c29c-11e8-a11d-a088b4454590",
            "a.uuid::uuid <> ALL($1::uuid[])",
            [uuid.UUID("29161666-c29c-11e8-a11d-a088b4454590")],
        ),
        # foreign key: the column as it is, so that its index serves
        (ACCOUNTS, "currency_id_eq", "0", "a.currency_id = $1::bigint", 0),
        (ACCOUNTS, "currency_id_not_eq", "2", "a.currency_id <> $1::bigint", 2),
        (ACCOUNTS, "currency_id_in", "1,2", "a.currency_id = ANY($1::bigint[])", [1, 2]),
        # boolean
        (CONTRACTORS, "enabled_eq", "true", "c.enabled::boolean = $1::boolean", True),
        (CONTRACTORS, "enabled_eq", "T", "c.enabled::boolean = $1::boolean", True),
        (CONTRACTORS, "vendor_eq", "1", "c.vendor::boolean = $1::boolean", True),
        (CONTRACTORS, "customer_not_eq", "false", "c.customer::boolean <> $1::boolean", False),
        (CONTRACTORS, "customer_eq", "f", "c.customer::boolean = $1::boolean", False),
        (CONTRACTORS, "customer_eq", "0", "c.customer::boolean = $1::boolean", False),
        # datetime: a value without a zone is UTC
        (
            EVENTS,
            "created_at_gteq",
            "2024-01-31T12:00:00",
            "e.created_at::timestamptz >= $1::timestamptz",
            datetime(2024, 1, 31, 12, tzinfo=UTC),
        ),
        (
            EVENTS,
            "created_at_lt",
            "2024-01-31T12:00:00+02:00",
            "e.created_at::timestamptz < $1::timestamptz",
            datetime(2024, 1, 31, 12, tzinfo=timezone(timedelta(hours=2))),
        ),
        # enum: the wire value becomes the stored one
        (EVENTS, "status_eq", "completed", "e.status_id::integer = $1::integer", 20),
        (
            EVENTS,
            "status_in",
            "pending,completed",
            "e.status_id::integer = ANY($1::integer[])",
            [10, 20],
        ),
    ],
)
def test_sql(
    resource: Resource, name: str, value: str, expected_sql: str, expected_arg: object
) -> None:
    assert sql(resource, name, value) == (expected_sql, [expected_arg])


def test_sql_numbers_placeholders_after_existing_args() -> None:
    args: list[object] = ["earlier"]
    assert sql(ACCOUNTS, "name_eq", "x", args) == ("a.name::text = $2::text", ["earlier", "x"])
    assert sql(ACCOUNTS, "vat_in", "1", args) == (
        "a.vat::numeric = ANY($3::numeric[])",
        ["earlier", "x", [Decimal(1)]],
    )


def test_array_syntax_gives_separate_values() -> None:
    assert sql(ACCOUNTS, "name_in", ["a", "b,c"]) == (
        "a.name::text = ANY($1::text[])",
        [["a", "b,c"]],
    )


@pytest.mark.parametrize(
    "name", ["name_in", "name_not_in", "name_cont_any", "vat_in", "uuid_not_in"]
)
def test_empty_list_adds_no_condition(name: str) -> None:
    assert sql(ACCOUNTS, name, "", ["kept"]) == (None, ["kept"])


# 107: wrong value counts and bad values, found when the SQL is built


@pytest.mark.parametrize(
    ("resource", "name", "value", "detail"),
    [
        (ACCOUNTS, "name_eq", "", " is not a valid value for name_eq."),
        (ACCOUNTS, "name_eq", "a,b", "a,b is not a valid value for name_eq."),
        (ACCOUNTS, "name-not-eq", "a,b,c", "a,b,c is not a valid value for name_not_eq."),
        (ACCOUNTS, "name_cont", "", " is not a valid value for name_cont."),
        (ACCOUNTS, "name_start", "a,b", "a,b is not a valid value for name_start."),
        (ACCOUNTS, "name_end", "a,b", "a,b is not a valid value for name_end."),
        (ACCOUNTS, "Balance_GT", "1,2", "1,2 is not a valid value for balance_gt."),
        (ACCOUNTS, "uuid_eq", "", " is not a valid value for uuid_eq."),
        (ACCOUNTS, "name_eq", ["a", "b"], "a,b is not a valid value for name_eq."),
        # bad values (deliberate deviation: Yeti casts or ignores them)
        (ACCOUNTS, "balance_gt", "abc", "abc is not a valid value for balance_gt."),
        (ACCOUNTS, "vat_eq", "NaN", "NaN is not a valid value for vat_eq."),
        (ACCOUNTS, "vat_eq", "Infinity", "Infinity is not a valid value for vat_eq."),
        (ACCOUNTS, "vat_in", "1,x", "1,x is not a valid value for vat_in."),
        (ACCOUNTS, "uuid_eq", "nope", "nope is not a valid value for uuid_eq."),
        (ACCOUNTS, "currency_id_eq", "1.5", "1.5 is not a valid value for currency_id_eq."),
        (
            ACCOUNTS,
            "currency_id_in",
            "1,99999999999999999999",
            "1,99999999999999999999 is not a valid value for currency_id_in.",
        ),
        (ACCOUNTS, "contractor.id", "x", "x is not a valid value for contractor.id."),
        (
            ACCOUNTS,
            "invoice-template.id",
            "1,a",
            "1,a is not a valid value for invoice_template.id.",
        ),
        (ACCOUNTS, "id", "abc", "abc is not a valid value for id."),
        (ACCOUNTS, "name_eq", "a\x00b", "a\x00b is not a valid value for name_eq."),
        (ACCOUNTS, "name", "a,\x00", "a,\x00 is not a valid value for name."),
        (CONTRACTORS, "enabled_eq", "yes", "yes is not a valid value for enabled_eq."),
        (EVENTS, "created_at_gt", "yesterday", "yesterday is not a valid value for created_at_gt."),
        (EVENTS, "status_eq", "lost", "lost is not a valid value for status_eq."),
        (EVENTS, "status_eq", "10", "10 is not a valid value for status_eq."),
    ],
)
def test_invalid_value_107(
    resource: Resource, name: str, value: str | list[str], detail: str
) -> None:
    assert filter_error(resource, name, value) == invalid_value(detail)


def test_verify_raises_what_sql_raises() -> None:
    condition = resolve_filter(ACCOUNTS, "name_eq", "a,b")
    assert isinstance(condition, FilterCondition)
    with pytest.raises(JsonApiError) as caught:
        condition.verify()
    assert caught.value.as_dict() == invalid_value("a,b is not a valid value for name_eq.")
    resolve_filter(ACCOUNTS, "name_eq", "a").verify()


# issue 6: numbers no column holds are 107 before any Decimal or int is made of them (a
# Decimal with 16,384 fractional digits was a 500: PostgreSQL's numeric refused the parameter)

HOSTILE_NUMBERS = {
    "exponent": "1e1000000",
    "tiny-exponent": "1e-1000000",
    "exponent-past-decimal": "1e99999999999999999999",
    "zero-with-exponent": "0e1000000",
    "fraction-16384-digits": "0." + "1" * 16_384,
    "fraction-1001-digits": "0." + "1" * 1_001,
    "integer-5000-digits": "1" * 5_000,
    "integer-100k-digits": "-" + "9" * 100_000,
    "all-at-once": "9" * 5_000 + "." + "9" * 5_000 + "e-1000000",
}
NUMERIC_FILTERS = [
    (ACCOUNTS, "balance_gt"),
    (ACCOUNTS, "max_call_duration_in"),
    (ACCOUNTS, "currency_id_eq"),
    (ACCOUNTS, "currency_id_not_in"),
    (ACCOUNTS, "contractor.id"),
    (EVENTS, "created_at_lt"),
]


@pytest.mark.parametrize("value", HOSTILE_NUMBERS.values(), ids=HOSTILE_NUMBERS.keys())
@pytest.mark.parametrize(("resource", "name"), NUMERIC_FILTERS)
def test_hostile_numbers_are_107(resource: Resource, name: str, value: str) -> None:
    assert filter_error(resource, name, value) == invalid_value(
        f"{value} is not a valid value for {name}."
    )


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01T00:00:00." + "1" * 16_384,
        "2024-01-01T00:00:00.000000000000000000000000000000000000000000000001Z",
    ],
    ids=["fraction-16384-digits", "longer-than-any-timestamp"],
)
def test_datetime_longer_than_any_timestamp_is_107(value: str) -> None:
    assert filter_error(EVENTS, "created_at_gt", value) == invalid_value(
        f"{value} is not a valid value for created_at_gt."
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1e999", Decimal("1E+999")),
        ("-0." + "9" * 1000, Decimal("-0." + "9" * 1000)),
        ("0.000", Decimal("0.000")),
    ],
)
def test_numbers_up_to_what_numeric_holds_are_compared(value: str, expected: Decimal) -> None:
    assert sql(ACCOUNTS, "balance_gt", value) == ("a.balance::numeric > $1::numeric", [expected])


# issue 6: a filter takes at most `max_values` values (100 by default); a list longer than
# that is 107 naming the filter, before any of its values is read


def too_many(name: str, limit: int) -> dict[str, object]:
    return invalid_value(f"Too many values for {name}: at most {limit}.")


LIST_FILTERS = [
    (ACCOUNTS, "name_in"),
    (ACCOUNTS, "name_not_in"),
    (ACCOUNTS, "name_cont_any"),
    (ACCOUNTS, "balance_in"),
    (ACCOUNTS, "currency_id_not_in"),
    (ACCOUNTS, "uuid_in"),
    (ACCOUNTS, "id"),
    (ACCOUNTS, "name"),
    (ACCOUNTS, "contractor.id"),
    (ACCOUNTS, "invoice_template.id"),
    (EVENTS, "status_in"),
]
VALID = {
    "name": "a",
    "balance": "1.5",
    "currency_id": "1",
    "uuid": "29161666-c29c-11e8-a11d-a088b4454590",
    "id": "1",
    "contractor.id": "1",
    "invoice_template.id": "1",
    "status": "pending",
}


def valid_value(name: str) -> str:
    return next(value for prefix, value in VALID.items() if name.startswith(prefix))


@pytest.mark.parametrize("array", [False, True], ids=["csv", "array"])
@pytest.mark.parametrize(("resource", "name"), LIST_FILTERS)
def test_a_list_filter_takes_up_to_the_limit(resource: Resource, name: str, array: bool) -> None:
    values = [valid_value(name)] * 100
    condition = resolve_filter(resource, name, values if array else ",".join(values))

    condition.verify()
    args: list[object] = []
    assert condition.sql(args) is not None
    [arg] = args
    assert isinstance(arg, list) and len(arg) == 100


@pytest.mark.parametrize("array", [False, True], ids=["csv", "array"])
@pytest.mark.parametrize(("resource", "name"), LIST_FILTERS)
def test_a_list_filter_past_the_limit_is_107(resource: Resource, name: str, array: bool) -> None:
    values = [valid_value(name)] * 101
    condition = resolve_filter(resource, name, values if array else ",".join(values))

    with pytest.raises(JsonApiError) as caught:
        condition.verify()
    assert caught.value.as_dict() == too_many(name, 100)


def test_the_limit_is_the_callers() -> None:
    resolve_filter(ACCOUNTS, "name_cont_any", "a,b,c", max_values=3).verify()

    for name, value in [("name_cont_any", "a,b,c,d"), ("id", ["1", "2", "3", "4"])]:
        with pytest.raises(JsonApiError) as caught:
            resolve_filter(ACCOUNTS, name, value, max_values=3).verify()
        assert caught.value.as_dict() == too_many(name, 3)


def test_the_limit_comes_before_the_values() -> None:
    # 5,000 values are not read one by one (nor echoed into the detail)
    values = ["x"] * 5_000

    assert filter_error(ACCOUNTS, "balance_in", values) == too_many("balance_in", 100)
    # a single-value predicate with too many values is told the same
    assert filter_error(ACCOUNTS, "name_eq", values) == too_many("name_eq", 100)
    # below the limit, the contract's detail for two values is kept (§2.5)
    assert filter_error(ACCOUNTS, "name_eq", "a,b") == invalid_value(
        "a,b is not a valid value for name_eq."
    )


def test_an_unknown_filter_is_102_however_many_values() -> None:
    with pytest.raises(JsonApiError) as caught:
        resolve_filter(ACCOUNTS, "nope_in", ["x"] * 5_000)
    assert caught.value.as_dict()["code"] == "102"
