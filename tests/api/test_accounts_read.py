"""Accounts, the read side, as the contract reads: show (§2.3), index and pagination (§2.4),
sorting (§2.6), include (§2.7), sparse fieldsets (§2.8), the parser's error precedence (§0.5)
and the number of queries each endpoint runs (DESIGN: a fixed number per request)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from tests.api.conftest import account_body
from tests.api.contract import PREFIX, ResourceContract
from tests.conftest import BASE_URL, Api, Db, QueryLog

# Query budgets, measured through the query_log fixture with warm connections. Measured
# (December, issue 10): index 2 (the page, the count; 3 with include=contractor), show 1,
# create 10 (BEGIN, lookups, insert, ledger, settings, audit, the 2 below, re-read, COMMIT),
# update 4 (BEGIN, the locked read of the current row, one statement with the lookups, the
# change, its audit and settings rows and the answer's row, COMMIT). A write whose thresholds
# fire (contract §7) takes 2 more: the state with its log rows, and the outbox events; the
# create below does (its low threshold is above the opening 0). Each budget allows one more:
# authentication reads the admin from the database while the admin cache is not listening.
# They are ceilings: a change that needs more queries must raise them knowingly.
INDEX_QUERY_BUDGET = 3
SHOW_QUERY_BUDGET = 2
CREATE_QUERY_BUDGET = 11
UPDATE_QUERY_BUDGET = 5

ACCOUNTS = f"{PREFIX}/accounts"
ACCOUNTS_URL = f"{BASE_URL}{ACCOUNTS}"
PAGE_1_OF_50 = "page%5Bnumber%5D=1&page%5Bsize%5D=50"

# contract §2.3: the show example, created with these attributes
EXAMPLE_ATTRIBUTES: dict[str, Any] = {
    "name": "acme-usd",
    "min-balance": -100,
    "max-balance": 1000,
    "vat": 23.1,
    "balance-low-threshold": 90,
    "balance-high-threshold": 95,
    "send-balance-notifications-to": [3],
    "destination-rate-limit": 0.3444,
    "max-call-duration": 36000,
    "external-id": 100,
    "uuid": "29161666-c29c-11e8-a11d-a088b4454590",
    "origination-capacity": 10,
    "termination-capacity": 3,
    "total-capacity": 11,
    "send-invoices-to": [3],
    "invoice-period-id": 2,
    "timezone": "Europe/Kyiv",
}
EXAMPLE_RENDERED: dict[str, Any] = {
    "name": "acme-usd",
    "balance": "0.0",
    "min-balance": "-100.0",
    "max-balance": "1000.0",
    "vat": "23.1",
    "balance-low-threshold": "90.0",
    "balance-high-threshold": "95.0",
    "send-balance-notifications-to": [3],
    "destination-rate-limit": "0.3444",
    "max-call-duration": 36000,
    "external-id": 100,
    "uuid": "29161666-c29c-11e8-a11d-a088b4454590",
    "origination-capacity": 10,
    "termination-capacity": 3,
    "total-capacity": 11,
    "send-invoices-to": [3],
    "invoice-period-id": 2,
    "timezone": "Europe/Kyiv",
    "currency": "USD",
}


def assert_document(actual: Any, expected: Any) -> None:
    """Equal, and with every key in the same order (contract §0.3)."""
    assert actual == expected
    assert json.dumps(actual) == json.dumps(expected)


def error(code: str, title: str, detail: str) -> dict[str, str]:
    return {"title": title, "detail": detail, "code": code, "status": "400"}


def page_error(detail: str) -> dict[str, str]:
    return error("118", "Invalid page value", detail)


def account_object(
    account_id: str,
    contractor_id: int,
    attributes: dict[str, Any],
    invoice_template_id: int | None = None,
) -> dict[str, Any]:
    own = f"{ACCOUNTS_URL}/{account_id}"
    template = (
        None
        if invoice_template_id is None
        else {"type": "invoice-templates", "id": str(invoice_template_id)}
    )
    return {
        "id": account_id,
        "type": "accounts",
        "links": {"self": own},
        "attributes": attributes,
        "relationships": {
            "contractor": {
                "links": {
                    "self": f"{own}/relationships/contractor",
                    "related": f"{own}/contractor",
                },
                "data": {"type": "contractors", "id": str(contractor_id)},
            },
            "invoice-template": {
                "links": {
                    "self": f"{own}/relationships/invoice-template",
                    "related": f"{own}/invoice-template",
                },
                "data": template,
            },
        },
    }


def contractor_object(contractor_id: int, name: str, external_id: int | None) -> dict[str, Any]:
    own = f"{BASE_URL}{PREFIX}/contractors/{contractor_id}"
    return {
        "id": str(contractor_id),
        "type": "contractors",
        "links": {"self": own},
        "attributes": {
            "name": name,
            "enabled": True,
            "vendor": True,
            "customer": False,
            "description": None,
            "address": None,
            "phones": None,
            "external-id": external_id,
        },
        "relationships": {
            "smtp-connection": {
                "links": {
                    "self": f"{own}/relationships/smtp-connection",
                    "related": f"{own}/smtp-connection",
                },
                "data": None,
            }
        },
    }


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


@pytest.fixture
def three_accounts(make_account: Callable[..., dict[str, Any]]) -> list[str]:
    return [make_account()["id"] for _ in range(3)]


class TestAccountsContract(ResourceContract):
    """The checks every resource inherits (tests/api/contract.py), for accounts."""

    path = "accounts"
    type = "accounts"

    @pytest.fixture(autouse=True)
    def _arrange(self, api: Api, contractor_id: int) -> None:
        self.contractor_id = contractor_id
        self.names = itertools.count(1)

    def make(self, api: Api) -> str:
        response = api.post(self.collection, self.create_body())
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])

    def create_body(self) -> dict[str, Any]:
        # contract §2.9: the minimum valid body
        return account_body(self.contractor_id, name=f"contract-account{next(self.names)}")


# -- §2.3 show ---------------------------------------------------------------------------


def test_show_renders_the_contract_example(api: Api, contractor_id: int) -> None:
    created = api.post(ACCOUNTS, account_body(contractor_id, **EXAMPLE_ATTRIBUTES))
    assert created.status_code == 201, created.text
    account_id = created.json()["data"]["id"]

    response = api.get(f"{ACCOUNTS}/{account_id}")

    assert response.status_code == 200
    assert_document(
        response.json(), {"data": account_object(account_id, contractor_id, EXAMPLE_RENDERED)}
    )


def test_show_has_no_top_level_meta_or_links(
    api: Api, make_account: Callable[..., dict[str, Any]]
) -> None:
    account_id = make_account()["id"]
    response = api.get(f"{ACCOUNTS}/{account_id}")
    assert response.status_code == 200
    assert list(response.json()) == ["data"]


def test_show_missing_account_is_404(api: Api) -> None:
    response = api.get(f"{ACCOUNTS}/999")
    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {
                "title": "Record not found",
                "detail": "The record identified by 999 could not be found.",
                "code": "404",
                "status": "404",
            }
        ]
    }


def test_show_non_integer_id_is_103(api: Api) -> None:
    response = api.get(f"{ACCOUNTS}/abc")
    assert response.status_code == 400
    assert response.json() == {
        "errors": [error("103", "Invalid field value", "abc is not a valid value for id.")]
    }


def test_show_parses_filters_but_does_not_apply_them(
    api: Api, make_account: Callable[..., dict[str, Any]]
) -> None:
    account_id = make_account(name="shown")["id"]
    response = api.get(f"{ACCOUNTS}/{account_id}", params={"filter[name_eq]": "other"})
    assert response.status_code == 200
    assert response.json()["data"]["id"] == account_id
    rejected = api.get(f"{ACCOUNTS}/{account_id}", params={"filter[nope]": "1"})
    assert rejected.status_code == 400
    assert rejected.json()["errors"] == [error("102", "Filter not allowed", "nope is not allowed.")]


# -- §2.4 index and pagination -------------------------------------------------------------


def test_index_page_2_of_size_1_is_the_contract_example(api: Api, contractor_id: int) -> None:
    created = []
    for number in (1, 2, 3):
        attributes: dict[str, Any] = {
            "name": f"account{number}",
            "vat": "23.1",
            "destination-rate-limit": "0.3444",
            "max-call-duration": 36000,
            "external-id": number,
        }
        if number == 2:
            attributes["uuid"] = "5d24297a-c29c-11e8-a11d-a088b4454590"
        response = api.post(ACCOUNTS, account_body(contractor_id, **attributes))
        assert response.status_code == 201, response.text
        created.append(response.json()["data"]["id"])

    response = api.get(ACCOUNTS, params={"page[number]": "2", "page[size]": "1"})

    assert response.status_code == 200
    attributes = {
        "name": "account2",
        "balance": "0.0",
        "min-balance": "0.0",
        "max-balance": "0.0",
        "vat": "23.1",
        "balance-low-threshold": None,
        "balance-high-threshold": None,
        "send-balance-notifications-to": None,
        "destination-rate-limit": "0.3444",
        "max-call-duration": 36000,
        "external-id": 2,
        "uuid": "5d24297a-c29c-11e8-a11d-a088b4454590",
        "origination-capacity": None,
        "termination-capacity": None,
        "total-capacity": None,
        "send-invoices-to": None,
        "invoice-period-id": None,
        "timezone": "UTC",
        "currency": "USD",
    }
    assert_document(
        response.json(),
        {
            "data": [account_object(created[1], contractor_id, attributes)],
            "meta": {"total-count": 3},
            "links": {
                "first": f"{ACCOUNTS_URL}?page%5Bnumber%5D=1&page%5Bsize%5D=1",
                "prev": f"{ACCOUNTS_URL}?page%5Bnumber%5D=1&page%5Bsize%5D=1",
                "next": f"{ACCOUNTS_URL}?page%5Bnumber%5D=3&page%5Bsize%5D=1",
                "last": f"{ACCOUNTS_URL}?page%5Bnumber%5D=3&page%5Bsize%5D=1",
            },
        },
    )


def test_index_without_records_is_the_contract_example(api: Api) -> None:
    response = api.get(ACCOUNTS)
    assert response.status_code == 200
    assert_document(
        response.json(),
        {
            "data": [],
            "meta": {"total-count": 0},
            "links": {
                "first": f"{ACCOUNTS_URL}?{PAGE_1_OF_50}",
                "last": f"{ACCOUNTS_URL}?{PAGE_1_OF_50}",
            },
        },
    )


def test_index_past_the_last_page_links_prev(api: Api, three_accounts: list[str]) -> None:
    response = api.get(ACCOUNTS, params={"page[number]": "5", "page[size]": "1"})
    assert response.status_code == 200
    document = response.json()
    assert document["data"] == []
    assert document["meta"] == {"total-count": 3}
    assert document["links"] == {
        "first": f"{ACCOUNTS_URL}?page%5Bnumber%5D=1&page%5Bsize%5D=1",
        "prev": f"{ACCOUNTS_URL}?page%5Bnumber%5D=4&page%5Bsize%5D=1",
        "last": f"{ACCOUNTS_URL}?page%5Bnumber%5D=3&page%5Bsize%5D=1",
    }


def test_index_first_page_links_next_but_not_prev(api: Api, three_accounts: list[str]) -> None:
    response = api.get(ACCOUNTS, params={"page[size]": "2"})
    assert ids(response) == three_accounts[:2]
    assert response.json()["links"] == {
        "first": f"{ACCOUNTS_URL}?page%5Bnumber%5D=1&page%5Bsize%5D=2",
        "next": f"{ACCOUNTS_URL}?page%5Bnumber%5D=2&page%5Bsize%5D=2",
        "last": f"{ACCOUNTS_URL}?page%5Bnumber%5D=2&page%5Bsize%5D=2",
    }


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"page[number]": "0"}, "0 is not a valid value for number page parameter."),
        ({"page[number]": "-1"}, "-1 is not a valid value for number page parameter."),
        ({"page[number]": "abc"}, "0 is not a valid value for number page parameter."),
        ({"page[size]": "0"}, "0 is not a valid value for size page parameter."),
        ({"page[size]": "abc"}, "0 is not a valid value for size page parameter."),
        ({"page[size]": "1001"}, "size exceeds maximum page size of 1000."),
        ({"page": "0"}, "0 is not a valid value for number page parameter."),
    ],
)
def test_index_bad_page_value_is_118(api: Api, params: dict[str, str], detail: str) -> None:
    response = api.get(ACCOUNTS, params=params)
    assert response.status_code == 400
    assert response.json() == {"errors": [page_error(detail)]}


def test_index_page_values_are_read_as_ruby_to_i(api: Api, three_accounts: list[str]) -> None:
    response = api.get(ACCOUNTS, params={"page[number]": "2abc", "page[size]": "1xyz"})
    assert ids(response) == [three_accounts[1]]
    assert response.json()["links"]["prev"] == (
        f"{ACCOUNTS_URL}?page%5Bnumber%5D=1&page%5Bsize%5D=1"
    )


def test_index_page_number_beyond_any_offset_is_an_empty_page(
    api: Api, three_accounts: list[str]
) -> None:
    # DESIGN: where Yeti fails (its OFFSET overflows bigint: 500) we answer the page, empty
    number = "99999999999999999999"
    response = api.get(ACCOUNTS, params={"page[number]": number, "page[size]": "1000"})
    assert response.status_code == 200
    document = response.json()
    assert document["data"] == []
    assert document["meta"] == {"total-count": 3}
    assert document["links"] == {
        "first": f"{ACCOUNTS_URL}?page%5Bnumber%5D=1&page%5Bsize%5D=1000",
        "prev": f"{ACCOUNTS_URL}?page%5Bnumber%5D=99999999999999999998&page%5Bsize%5D=1000",
        "last": f"{ACCOUNTS_URL}?page%5Bnumber%5D=1&page%5Bsize%5D=1000",
    }


def test_index_page_size_1000_is_allowed(api: Api, three_accounts: list[str]) -> None:
    response = api.get(ACCOUNTS, params={"page[size]": "1000"})
    assert ids(response) == three_accounts


def test_index_scalar_page_is_the_page_number(api: Api, three_accounts: list[str]) -> None:
    response = api.get(ACCOUNTS, params={"page": "3"})
    assert response.status_code == 200
    document = response.json()
    assert document["data"] == []
    assert document["meta"] == {"total-count": 3}
    assert document["links"] == {
        "first": f"{ACCOUNTS_URL}?{PAGE_1_OF_50}",
        "prev": f"{ACCOUNTS_URL}?page%5Bnumber%5D=2&page%5Bsize%5D=50",
        "last": f"{ACCOUNTS_URL}?{PAGE_1_OF_50}",
    }


@pytest.mark.parametrize("key", ["page[limit]", "page[offset]"])
def test_index_unknown_page_keys_are_ignored(api: Api, three_accounts: list[str], key: str) -> None:
    response = api.get(ACCOUNTS, params={key: "1"})
    assert ids(response) == three_accounts
    assert response.json()["links"] == {
        "first": f"{ACCOUNTS_URL}?{PAGE_1_OF_50}",
        "last": f"{ACCOUNTS_URL}?{PAGE_1_OF_50}",
    }


def test_index_default_order_is_id_ascending(
    api: Api, make_account: Callable[..., dict[str, Any]]
) -> None:
    created = [make_account(name=name)["id"] for name in ("c-account", "a-account", "b-account")]
    assert ids(api.get(ACCOUNTS)) == created


@pytest.mark.parametrize(
    ("query", "first"),
    [
        (
            "filter[name_cont]=acme&sort=-name",
            f"filter%5Bname_cont%5D=acme&{PAGE_1_OF_50}&sort=-name",
        ),
        # filter keys are echoed as sent, spaces as +, commas as %2C
        (
            "filter[Name-Cont]=ac%20me&sort=name,-vat",
            f"filter%5BName-Cont%5D=ac+me&{PAGE_1_OF_50}&sort=name%2C-vat",
        ),
        (
            "include=contractor&fields[accounts]=name,contractor",
            f"fields%5Baccounts%5D=name%2Ccontractor&include=contractor&{PAGE_1_OF_50}",
        ),
    ],
)
def test_index_links_echo_the_request_parameters(api: Api, query: str, first: str) -> None:
    response = api.get(f"{ACCOUNTS}?{query}")
    assert response.status_code == 200, response.text
    assert response.json()["links"] == {
        "first": f"{ACCOUNTS_URL}?{first}",
        "last": f"{ACCOUNTS_URL}?{first}",
    }


def test_index_links_keep_the_filter_on_every_page(
    api: Api, make_account: Callable[..., dict[str, Any]]
) -> None:
    for name in ("acme-1", "acme-2", "other"):
        make_account(name=name)
    response = api.get(f"{ACCOUNTS}?filter[name_start]=acme&page[number]=1&page[size]=1&sort=-name")
    assert response.status_code == 200
    document = response.json()
    assert [item["attributes"]["name"] for item in document["data"]] == ["acme-2"]
    assert document["meta"] == {"total-count": 2}
    query = "filter%5Bname_start%5D=acme&page%5Bnumber%5D={}&page%5Bsize%5D=1&sort=-name"
    assert document["links"] == {
        "first": f"{ACCOUNTS_URL}?{query.format(1)}",
        "next": f"{ACCOUNTS_URL}?{query.format(2)}",
        "last": f"{ACCOUNTS_URL}?{query.format(2)}",
    }


# -- §2.6 sort -----------------------------------------------------------------------------

# Three accounts (in id order) and, per sortable field, the values that make its order
# differ from the id order; `balance` is set by SQL, `currency` by the account's currency.
SORT_VALUES: dict[str, tuple[Any, Any, Any]] = {
    "name": ("beta", "gamma", "alpha"),
    "min-balance": (-1, -3, -2),
    "max-balance": (100, 300, 200),
    "vat": (2, 1, 3),
    "destination-rate-limit": ("0.3", "0.1", "0.2"),
    "max-call-duration": (20, 30, 10),
    "external-id": (200, 100, 300),
    "uuid": (
        "30000000-0000-4000-8000-000000000000",
        "10000000-0000-4000-8000-000000000000",
        "20000000-0000-4000-8000-000000000000",
    ),
    "origination-capacity": (3, 1, 2),
    "termination-capacity": (2, 3, 1),
    "total-capacity": (1, 3, 2),
    "send-invoices-to": ([5], [1, 2], [3]),
    "invoice-period-id": (3, 1, 2),
    "timezone": ("UTC", "Europe/Kyiv", "America/New_York"),
    "currency": ("USD", "EUR", "GBP"),
}
SORT_BALANCES = ("5", "-1", "2")


@pytest.fixture
def sortable_accounts(api: Api, contractor_id: int, db: Db) -> list[str]:
    db.execute("INSERT INTO currencies (name, rate) VALUES ('EUR', 1.1), ('GBP', 1.3)")
    created = []
    for position in range(3):
        attributes = {key: values[position] for key, values in SORT_VALUES.items()}
        response = api.post(ACCOUNTS, account_body(contractor_id, **attributes))
        assert response.status_code == 201, response.text
        created.append(response.json()["data"]["id"])
        db.set_balance(int(created[-1]), SORT_BALANCES[position])
    return created


def _sort_key(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


@pytest.mark.parametrize("field", ["id", "balance", *SORT_VALUES])
def test_sort_by_every_allowed_field(api: Api, sortable_accounts: list[str], field: str) -> None:
    if field == "id":
        values: tuple[Any, ...] = (1, 2, 3)
    elif field == "balance":
        values = SORT_BALANCES
    else:
        values = SORT_VALUES[field]
    ascending = [
        account_id
        for _, account_id in sorted(zip(map(_sort_key, values), sortable_accounts, strict=True))
    ]
    for spelling in {field, field.replace("-", "_")}:
        assert ids(api.get(ACCOUNTS, params={"sort": spelling})) == ascending, spelling
        descending = ids(api.get(ACCOUNTS, params={"sort": f"-{spelling}"}))
        assert descending == ascending[::-1], spelling


def test_sort_by_currency_sorts_by_its_name(
    api: Api, make_account: Callable[..., dict[str, Any]], db: Db
) -> None:
    # our deviation: Yeti answers 500 (contract §2.2)
    db.execute("INSERT INTO currencies (name, rate) VALUES ('EUR', 1.1)")
    usd = make_account(currency="USD")["id"]
    eur = make_account(currency="EUR")["id"]
    assert ids(api.get(ACCOUNTS, params={"sort": "currency"})) == [eur, usd]
    assert ids(api.get(ACCOUNTS, params={"sort": "-currency"})) == [usd, eur]


def test_sort_by_several_fields(api: Api, make_account: Callable[..., dict[str, Any]]) -> None:
    first = make_account(name="a1", vat=1)["id"]
    second = make_account(name="a2", vat=2)["id"]
    third = make_account(name="a3", vat=1)["id"]
    assert ids(api.get(ACCOUNTS, params={"sort": "vat,-name"})) == [third, first, second]
    assert ids(api.get(ACCOUNTS, params={"sort": "-vat,name"})) == [second, first, third]


TIED_ACCOUNTS = 60


@pytest.mark.parametrize(
    "sort", ["balance", "-balance", "external-id", "-external-id", "vat", "-vat,balance", "-id"]
)
def test_paging_through_equal_sort_values_shows_each_account_once(
    api: Api, db: Db, sort: str
) -> None:
    """Every account has the same balance, vat and (null) external id: only a tiebreaker gives
    the pages one order (Yeti adds none, contract §2.4: ours is the id, last)."""
    _bulk_accounts(db, TIED_ACCOUNTS)
    # a third of the rows rewritten: the table's physical order is no longer the ids'
    db.execute("UPDATE accounts SET max_balance = 1 WHERE id % 3 = 0")
    seen: list[str] = []
    for number in range(1, TIED_ACCOUNTS // 7 + 2):
        params = {"sort": sort, "page[size]": "7", "page[number]": str(number)}
        seen += ids(api.get(ACCOUNTS, params=params))
    assert len(seen) == TIED_ACCOUNTS
    assert len(set(seen)) == TIED_ACCOUNTS
    # the id goes the way of the last sort field (an index of (balance, id) serves both ways)
    in_id_order = sorted(seen, key=int)
    last = sort.split(",")[-1]
    assert seen == (in_id_order[::-1] if last.startswith("-") else in_id_order)


def test_sort_field_names_are_underscored_from_camel_case(
    api: Api, make_account: Callable[..., dict[str, Any]]
) -> None:
    # contract §0.2: sort fields are unformatted with String#underscore
    low = make_account(**{"max-balance": 1})["id"]
    high = make_account(**{"max-balance": 2})["id"]
    assert ids(api.get(ACCOUNTS, params={"sort": "-maxBalance"})) == [high, low]


@pytest.mark.parametrize(
    ("sort", "field"),
    [
        ("balance-low-threshold", "balance_low_threshold"),
        ("-balance_high_threshold", "balance_high_threshold"),
        ("send-balance-notifications-to", "send_balance_notifications_to"),
        ("contractor", "contractor"),
        ("contractor.name", "contractor.name"),
        ("invoice-template", "invoice_template"),
        ("name,bogus", "bogus"),
    ],
)
def test_sort_by_a_field_not_allowed_is_114(api: Api, sort: str, field: str) -> None:
    response = api.get(ACCOUNTS, params={"sort": sort})
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            error(
                "114", "Invalid sort criteria", f"{field} is not a valid sort criteria for accounts"
            )
        ]
    }


# -- §2.7 include --------------------------------------------------------------------------


def test_include_contractor_adds_each_contractor_once(
    api: Api, make_contractor: Callable[..., int]
) -> None:
    first = make_contractor(name="contractor5", external_id=5)
    second = make_contractor(name="contractor6")
    for number, owner in enumerate((first, second, first)):
        response = api.post(ACCOUNTS, account_body(owner, name=f"account{number}"))
        assert response.status_code == 201, response.text

    response = api.get(ACCOUNTS, params={"include": "contractor"})

    assert response.status_code == 200
    document = response.json()
    assert list(document) == ["data", "included", "meta", "links"]
    included = sorted(document["included"], key=lambda item: int(item["id"]))
    assert_document(
        included,
        [
            contractor_object(first, "contractor5", 5),
            contractor_object(second, "contractor6", None),
        ],
    )


def test_include_on_show(api: Api, contractor_id: int) -> None:
    created = api.post(ACCOUNTS, account_body(contractor_id, name="one"))
    account_id = created.json()["data"]["id"]
    response = api.get(f"{ACCOUNTS}/{account_id}", params={"include": "contractor"})
    assert response.status_code == 200
    document = response.json()
    assert list(document) == ["data", "included"]
    assert [(item["type"], item["id"]) for item in document["included"]] == [
        ("contractors", str(contractor_id))
    ]


def _invoice_template(db: Db) -> int:
    return int(
        db.fetchval(
            "INSERT INTO invoice_templates (name, html_template)"
            " VALUES ('monthly', '<p>{{ account }}</p>') RETURNING id"
        )
    )


def test_include_invoice_template(api: Api, contractor_id: int, db: Db) -> None:
    template_id = _invoice_template(db)
    body = account_body(contractor_id)
    body["data"]["relationships"]["invoice-template"] = {
        "data": {"type": "invoice-templates", "id": str(template_id)}
    }
    assert api.post(ACCOUNTS, body).status_code == 201

    response = api.get(ACCOUNTS, params={"include": "invoice-template"})

    assert response.status_code == 200
    assert_document(
        response.json()["included"],
        [
            {
                "id": str(template_id),
                "type": "invoice-templates",
                "links": {"self": f"{BASE_URL}{PREFIX}/invoice-templates/{template_id}"},
                "attributes": {"name": "monthly", "html-template": "<p>{{ account }}</p>"},
            }
        ],
    )


def test_include_both_relationships(api: Api, contractor_id: int, db: Db) -> None:
    template_id = _invoice_template(db)
    body = account_body(contractor_id)
    body["data"]["relationships"]["invoice-template"] = {
        "data": {"type": "invoice-templates", "id": str(template_id)}
    }
    assert api.post(ACCOUNTS, body).status_code == 201
    response = api.get(ACCOUNTS, params={"include": "contractor,invoice-template"})
    assert response.status_code == 200
    assert sorted((item["type"], item["id"]) for item in response.json()["included"]) == [
        ("contractors", str(contractor_id)),
        ("invoice-templates", str(template_id)),
    ]


def test_include_nested_smtp_connection(
    api: Api, make_contractor: Callable[..., int], db: Db
) -> None:
    smtp_id = int(
        db.fetchval(
            "INSERT INTO smtp_connections (name, host, from_address)"
            " VALUES ('mail', 'smtp.example.com', 'billing@example.com') RETURNING id"
        )
    )
    contractor = make_contractor(smtp_connection_id=smtp_id)
    assert api.post(ACCOUNTS, account_body(contractor)).status_code == 201

    response = api.get(ACCOUNTS, params={"include": "contractor.smtp-connection"})

    assert response.status_code == 200
    assert sorted((item["type"], item["id"]) for item in response.json()["included"]) == [
        ("contractors", str(contractor)),
        ("smtp-connections", str(smtp_id)),
    ]


def test_include_without_related_records_adds_no_included(
    api: Api, make_account: Callable[..., dict[str, Any]]
) -> None:
    make_account()
    response = api.get(ACCOUNTS, params={"include": "invoice-template"})
    assert response.status_code == 200
    assert list(response.json()) == ["data", "meta", "links"]


@pytest.mark.parametrize(
    ("include", "detail"),
    [
        ("invoice_template", "invoice_template is not a valid relationship of accounts"),
        (
            "contractor, invoice-template",
            " invoice-template is not a valid relationship of accounts",
        ),
        ("currency", "currency is not a valid relationship of accounts"),
        ("contractor.nope", "nope is not a valid relationship of contractors"),
    ],
)
def test_include_not_allowed_is_112(api: Api, include: str, detail: str) -> None:
    response = api.get(ACCOUNTS, params={"include": include})
    assert response.status_code == 400
    assert response.json() == {"errors": [error("112", "Invalid field", detail)]}


# -- §2.8 sparse fieldsets -------------------------------------------------------------------


def test_fields_render_only_the_listed_attributes_and_relationships(
    api: Api, contractor_id: int
) -> None:
    created = api.post(ACCOUNTS, account_body(contractor_id, name="sparse"))
    account_id = created.json()["data"]["id"]
    own = f"{ACCOUNTS_URL}/{account_id}"

    response = api.get(ACCOUNTS, params={"fields[accounts]": "name,balance,contractor"})

    assert response.status_code == 200
    assert_document(
        response.json()["data"],
        [
            {
                "id": account_id,
                "type": "accounts",
                "links": {"self": own},
                "attributes": {"name": "sparse", "balance": "0.0"},
                "relationships": {
                    "contractor": {
                        "links": {
                            "self": f"{own}/relationships/contractor",
                            "related": f"{own}/contractor",
                        },
                        "data": {"type": "contractors", "id": str(contractor_id)},
                    }
                },
            }
        ],
    )


def test_fields_without_relationships_omit_the_relationships_key(
    api: Api, make_account: Callable[..., dict[str, Any]]
) -> None:
    account_id = make_account(name="bare")["id"]
    for path in (ACCOUNTS, f"{ACCOUNTS}/{account_id}"):
        response = api.get(path, params={"fields[accounts]": "vat,name"})
        assert response.status_code == 200
        data = response.json()["data"]
        item = data[0] if isinstance(data, list) else data
        assert_document(
            item,
            {
                "id": account_id,
                "type": "accounts",
                "links": {"self": f"{ACCOUNTS_URL}/{account_id}"},
                "attributes": {"name": "bare", "vat": "0.0"},
            },
        )


def test_fields_without_attributes_omit_the_attributes_key(
    api: Api, make_account: Callable[..., dict[str, Any]]
) -> None:
    account_id = make_account()["id"]
    response = api.get(f"{ACCOUNTS}/{account_id}", params={"fields[accounts]": "contractor"})
    assert response.status_code == 200
    assert list(response.json()["data"]) == ["id", "type", "links", "relationships"]
    response = api.get(f"{ACCOUNTS}/{account_id}", params={"fields[accounts]": "id"})
    assert response.status_code == 200
    assert list(response.json()["data"]) == ["id", "type", "links"]


def test_fields_limit_included_contractors(api: Api, contractor_id: int) -> None:
    assert api.post(ACCOUNTS, account_body(contractor_id)).status_code == 201
    response = api.get(ACCOUNTS, params={"include": "contractor", "fields[contractors]": "name"})
    assert response.status_code == 200
    document = response.json()
    assert "attributes" in document["data"][0]
    [contractor] = document["included"]
    assert_document(
        contractor,
        {
            "id": str(contractor_id),
            "type": "contractors",
            "links": {"self": f"{BASE_URL}{PREFIX}/contractors/{contractor_id}"},
            "attributes": {"name": contractor["attributes"]["name"]},
        },
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"fields[accounts]": "foo"},
            error("104", "Invalid field", "foo is not a valid field for accounts."),
        ),
        (
            {"fields[accounts]": "name,min_balance"},
            error("104", "Invalid field", "min_balance is not a valid field for accounts."),
        ),
        (
            {"fields[accounts]": ""},
            error("104", "Invalid field", "nil is not a valid field for accounts."),
        ),
        (
            {"fields[contractors]": "smtp_connection"},
            error("104", "Invalid field", "smtp_connection is not a valid field for contractors."),
        ),
        (
            {"fields[invoice_templates]": "name"},
            error("101", "Invalid resource", "invoice_templates is not a valid resource."),
        ),
        ({"fields": "name"}, error("119", "Invalid field format", "Fields must specify a type.")),
    ],
)
def test_fields_errors(api: Api, params: dict[str, str], expected: dict[str, str]) -> None:
    response = api.get(ACCOUNTS, params=params)
    assert response.status_code == 400
    assert response.json() == {"errors": [expected]}


# -- §0.5 error precedence ----------------------------------------------------------------

INCLUDE_FOO = error("112", "Invalid field", "foo is not a valid relationship of accounts")
SIZE_0 = page_error("0 is not a valid value for size page parameter.")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # sort raises: what was collected before is dropped
        (
            "include=foo&sort=bar",
            [
                error(
                    "114", "Invalid sort criteria", "bar is not a valid sort criteria for accounts"
                )
            ],
        ),
        (
            "filter[zzz]=1&sort=bar",
            [
                error(
                    "114", "Invalid sort criteria", "bar is not a valid sort criteria for accounts"
                )
            ],
        ),
        # include, filter names and page are collected, in the parser's order
        ("include=foo&page[size]=0", [INCLUDE_FOO, SIZE_0]),
        ("page[size]=0&include=foo", [INCLUDE_FOO, SIZE_0]),
        (
            "page[size]=0&filter[zzz]=1&include=foo",
            [INCLUDE_FOO, error("102", "Filter not allowed", "zzz is not allowed."), SIZE_0],
        ),
        # fields raises first and hides everything
        (
            "include=foo&sort=bar&page[size]=0&filter[zzz]=1&fields[accounts]=nope",
            [error("104", "Invalid field", "nope is not a valid field for accounts.")],
        ),
        # filter values (107) are checked only once the parameters parsed cleanly
        ("filter[name_eq]=a,b&page[size]=0", [SIZE_0]),
        ("filter[name_eq]=a,b&include=foo", [INCLUDE_FOO]),
        (
            "filter[name_eq]=a,b&sort=bar",
            [
                error(
                    "114", "Invalid sort criteria", "bar is not a valid sort criteria for accounts"
                )
            ],
        ),
        (
            "filter[name_eq]=a,b&sort=name",
            [error("107", "Invalid filter value", "a,b is not a valid value for name_eq.")],
        ),
    ],
)
def test_parameter_errors_follow_the_parser_order(
    api: Api, query: str, expected: list[dict[str, str]]
) -> None:
    response = api.get(f"{ACCOUNTS}?{query}")
    assert response.status_code == 400
    assert response.json() == {"errors": expected}


# -- query budgets (DESIGN: a request does a fixed number of queries) ------------------------


def count_queries(query_log: QueryLog, send: Callable[[], httpx.Response]) -> int:
    """Queries of one request, once every pooled connection has served it (statements
    prepared, types introspected, per-process caches filled)."""
    for _ in range(6):
        assert send().status_code in (200, 201)
    query_log.reset()
    response = send()
    assert response.status_code in (200, 201), response.text
    return query_log.count


def _bulk_accounts(db: Db, count: int) -> None:
    """`count` accounts, each with its own contractor, arranged in SQL."""
    db.execute(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " SELECT 'bulk' || n, true, true, false FROM generate_series(1, $1) n",
        count,
    )
    db.execute(
        "INSERT INTO accounts (contractor_id, name, currency_id, currency_name)"
        " SELECT c.id, 'bulk-account-' || c.id, 0, 'USD' FROM contractors c"
        " WHERE c.name LIKE 'bulk%'"
    )


def test_a_page_of_50_with_contractors_runs_as_many_queries_as_a_page_of_1(
    api: Api, db: Db, query_log: QueryLog
) -> None:
    _bulk_accounts(db, 50)

    def page(size: int) -> Callable[[], httpx.Response]:
        return lambda: api.get(ACCOUNTS, params={"include": "contractor", "page[size]": size})

    one = count_queries(query_log, page(1))
    fifty = count_queries(query_log, page(50))
    assert len(api.get(ACCOUNTS, params={"include": "contractor"}).json()["included"]) == 50
    assert fifty == one
    # one more query than a plain index: the contractors, fetched once for the page
    assert one <= INDEX_QUERY_BUDGET + 1


def test_show_with_include_runs_a_fixed_number_of_queries(
    api: Api, make_account: Callable[..., dict[str, Any]], query_log: QueryLog
) -> None:
    account_id = make_account()["id"]
    path = f"{ACCOUNTS}/{account_id}"
    plain = count_queries(query_log, lambda: api.get(path))
    included = count_queries(query_log, lambda: api.get(path, params={"include": "contractor"}))
    assert included == plain + 1


def test_index_query_budget(api: Api, db: Db, query_log: QueryLog) -> None:
    _bulk_accounts(db, 5)
    assert count_queries(query_log, lambda: api.get(ACCOUNTS)) <= INDEX_QUERY_BUDGET


def test_show_query_budget(
    api: Api, make_account: Callable[..., dict[str, Any]], query_log: QueryLog
) -> None:
    account_id = make_account()["id"]
    path = f"{ACCOUNTS}/{account_id}"
    assert count_queries(query_log, lambda: api.get(path)) <= SHOW_QUERY_BUDGET


def test_create_query_budget(api: Api, contractor_id: int, query_log: QueryLog) -> None:
    names = itertools.count(1)

    def create() -> httpx.Response:
        body = account_body(
            contractor_id,
            name=f"budget{next(names)}",
            **{"balance-low-threshold": 1, "balance-high-threshold": 2, "invoice-period-id": 2},
        )
        return api.post(ACCOUNTS, body)

    assert count_queries(query_log, create) <= CREATE_QUERY_BUDGET


def test_update_query_budget(
    api: Api, make_account: Callable[..., dict[str, Any]], query_log: QueryLog
) -> None:
    account_id = make_account()["id"]
    values = itertools.count(1)

    def update() -> httpx.Response:
        body = {
            "data": {
                "type": "accounts",
                "id": account_id,
                "attributes": {"max-balance": next(values), "balance-high-threshold": 100},
            }
        }
        return api.patch(f"{ACCOUNTS}/{account_id}", body)

    assert count_queries(query_log, update) <= UPDATE_QUERY_BUDGET


def test_update_sending_read_only_values_back_costs_one_statement(
    api: Api, make_account: Callable[..., dict[str, Any]], query_log: QueryLog
) -> None:
    # issue 8: a read-only value sent back is compared with the row read under its lock; an
    # update without one reads nothing more
    account_id = make_account()["id"]
    values = itertools.count(1)

    def update(**read_only: Any) -> Callable[[], httpx.Response]:
        def send() -> httpx.Response:
            attributes = {"max-balance": next(values), **read_only}
            body = {"data": {"type": "accounts", "id": account_id, "attributes": attributes}}
            return api.patch(f"{ACCOUNTS}/{account_id}", body)

        return send

    plain = count_queries(query_log, update())
    sent_back = count_queries(query_log, update(balance="0.0", currency="USD"))
    assert sent_back == plain + 1
    # with If-Match the row is read under its lock anyway: the comparison costs nothing more
    tag = api.get(f"{ACCOUNTS}/{account_id}").headers["etag"]

    def conditional(**attributes: Any) -> Callable[[], httpx.Response]:
        def send() -> httpx.Response:
            body = {"data": {"type": "accounts", "id": account_id, "attributes": attributes}}
            return api.patch(f"{ACCOUNTS}/{account_id}", body, headers={"If-Match": tag})

        return send

    assert count_queries(query_log, conditional(balance=0)) == count_queries(
        query_log, conditional()
    )
