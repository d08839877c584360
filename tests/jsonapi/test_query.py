"""Query-string parsing (contract §0.5, §2.4-§2.8): Rails-style nesting, Ruby's String#to_i,
and the parser's error order and accumulation, on the real Accounts declaration."""

from __future__ import annotations

import pytest

from accounts_api.jsonapi.document import page_links
from accounts_api.jsonapi.errors import BadRequest, ErrorList, JsonApiError, flatten
from accounts_api.jsonapi.query import Query, QueryParser, SortField, parse_params, ruby_to_i
from accounts_api.resources import REGISTRY
from accounts_api.resources.accounts import ACCOUNTS

URL = "http://api.example.com/api/rest/admin/accounts"


def parse(query_string: str, *, index: bool = True) -> Query:
    return QueryParser(ACCOUNTS, REGISTRY).parse(query_string, index=index)


def errors(query_string: str, *, index: bool = True) -> list[dict[str, object]]:
    with pytest.raises((JsonApiError, ErrorList)) as caught:
        parse(query_string, index=index)
    raised = caught.value
    assert isinstance(raised, JsonApiError | ErrorList)
    return [error.as_dict() for error in flatten(raised)]


def error(code: str, title: str, detail: str) -> dict[str, object]:
    return {"title": title, "detail": detail, "code": code, "status": "400"}


def invalid_field(detail: str) -> dict[str, object]:
    return error("104", "Invalid field", detail)


def invalid_include(detail: str) -> dict[str, object]:
    return error("112", "Invalid field", detail)


def filter_not_allowed(name: str) -> dict[str, object]:
    return error("102", "Filter not allowed", f"{name} is not allowed.")


def invalid_sort(detail: str) -> dict[str, object]:
    return error("114", "Invalid sort criteria", detail)


def invalid_page(detail: str) -> dict[str, object]:
    return error("118", "Invalid page value", detail)


# parse_params: Rails-style nesting


def test_parse_params_scalar_and_hash() -> None:
    params = parse_params("page=3&sort=-name&fields[accounts]=name&fields[contractors]=vendor")
    assert params["page"].scalar == "3"
    assert not params["page"].is_hash
    assert params["sort"].scalar == "-name"
    assert params["fields"].is_hash
    assert params["fields"].members == {"accounts": "name", "contractors": "vendor"}


def test_parse_params_last_value_wins() -> None:
    params = parse_params("sort=a&sort=b&filter[name_eq]=x&filter[name_eq]=y")
    assert params["sort"].scalar == "b"
    assert params["filter"].members == {"name_eq": "y"}


def test_parse_params_array_syntax_collects_values() -> None:
    params = parse_params("filter[name_in][]=a&filter[name_in][]=b&filter[id]=3")
    assert params["filter"].members == {"name_in": ["a", "b"], "id": "3"}


def test_parse_params_decodes_and_keeps_raw_pairs() -> None:
    params = parse_params("filter%5BName-Cont%5D=a+b%2Cc&include=")
    assert params["filter"].members == {"Name-Cont": "a b,c"}
    assert params["filter"].pairs == [("filter[Name-Cont]", "a b,c")]
    assert params["include"].scalar == ""


def test_parse_params_rejects_invalid_utf8() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_params("filter[name_eq]=%ff")
    assert caught.value.as_dict() == {
        "title": "Bad Request",
        "detail": "The query string is not valid UTF-8.",
        "code": "400",
        "status": "400",
    }


# ruby_to_i: String#to_i


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2", 2),
        ("2abc", 2),
        ("abc", 0),
        ("", 0),
        ("  12", 12),
        ("-3", -3),
        ("+5", 5),
        ("1_000", 1000),
        ("0x1A", 0),
        ("1e3", 1),
        ("1.9", 1),
        # Ruby: a leading underscore is not part of a number, a double one ends it
        ("_5", 0),
        ("1__2", 1),
        # Ruby reads ASCII digits only
        ("\u0663", 0),
    ],
)
def test_ruby_to_i(raw: str, expected: int) -> None:
    assert ruby_to_i(raw) == expected


# successful parsing


def test_defaults() -> None:
    query = parse("")
    assert (query.fields, query.include, query.filters, query.sort) == ({}, [], [], [])
    assert (query.page_number, query.page_size, query.echo) == (1, 50, [])


def test_fields_include_filter_sort_page() -> None:
    query = parse(
        "fields[accounts]=name,balance,contractor&fields[contractors]=name"
        "&include=contractor.smtp-connection,invoice-template"
        "&filter[Name-Cont]=acme&filter[min-balance_gt]=1"
        "&sort=-name,min-balance&page[number]=2&page[size]=10"
    )
    assert query.fields == {
        "accounts": frozenset({"name", "balance", "contractor"}),
        "contractors": frozenset({"name"}),
    }
    assert query.include == [["contractor", "smtp-connection"], ["invoice-template"]]
    assert [(c.name, c.values) for c in query.filters] == [
        ("name_cont", ["acme"]),
        ("min_balance_gt", ["1"]),
    ]
    assert query.sort == [SortField("a.name", True), SortField("a.min_balance", False)]
    assert (query.page_number, query.page_size) == (2, 10)


def test_sort_by_currency_sorts_by_its_name() -> None:
    assert parse("sort=currency").sort == [SortField("a.currency_name", False)]


def test_sort_value_is_one_csv_line() -> None:
    # contract §2.6: CSV.parse_line reads the first line only; never a crash
    assert parse("sort=-name%0Aid").sort == [SortField("a.name", True)]


@pytest.mark.parametrize(
    ("query_string", "number", "size"),
    [
        ("page=3", 3, 50),
        ("page[number]=2abc", 2, 50),
        ("page[size]=7", 1, 7),
        ("page[number]=4&page[size]=1000", 4, 1000),
        ("page[limit]=5&page[offset]=10", 1, 50),
    ],
)
def test_page(query_string: str, number: int, size: int) -> None:
    query = parse(query_string)
    assert (query.page_number, query.page_size) == (number, size)


def test_show_validates_filters_without_applying_and_skips_sort_and_page() -> None:
    query = parse("filter[name_eq]=x&sort=bogus&page[size]=0", index=False)
    assert query.filters == []
    assert query.sort == []
    assert errors("filter[bogus]=1", index=False) == [filter_not_allowed("bogus")]


# single errors


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        ("fields=name", error("119", "Invalid field format", "Fields must specify a type.")),
        (
            "fields[invoice_templates]=name",
            error("101", "Invalid resource", "invoice_templates is not a valid resource."),
        ),
        ("fields[accounts]=foo", invalid_field("foo is not a valid field for accounts.")),
        (
            "fields[accounts]=min_balance",
            invalid_field("min_balance is not a valid field for accounts."),
        ),
        ("fields[accounts]=", invalid_field("nil is not a valid field for accounts.")),
        (
            "include=invoice_template",
            invalid_include("invoice_template is not a valid relationship of accounts"),
        ),
        (
            "include=contractor,%20invoice-template",
            invalid_include(" invoice-template is not a valid relationship of accounts"),
        ),
        (
            "include=contractor.foo",
            invalid_include("foo is not a valid relationship of contractors"),
        ),
        (
            "filter=abc",
            error("120", "Invalid filters syntax", "abc is not a valid syntax for filtering."),
        ),
        ("filter[foo]=1", filter_not_allowed("foo")),
        ("filter[contractor.name]=x", filter_not_allowed("name")),
        ("filter[currency.id]=1", filter_not_allowed("id")),
        (
            "sort=-balance-low-threshold",
            invalid_sort("balance_low_threshold is not a valid sort criteria for accounts"),
        ),
        ("sort=contractor", invalid_sort("contractor is not a valid sort criteria for accounts")),
        ("page[number]=0", invalid_page("0 is not a valid value for number page parameter.")),
        ("page[number]=abc", invalid_page("0 is not a valid value for number page parameter.")),
        ("page=-2", invalid_page("-2 is not a valid value for number page parameter.")),
        ("page[size]=0", invalid_page("0 is not a valid value for size page parameter.")),
        ("page[size]=1001", invalid_page("size exceeds maximum page size of 1000.")),
    ],
)
def test_single_error(query_string: str, expected: dict[str, object]) -> None:
    assert errors(query_string) == [expected]


# contract §0.5: order and accumulation


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        # `fields` raises first: nothing else is reported
        (
            "fields[accounts]=foo&include=bar&filter[x]=1&sort=zzz&page[size]=0",
            [invalid_field("foo is not a valid field for accounts.")],
        ),
        # `sort` raises and replaces what was collected
        (
            "include=foo&sort=bar",
            [invalid_sort("bar is not a valid sort criteria for accounts")],
        ),
        (
            "filter[x]=1&sort=bar&page[size]=0",
            [invalid_sort("bar is not a valid sort criteria for accounts")],
        ),
        # include, filter and page errors are collected, in that order
        (
            "include=foo&page[size]=0",
            [
                invalid_include("foo is not a valid relationship of accounts"),
                invalid_page("0 is not a valid value for size page parameter."),
            ],
        ),
        (
            "page[number]=0&filter[x]=1&include=foo",
            [
                invalid_include("foo is not a valid relationship of accounts"),
                filter_not_allowed("x"),
                invalid_page("0 is not a valid value for number page parameter."),
            ],
        ),
        # only the first bad filter name is reported
        ("filter[foo]=1&filter[name_eq]=x&filter[bar]=2", [filter_not_allowed("foo")]),
        # the include check raises at the first bad path; that one error is collected
        (
            "include=contractor,foo,bar&page[size]=0",
            [
                invalid_include("foo is not a valid relationship of accounts"),
                invalid_page("0 is not a valid value for size page parameter."),
            ],
        ),
        # filter values are verified later: a 107 never joins parser errors
        (
            "include=foo&filter[name_eq]=a,b",
            [invalid_include("foo is not a valid relationship of accounts")],
        ),
    ],
)
def test_error_order_and_accumulation(query_string: str, expected: list[dict[str, object]]) -> None:
    assert errors(query_string) == expected


def test_one_page_error_size_first() -> None:
    # the paged paginator checks size, then number, and stops at the first problem
    assert errors("page[number]=0&page[size]=0") == [
        invalid_page("0 is not a valid value for size page parameter.")
    ]
    assert errors("page[number]=-1&page[size]=1001") == [
        invalid_page("size exceeds maximum page size of 1000.")
    ]


def test_filter_values_are_verified_after_parsing() -> None:
    query = parse("filter[name_eq]=a,b")
    [condition] = query.filters
    with pytest.raises(JsonApiError) as caught:
        condition.verify()
    assert caught.value.as_dict() == error(
        "107", "Invalid filter value", "a,b is not a valid value for name_eq."
    )


# pagination links echo what Rails' params hold (contract §2.4)


def test_echo_into_pagination_links() -> None:
    query = parse(
        "fields[accounts]=name&include=contractor&filter[name_cont]=acme&sort=-name"
        "&page[size]=2&page[limit]=9&token=secret"
    )
    links = page_links(URL, query.echo, query.page_number, query.page_size, 3)
    assert links == {
        "first": f"{URL}?fields%5Baccounts%5D=name&filter%5Bname_cont%5D=acme&include=contractor"
        "&page%5Bnumber%5D=1&page%5Bsize%5D=2&sort=-name",
        "next": f"{URL}?fields%5Baccounts%5D=name&filter%5Bname_cont%5D=acme&include=contractor"
        "&page%5Bnumber%5D=2&page%5Bsize%5D=2&sort=-name",
        "last": f"{URL}?fields%5Baccounts%5D=name&filter%5Bname_cont%5D=acme&include=contractor"
        "&page%5Bnumber%5D=2&page%5Bsize%5D=2&sort=-name",
    }


def test_echo_of_a_repeated_key_is_the_value_used() -> None:
    # Rails keeps the last of repeated keys; the link must not echo the others
    query = parse("filter[name_eq]=a&filter[name_eq]=b&sort=id&sort=-name")
    links = page_links(URL, query.echo, 1, 50, 1)
    assert links["first"] == (
        f"{URL}?filter%5Bname_eq%5D=b&page%5Bnumber%5D=1&page%5Bsize%5D=50&sort=-name"
    )
