"""Accounts filters, as contract §2.5 reads: every allowed filter key with a value that matches
and one that does not, the name grammar, the value rules and their 400 errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tests.api.contract import PREFIX
from tests.conftest import Api, Db

ACCOUNTS = f"{PREFIX}/accounts"

U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"
U3 = "33333333-3333-4333-8333-333333333333"
TEMPLATE_ID = 7

# Number attributes (contract §2.5), with the value of account M and of account O (M < O).
NUMBER_VALUES: dict[str, tuple[str, str]] = {
    "balance": ("1.5", "3"),
    "vat": ("10", "20"),
    "min_balance": ("-20", "-10"),
    "max_balance": ("100", "200"),
    "balance_low_threshold": ("5", "6"),
    "balance_high_threshold": ("50", "60"),
    "destination_rate_limit": ("0.25", "0.75"),
    "max_call_duration": ("60", "120"),
    "external_id": ("111", "222"),
    "origination_capacity": ("10", "11"),
    "termination_capacity": ("20", "21"),
    "total_capacity": ("30", "31"),
}
NUMBER_PREDICATES = ("eq", "not_eq", "gt", "gteq", "lt", "lteq", "in", "not_in")
STRING_PREDICATES = ("eq", "not_eq", "cont", "start", "end", "in", "not_in", "cont_any")
SET_PREDICATES = ("eq", "not_eq", "in", "not_in")
MULTI_VALUE = ("in", "not_in", "cont_any")

ALLOWED_FILTERS = (
    "id",
    "name",
    "contractor.id",
    "invoice_template.id",
    *(f"name_{predicate}" for predicate in STRING_PREDICATES),
    *(f"{name}_{predicate}" for name in NUMBER_VALUES for predicate in NUMBER_PREDICATES),
    *(f"uuid_{predicate}" for predicate in SET_PREDICATES),
    *(f"currency_id_{predicate}" for predicate in SET_PREDICATES),
)
SINGLE_VALUE_FILTERS = tuple(
    name
    for name in ALLOWED_FILTERS
    if "_" in name and "." not in name and not name.endswith(MULTI_VALUE)
)


@dataclass(frozen=True)
class Pair:
    """Account M and account O, which differ in every filterable value."""

    m: str
    o: str
    placeholders: dict[str, str]

    def expand(self, value: str) -> str:
        return value.format(**self.placeholders)


def number_cases(name: str) -> list[tuple[str, str, str]]:
    """(predicate, value, expected accounts) pairs: one that matches, one that does not."""
    low, high = NUMBER_VALUES[name]
    below, above = str(Decimal(low) - 1), str(Decimal(high) + 1)
    table = {
        "eq": [(low, "M"), (below, "")],
        "not_eq": [(low, "O"), (below, "MO")],
        "gt": [(low, "O"), (high, "")],
        "gteq": [(high, "O"), (above, "")],
        "lt": [(high, "M"), (low, "")],
        "lteq": [(low, "M"), (below, "")],
        "in": [(f"{below},{low}", "M"), (below, "")],
        "not_in": [(low, "O"), (f"{low},{high}", "")],
    }
    return [
        (predicate, value, expected) for predicate in table for value, expected in table[predicate]
    ]


# filter key -> [(value, expected accounts)]; values may name {m}, {o}, {c1}, {c3}, {eur}
CASES: dict[str, list[tuple[str, str]]] = {
    "id": [("{m}", "M"), ("999999", ""), ("{m},{o}", "MO")],
    "name": [("alpha-one", "M"), ("alpha", ""), ("alpha-one,beta-two", "MO")],
    "contractor.id": [("{c1}", "M"), ("{c3}", ""), ("{c1},{c2}", "MO")],
    "invoice_template.id": [(str(TEMPLATE_ID), "M"), ("8", "")],
    "invoice-template.id": [(str(TEMPLATE_ID), "M"), ("8", "")],
    "name_eq": [("alpha-one", "M"), ("Alpha-One", "")],
    "name_not_eq": [("alpha-one", "O"), ("Alpha-One", "MO")],
    "name_cont": [("PHA-O", "M"), ("pha-t", "")],
    "name_start": [("ALPHA", "M"), ("one", "")],
    "name_end": [("-ONE", "M"), ("alpha", "")],
    "name_in": [("zzz,alpha-one", "M"), ("ALPHA-ONE", "")],
    "name_not_in": [("alpha-one", "O"), ("alpha-one,beta-two", "")],
    "name_cont_any": [("zzz,TWO", "O"), ("zzz,yyy", "")],
    "uuid_eq": [(U1, "M"), (U3, "")],
    "uuid_not_eq": [(U1, "O"), (U3, "MO")],
    "uuid_in": [(f"{U3},{U1}", "M"), (U3, "")],
    "uuid_not_in": [(U1, "O"), (f"{U1},{U2}", "")],
    "currency_id_eq": [("0", "M"), ("999", "")],
    "currency_id_not_eq": [("0", "O"), ("999", "MO")],
    "currency_id_in": [("999,{eur}", "O"), ("999", "")],
    "currency_id_not_in": [("{eur}", "M"), ("0,{eur}", "")],
}
for _name in NUMBER_VALUES:
    for _predicate, _value, _expected in number_cases(_name):
        CASES.setdefault(f"{_name}_{_predicate}", []).append((_value, _expected))


def names(api: Api, params: dict[str, str] | str) -> list[str]:
    if isinstance(params, str):
        response = api.get(f"{ACCOUNTS}?{params}")
    else:
        response = api.get(ACCOUNTS, params=params)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["meta"]["total-count"] == len(document["data"])
    return sorted(item["attributes"]["name"] for item in document["data"])


def filter_error(code: str, title: str, detail: str) -> dict[str, list[dict[str, str]]]:
    return {"errors": [{"title": title, "detail": detail, "code": code, "status": "400"}]}


def invalid_value(detail: str) -> dict[str, list[dict[str, str]]]:
    return filter_error("107", "Invalid filter value", detail)


def not_allowed(name: str) -> dict[str, list[dict[str, str]]]:
    return filter_error("102", "Filter not allowed", f"{name} is not allowed.")


ACCOUNT_NUMBERS = [name for name in NUMBER_VALUES if "threshold" not in name]
PAIR = (
    # name, contractor, uuid, currency, invoice template id
    ("alpha-one", "filters-1", U1, "USD", str(TEMPLATE_ID)),
    ("beta-two", "filters-2", U2, "EUR", "NULL"),
)


def _pair_sql() -> str:
    """One round trip: a currency, three contractors, accounts M and O and their settings."""
    rows = []
    for position, (name, contractor, uuid, currency, template) in enumerate(PAIR):
        numbers = ", ".join(NUMBER_VALUES[column][position] for column in ACCOUNT_NUMBERS)
        rows.append(
            f"((SELECT id FROM contractors WHERE name = '{contractor}'), '{name}', '{uuid}',"
            f" (SELECT id FROM currencies WHERE name = '{currency}'), '{currency}', {template},"
            f" {numbers})"
        )
    low, high = NUMBER_VALUES["balance_low_threshold"], NUMBER_VALUES["balance_high_threshold"]
    return (
        "INSERT INTO currencies (name, rate) VALUES ('EUR', 1.1);"
        " INSERT INTO contractors (name, enabled, vendor, customer) VALUES"
        " ('filters-1', true, true, false), ('filters-2', true, true, false),"
        " ('filters-3', true, true, false);"
        " INSERT INTO accounts (contractor_id, name, uuid, currency_id, currency_name,"
        f" invoice_template_id, {', '.join(ACCOUNT_NUMBERS)}) VALUES {', '.join(rows)};"
        " INSERT INTO ledger_entries (account_id, amount, balance_after, kind)"
        " SELECT id, balance, balance, 'opening' FROM accounts;"
        " INSERT INTO account_balance_notification_settings"
        " (account_id, low_threshold, high_threshold)"
        f" SELECT id, CASE name WHEN 'alpha-one' THEN {low[0]} ELSE {low[1]} END,"
        f" CASE name WHEN 'alpha-one' THEN {high[0]} ELSE {high[1]} END FROM accounts"
    )


@pytest.fixture
def pair(api: Api, db: Db) -> Pair:
    db.execute(_pair_sql())
    row = db.fetchrow(
        "SELECT (SELECT id FROM accounts WHERE name = 'alpha-one') AS m,"
        " (SELECT id FROM accounts WHERE name = 'beta-two') AS o,"
        " (SELECT id FROM contractors WHERE name = 'filters-1') AS c1,"
        " (SELECT id FROM contractors WHERE name = 'filters-2') AS c2,"
        " (SELECT id FROM contractors WHERE name = 'filters-3') AS c3,"
        " (SELECT id FROM currencies WHERE name = 'EUR') AS eur"
    )
    assert row is not None
    placeholders = {key: str(value) for key, value in dict(row).items()}
    return Pair(m=placeholders["m"], o=placeholders["o"], placeholders=placeholders)


def test_the_pair_reads_back_as_arranged(api: Api, pair: Pair) -> None:
    response = api.get(f"{ACCOUNTS}/{pair.m}")
    assert response.status_code == 200
    attributes = response.json()["data"]["attributes"]
    for name, (low, _) in NUMBER_VALUES.items():
        rendered = attributes[name.replace("_", "-")]
        assert Decimal(str(rendered)) == Decimal(low), name
    assert (attributes["uuid"], attributes["currency"]) == (U1, "USD")


def test_the_cases_cover_every_allowed_filter() -> None:
    assert set(CASES) == {*ALLOWED_FILTERS, "invoice-template.id"}


@pytest.mark.parametrize("key", list(CASES))
def test_every_allowed_filter_matches_and_excludes(api: Api, pair: Pair, key: str) -> None:
    by_letter = {"M": "alpha-one", "O": "beta-two"}
    for value, expected in CASES[key]:
        found = names(api, {f"filter[{key}]": pair.expand(value)})
        assert found == [by_letter[letter] for letter in expected], (key, value)


@pytest.mark.parametrize("key", ["name-cont", "Name_cont", "NAME-CONT", "nameCont", "name_cont"])
def test_filter_names_are_underscored(api: Api, pair: Pair, key: str) -> None:
    # contract §0.2, §2.5: names are unformatted with String#underscore
    assert names(api, {f"filter[{key}]": "alpha"}) == ["alpha-one"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("min-balance-gt", "-15", ["beta-two"]),
        ("min-balance_gt", "-15", ["beta-two"]),
        ("Balance-Low-Threshold-Lt", "6", ["alpha-one"]),
        ("maxCallDuration_gteq", "120", ["beta-two"]),
        ("currency-id-eq", "0", ["alpha-one"]),
    ],
)
def test_number_filter_names_are_underscored(
    api: Api, pair: Pair, key: str, value: str, expected: list[str]
) -> None:
    assert names(api, {f"filter[{key}]": value}) == expected


def test_filters_combine_with_and(api: Api, pair: Pair) -> None:
    assert names(api, "filter[vat_gteq]=10&filter[name_cont]=two") == ["beta-two"]
    assert names(api, "filter[vat_gt]=10&filter[name_cont]=one") == []


def test_number_values_compare_as_numbers(api: Api, pair: Pair) -> None:
    assert names(api, {"filter[balance_eq]": "1.50"}) == ["alpha-one"]
    assert names(api, {"filter[vat_in]": "10.0,20.00"}) == ["alpha-one", "beta-two"]


NULLABLE_NUMBERS = [
    "balance_low_threshold",
    "balance_high_threshold",
    "destination_rate_limit",
    "max_call_duration",
    "external_id",
    "origination_capacity",
    "termination_capacity",
    "total_capacity",
]


@pytest.mark.parametrize("predicate", ["not_eq", "not_in"])
@pytest.mark.parametrize("name", NULLABLE_NUMBERS)
def test_not_eq_and_not_in_exclude_nulls(
    api: Api, make_account: Callable[..., dict[str, Any]], name: str, predicate: str
) -> None:
    low, _ = NUMBER_VALUES[name]
    make_account(name="with-value", **{name.replace("_", "-"): low})
    make_account(name="without-value")
    assert names(api, {f"filter[{name}_{predicate}]": "9"}) == ["with-value"]


@pytest.fixture
def wildcard_names(make_account: Callable[..., dict[str, Any]]) -> None:
    for name in ("50%_off\\now", "50 percent off now", "50x_off", "5%aoff", "50xyoff"):
        make_account(name=name)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("name_cont", "%", ["5%aoff", "50%_off\\now"]),
        ("name_cont", "_", ["50%_off\\now", "50x_off"]),
        ("name_cont", "%_", ["50%_off\\now"]),
        ("name_cont", "\\", ["50%_off\\now"]),
        ("name_cont", "X_O", ["50x_off"]),
        ("name_start", "50%", ["50%_off\\now"]),
        ("name_start", "50_", []),
        ("name_end", "\\NOW", ["50%_off\\now"]),
        ("name_end", "_OFF", ["50x_off"]),
        ("name_cont_any", "%_,zzz", ["50%_off\\now"]),
    ],
)
def test_cont_start_end_are_case_insensitive_and_match_wildcards_literally(
    api: Api, wildcard_names: None, key: str, value: str, expected: list[str]
) -> None:
    assert names(api, {f"filter[{key}]": value}) == expected


@pytest.mark.parametrize(
    "key",
    [
        "name_in",
        "name_not_in",
        "vat_in",
        "vat_not_in",
        "balance_low_threshold_not_in",
        "uuid_in",
        "uuid_not_in",
        "currency_id_in",
        "currency_id_not_in",
    ],
)
def test_in_and_not_in_with_an_empty_list_add_no_condition(api: Api, pair: Pair, key: str) -> None:
    assert names(api, {f"filter[{key}]": ""}) == ["alpha-one", "beta-two"]


def test_a_quoted_value_is_one_value(api: Api, make_account: Callable[..., dict[str, Any]]) -> None:
    make_account(name="a,b")
    make_account(name="a")
    assert names(api, {"filter[name_eq]": '"a,b"'}) == ["a,b"]
    assert names(api, {"filter[name_in]": '"a,b",zzz'}) == ["a,b"]


SINGLE_VALUE_BY_ATTRIBUTE: dict[str, list[str]] = {}
for _key in SINGLE_VALUE_FILTERS:
    _attribute = max(
        (name for name in ("name", "uuid", "currency_id", *NUMBER_VALUES) if _key.startswith(name)),
        key=len,
    )
    SINGLE_VALUE_BY_ATTRIBUTE.setdefault(_attribute, []).append(_key)


@pytest.mark.parametrize("attribute", list(SINGLE_VALUE_BY_ATTRIBUTE))
def test_single_value_filters_reject_zero_or_two_values(api: Api, attribute: str) -> None:
    for key in SINGLE_VALUE_BY_ATTRIBUTE[attribute]:
        empty = api.get(ACCOUNTS, params={f"filter[{key}]": ""})
        assert empty.status_code == 400, key
        assert empty.json() == invalid_value(f" is not a valid value for {key}.")
        two = api.get(ACCOUNTS, params={f"filter[{key}]": "1,2"})
        assert two.status_code == 400, key
        assert two.json() == invalid_value(f"1,2 is not a valid value for {key}.")


def test_every_single_value_filter_is_checked() -> None:
    checked = [key for keys in SINGLE_VALUE_BY_ATTRIBUTE.values() for key in keys]
    assert sorted(checked) == sorted(SINGLE_VALUE_FILTERS)
    assert len(checked) == 5 + 6 * len(NUMBER_VALUES) + 2 + 2


def test_the_107_detail_names_the_underscored_filter(api: Api) -> None:
    response = api.get(ACCOUNTS, params={"filter[Name-Eq]": "a,b"})
    assert response.status_code == 400
    assert response.json() == invalid_value("a,b is not a valid value for name_eq.")


@pytest.mark.parametrize(
    ("key", "value", "detail"),
    [
        # our deviation: Yeti casts these to 0 or drops them; we refuse them
        ("vat_eq", "abc", "abc is not a valid value for vat_eq."),
        ("balance_low_threshold_gt", "1x", "1x is not a valid value for balance_low_threshold_gt."),
        ("external_id_in", "1,x", "1,x is not a valid value for external_id_in."),
        ("max_call_duration_lt", "NaN", "NaN is not a valid value for max_call_duration_lt."),
        ("uuid_eq", "nope", "nope is not a valid value for uuid_eq."),
        ("uuid_not_in", f"{U1},nope", f"{U1},nope is not a valid value for uuid_not_in."),
        ("currency_id_eq", "usd", "usd is not a valid value for currency_id_eq."),
        ("contractor.id", "abc", "abc is not a valid value for contractor.id."),
        ("invoice-template.id", "1,x", "1,x is not a valid value for invoice_template.id."),
        ("name_cont", "a\x00b", "a\x00b is not a valid value for name_cont."),
        # digits outside ASCII are not numbers (Ruby reads a fullwidth one as 0)
        ("vat_eq", "\uff11", "\uff11 is not a valid value for vat_eq."),
        ("contractor.id", "\u0661", "\u0661 is not a valid value for contractor.id."),
    ],
)
def test_bad_filter_values_are_107(api: Api, key: str, value: str, detail: str) -> None:
    response = api.get(ACCOUNTS, params={f"filter[{key}]": value})
    assert response.status_code == 400
    assert response.json() == invalid_value(detail)


@pytest.mark.parametrize(
    ("key", "reported"),
    [
        ("foo", "foo"),
        ("no-such-thing", "no_such_thing"),
        ("name_contains", "name_contains"),
        ("name_like", "name_like"),
        ("name_eq_any", "name_eq_any"),
        ("balance_cont", "balance_cont"),
        ("uuid_gt", "uuid_gt"),
        ("currency_id_gt", "currency_id_gt"),
        ("timezone_eq", "timezone_eq"),
        ("invoice_period_id_eq", "invoice_period_id_eq"),
        ("send_invoices_to_eq", "send_invoices_to_eq"),
        ("contractor_id", "contractor_id"),
        ("currency", "currency"),
        ("contractor.name", "name"),
        ("currency.id", "id"),
    ],
)
def test_unknown_filter_is_102(api: Api, key: str, reported: str) -> None:
    response = api.get(ACCOUNTS, params={f"filter[{key}]": "1"})
    assert response.status_code == 400
    assert response.json() == not_allowed(reported)


@pytest.mark.parametrize(
    ("query", "reported"),
    [
        ("filter[zzz]=1&filter[aaa]=2", "zzz"),
        ("filter[name_eq]=a,b&filter[zzz]=1&filter[aaa]=2", "zzz"),
    ],
)
def test_only_the_first_unknown_filter_is_reported(api: Api, query: str, reported: str) -> None:
    response = api.get(f"{ACCOUNTS}?{query}")
    assert response.status_code == 400
    assert response.json() == not_allowed(reported)


def test_a_related_filter_with_its_include_is_refused_not_ignored(api: Api, pair: Pair) -> None:
    # contract §2.5: Yeti accepts and silently ignores it with the matching include; we refuse
    # it as without the include (docs/compatibility.md): an ignored filter lists everything
    response = api.get(ACCOUNTS, params={"include": "contractor", "filter[contractor.name]": "zzz"})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "title": "Filter not allowed",
            "detail": "name is not allowed.",
            "code": "102",
            "status": "400",
        }
    ]


def test_filter_that_is_not_a_hash_is_120(api: Api) -> None:
    response = api.get(ACCOUNTS, params={"filter": "abc"})
    assert response.status_code == 400
    assert response.json() == filter_error(
        "120", "Invalid filters syntax", "abc is not a valid syntax for filtering."
    )


def test_filters_apply_to_the_total_count(api: Api, pair: Pair) -> None:
    response = api.get(ACCOUNTS, params={"filter[name_start]": "beta", "page[size]": "1"})
    assert response.status_code == 200
    document = response.json()
    assert [item["id"] for item in document["data"]] == [pair.o]
    assert document["meta"] == {"total-count": 1}
    assert list(document["links"]) == ["first", "last"]
    everything = api.get(ACCOUNTS, params={"page[size]": "1"}).json()
    assert everything["meta"] == {"total-count": 2}
