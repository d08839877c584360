"""Hostile numbers (issue 6): exponents past Decimal's range, 16,384 fractional digits,
integers past Python's 4,300-digit int() limit, as JSON numbers and as strings, in every
numeric attribute of every writable resource, in every money endpoint and in every numeric
filter. The answer is always the contract's error: 422 `is out of range` on the attribute
(§3), 400 107 on the filter (§0.4); never a 500, and nothing written.

The attributes and filters are read from the resource registry, so a numeric attribute or
filter added later is covered without touching this file (and fails here until it is safe).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from accounts_api.auth import tokens
from accounts_api.jsonapi.declaration import Attribute, FilterFamily, Resource, ValueType
from accounts_api.resources import RESOURCES
from accounts_api.resources.balances import BALANCE_CORRECTION, BALANCES
from tests.api.conftest import account_body
from tests.conftest import JSONAPI, SECRET, Api, Db, empty_database

PREFIX = "/api/rest/admin"
PLACEHOLDER = "@hostile@"

# Numbers no attribute or filter takes, each sent as a JSON number and as a string. What they
# did before issue 6 is noted: the same one was often a 500 in one place and 422 in another.
HOSTILE = {
    # past Decimal's exponent range (999,999): abs() overflowed in validation (500)
    "exponent": "1e1000000",
    # its mirror: refused already, for its fractional digits
    "tiny-exponent": "1e-1000000",
    # past what Decimal() itself takes: the body decoder raised (500)
    "negative-exponent-past-decimal": "-1e99999999999999999999",
    # a zero passed every check, then PostgreSQL refused its exponent (500)
    "zero-with-exponent": "0e1000000",
    # more fractional digits than numeric holds (500 in a filter)
    "fraction-16384-digits": "0." + "1" * 16_384,
    # past Python's int() limit: the body decoder refused the JSON number as invalid JSON (400)
    "integer-5000-digits": "1" * 5_000,
    "integer-100k-digits": "-" + "9" * 100_000,
    "all-at-once": "9" * 5_000 + "." + "9" * 5_000 + "e-1000000",
}
# a query string past 16 KiB is refused whole (414, tests/test_request_bounds.py): what a
# filter can carry is checked with literals that fit
IN_A_URL = {name: literal for name, literal in HOSTILE.items() if len(literal) < 15_000}
IN_A_URL["fraction-15000-digits"] = "0." + "1" * 15_000
# twelve attributes of 100,000 digits are more than a body may carry (413)
IN_EVERY_ATTRIBUTE = {name: literal for name, literal in HOSTILE.items() if len(literal) < 80_000}
OUT_OF_RANGE = "is out of range"
NOT_INCLUDED = "is not included in the list"
# inclusion rules answer in their own words: a number outside the list, however far outside
INCLUSION = {("accounts", "invoice-period-id"), ("currencies", "rate-provider-id")}
NUMERIC = {ValueType.DECIMAL, ValueType.INTEGER, ValueType.FLOAT}


def with_literal(document: dict[str, Any], literal: str, *, as_string: bool) -> bytes:
    """The document with every PLACEHOLDER replaced by `literal` as a JSON number (json.dumps
    cannot write these) or as a JSON string."""
    replacement = json.dumps(literal) if as_string else literal
    return json.dumps(document).replace(json.dumps(PLACEHOLDER), replacement).encode()


def invalid(key: str, message: str, member: str = "attributes") -> dict[str, Any]:
    return {
        "title": message,
        "detail": f"{key} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/{member}/{key}"},
        "status": "422",
    }


_TABLES = (
    "accounts",
    "account_balance_notification_settings",
    "contractors",
    "smtp_connections",
    "currencies",
    "payments",
    "transactions",
    "ledger_entries",
    "audit_log",
)
# every row a rejected write could touch, money included, in one round trip
_SNAPSHOT = "SELECT json_build_object({})::text".format(
    ", ".join(f"'{table}', (SELECT json_agg(t ORDER BY t.id) FROM {table} t)" for table in _TABLES)
)


class Snapshots:
    """Takes snapshots on one connection kept open for the module: a few hundred tests each
    take one, and a connection per snapshot would be most of their time."""

    def __init__(self, url: str):
        self._runner = asyncio.Runner()
        self._connection: asyncpg.Connection = self._runner.run(asyncpg.connect(url))

    def take(self) -> str:
        text: str = self._runner.run(self._connection.fetchval(_SNAPSHOT))
        return text

    def close(self) -> None:
        self._runner.run(self._connection.close())
        self._runner.close()


@dataclass
class World:
    """A contractor, an account with thresholds and an external id, a currency, a payment, a
    transaction and an SMTP connection, shared by this module's tests: none of them may change
    any of it."""

    api: Api
    db: Db
    snapshots: Snapshots
    contractor: str
    account: str
    currency: str
    smtp_connection: str
    baseline: str

    def send(self, method: str, path: str, content: bytes) -> httpx.Response:
        return self.api.request(method, path, content=content)

    def unchanged(self) -> bool:
        return self.snapshots.take() == self.baseline


def build_world(api: Api, db: Db, snapshots: Snapshots) -> World:
    empty_database(db)

    def created(path: str, document: dict[str, Any]) -> str:
        response = api.post(f"{PREFIX}/{path}", document)
        assert response.status_code == 201, response.text
        key: str = response.json()["data"]["id"]
        return key

    contractor = created("contractors", contractor_document("hostile", **{"external-id": 5}))
    thresholds = {"balance-low-threshold": 1, "balance-high-threshold": 2}
    account = created(
        "accounts",
        account_body(int(contractor), name="hostile", **{"external-id": 7}, **thresholds),
    )
    currency = created("currencies", currency_document("EUR"))
    created("payments", money_document("payments", account, "10"))
    created("transactions", money_document("transactions", account, "3"))
    smtp_connection = created("smtp-connections", smtp_document("hostile"))
    return World(
        api, db, snapshots, contractor, account, currency, smtp_connection, snapshots.take()
    )


@pytest.fixture(scope="module")
def worlds(
    app_client: TestClient, admin_id: int, db: Db, database_url: str
) -> Iterator[list[World]]:
    snapshots = Snapshots(database_url)
    try:
        yield [build_world(Api(app_client, tokens.issue(admin_id, SECRET, None)), db, snapshots)]
    finally:
        snapshots.close()
        empty_database(db)


@pytest.fixture
def world(worlds: list[World]) -> World:
    """The shared state, rebuilt only when a failed test left it changed."""
    current = worlds[0]
    if not current.unchanged():
        worlds[0] = build_world(current.api, current.db, current.snapshots)
    return worlds[0]


def contractor_document(name: str, **attributes: Any) -> dict[str, Any]:
    values = {"name": name, "enabled": True, "vendor": True, "customer": False, **attributes}
    return {"data": {"type": "contractors", "attributes": values}}


def currency_document(name: str, **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "currencies", "attributes": {"name": name, "rate": 1.2, **attributes}}}


def smtp_document(name: str) -> dict[str, Any]:
    values = {"name": name, "host": "smtp.example.com", "from-address": "billing@example.com"}
    return {"data": {"type": "smtp-connections", "attributes": values}}


def money_document(kind: str, account: str, amount: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": kind,
            "attributes": {"amount": amount},
            "relationships": {"account": {"data": {"type": "accounts", "id": account}}},
        }
    }


# -- attributes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One way a number reaches one attribute: a create, an update or a balance request."""

    resource: Resource
    attribute: Attribute
    method: str

    def __str__(self) -> str:
        return f"{self.method}-{self.resource.type}-{self.attribute.key}"

    @property
    def message(self) -> str:
        return (
            NOT_INCLUDED
            if (self.resource.type, self.attribute.key) in INCLUSION
            else (OUT_OF_RANGE)
        )

    def request(self, world: World) -> tuple[str, str, dict[str, Any]]:
        """Method, path and a document whose only unusual value is this attribute's."""
        key, kind = self.attribute.key, self.resource.type
        if self.method == "PUT":
            # contract §5.8: the balance is addressed by the external id, §5.9 the correction
            # by the account id
            path, key_id = {
                "balances": (f"{PREFIX}/accounts/7/balance", "7"),
                "balance-correction": (
                    f"{PREFIX}/accounts/{world.account}/balance-correction",
                    world.account,
                ),
            }[kind]
            data = {"type": kind, "id": key_id, "attributes": {key: PLACEHOLDER}}
            return "PUT", path, {"data": data}
        if self.method == "PATCH":
            member = {
                "accounts": world.account,
                "contractors": world.contractor,
                "currencies": world.currency,
                "smtp-connections": world.smtp_connection,
            }[kind]
            data = {"type": kind, "id": member, "attributes": {key: PLACEHOLDER}}
            return "PATCH", f"{PREFIX}/{self.resource.path}/{member}", {"data": data}
        document = {
            "accounts": lambda: account_body(int(world.contractor), name="new"),
            "contractors": lambda: contractor_document("new"),
            "currencies": lambda: currency_document("GBP"),
            "smtp-connections": lambda: smtp_document("new"),
            "payments": lambda: money_document("payments", world.account, "1"),
            "transactions": lambda: money_document("transactions", world.account, "1"),
        }[kind]()
        document["data"]["attributes"][key] = PLACEHOLDER
        return "POST", f"{PREFIX}/{self.resource.path}", document


def attribute_targets() -> list[Target]:
    targets = []
    for resource in (*RESOURCES, BALANCES, BALANCE_CORRECTION):
        if resource.path == "invoice-templates":
            continue  # the plural alias of invoice-template
        for attribute in resource.attributes:
            if attribute.type not in NUMERIC:
                continue
            if resource in (BALANCES, BALANCE_CORRECTION):
                if attribute.updatable:
                    targets.append(Target(resource, attribute, "PUT"))
                continue
            if resource.writer.create and attribute.creatable:
                targets.append(Target(resource, attribute, "POST"))
            if resource.writer.update and attribute.updatable:
                targets.append(Target(resource, attribute, "PATCH"))
    return targets


TARGETS = attribute_targets()


def test_every_numeric_attribute_and_money_endpoint_is_a_target() -> None:
    # the registry walk must find what the contract lists; if it found nothing, the
    # parametrised test below would pass checking nothing
    assert {str(target) for target in TARGETS} >= {
        "POST-accounts-vat",
        "PATCH-accounts-max-balance",
        "PATCH-accounts-balance-low-threshold",
        "POST-accounts-total-capacity",
        "PATCH-contractors-external-id",
        "POST-currencies-rate",
        "PATCH-smtp-connections-port",
        "POST-payments-amount",
        "POST-transactions-amount",
        "PUT-balances-balance",
        "PUT-balance-correction-correction",
    }


@pytest.mark.parametrize("literal", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_a_hostile_number_is_422_on_its_attribute(
    world: World, target: Target, literal: str
) -> None:
    method, path, document = target.request(world)

    for as_string in (False, True):
        response = world.send(method, path, with_literal(document, literal, as_string=as_string))

        assert response.status_code == 422, (as_string, response.text[:500])
        assert response.headers["content-type"] == JSONAPI
        assert response.json()["errors"] == [invalid(target.attribute.key, target.message)]
    assert world.unchanged()


# contract §3.1: the account's numeric rules in their order (3, 8, 9, 10, 11, 12, 13, 16, 19)
ACCOUNT_ORDER = [
    ("min-balance", OUT_OF_RANGE),
    ("max-balance", OUT_OF_RANGE),
    ("termination-capacity", OUT_OF_RANGE),
    ("origination-capacity", OUT_OF_RANGE),
    ("total-capacity", OUT_OF_RANGE),
    ("external-id", OUT_OF_RANGE),
    ("vat", OUT_OF_RANGE),
    ("destination-rate-limit", OUT_OF_RANGE),
    ("max-call-duration", OUT_OF_RANGE),
    ("invoice-period-id", NOT_INCLUDED),
    ("balance-low-threshold", OUT_OF_RANGE),
    ("balance-high-threshold", OUT_OF_RANGE),
]


@pytest.mark.parametrize("literal", IN_EVERY_ATTRIBUTE.values(), ids=IN_EVERY_ATTRIBUTE.keys())
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_hostile_numbers_everywhere_answer_in_the_contracts_order(
    world: World, method: str, literal: str
) -> None:
    # sent in reverse: the order of the answer is the rules', not the body's
    attributes = {key: PLACEHOLDER for key, _ in reversed(ACCOUNT_ORDER)}
    if method == "POST":
        path, document = f"{PREFIX}/accounts", account_body(int(world.contractor), name="new")
        document["data"]["attributes"].update(attributes)
    else:
        path = f"{PREFIX}/accounts/{world.account}"
        document = {"data": {"type": "accounts", "id": world.account, "attributes": attributes}}

    for as_string in (False, True):
        response = world.send(method, path, with_literal(document, literal, as_string=as_string))

        assert response.status_code == 422, response.text[:500]
        assert response.json()["errors"] == [
            invalid(key, message) for key, message in ACCOUNT_ORDER
        ]
    assert world.unchanged()


@pytest.mark.parametrize("literal", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_payment_without_an_account_keeps_the_contracts_order(
    world: World, literal: str
) -> None:
    # contract §5.6: account, currency, amount, currency-id
    document = {"data": {"type": "payments", "attributes": {"amount": PLACEHOLDER}}}

    for as_string in (False, True):
        response = world.send(
            "POST", f"{PREFIX}/payments", with_literal(document, literal, as_string=as_string)
        )

        assert response.status_code == 422, response.text[:500]
        assert response.json()["errors"] == [
            invalid("account", "must exist", "relationships"),
            invalid("currency", "must exist"),
            invalid("amount", OUT_OF_RANGE),
            invalid("currency-id", "can't be blank"),
        ]
    assert world.unchanged()


@pytest.mark.parametrize("literal", ["1" * 5_000, "1e1000000"], ids=["5000-digits", "exponent"])
def test_a_hostile_relationship_id_is_a_contractor_that_does_not_exist(
    world: World, literal: str
) -> None:
    linkage = {"data": {"type": "contractors", "id": PLACEHOLDER}}
    create = account_body(int(world.contractor), name="new")
    create["data"]["relationships"]["contractor"] = linkage
    integer = literal.isdigit()
    requests = [
        ("POST", f"{PREFIX}/accounts", create),
        ("PATCH", f"{PREFIX}/accounts/{world.account}/relationships/contractor", linkage),
    ]

    for method, path, document in requests:
        for as_string in (False, True):
            content = with_literal(document, literal, as_string=as_string)
            response = world.send(method, path, content)

            if integer:
                # a key no column holds: no such contractor (contract §3.1 #1)
                assert response.status_code == 422, response.text[:500]
                assert response.json()["errors"] == [
                    invalid("contractor", "must exist", "relationships")
                ]
            else:
                # contract §0.4, 103: not an integer at all
                assert response.status_code == 400, response.text[:500]
                assert response.json()["errors"][0]["code"] == "103"
    assert world.unchanged()


def test_numbers_at_the_edge_of_the_range_still_move_money(world: World) -> None:
    # the bounds refuse no amount they accepted before: 1e30 and 100 fractional digits
    # (then the world is rebuilt: this test changes it on purpose)
    for literal in ("1e30", "-1e30", "0." + "0" * 99 + "1"):
        document = money_document("transactions", world.account, PLACEHOLDER)
        response = world.send(
            "POST", f"{PREFIX}/transactions", with_literal(document, literal, as_string=False)
        )
        assert response.status_code == 201, response.text


# -- filters ---------------------------------------------------------------------------------

# one predicate per family; `in` lists are checked separately below
PREDICATES = {FilterFamily.NUMBER: "lteq", FilterFamily.FOREIGN_KEY: "not_eq"}
PREDICATES[FilterFamily.DATETIME] = "gteq"


@dataclass(frozen=True)
class NumericFilter:
    resource: Resource
    name: str

    def __str__(self) -> str:
        return f"{self.resource.type}-{self.name}"

    @property
    def path(self) -> str:
        return f"{PREFIX}/{self.resource.path}"


def numeric_filters(predicate: str | None = None) -> list[NumericFilter]:
    """Every number, integer and date filter of every resource: ransack ones with the family's
    predicate (or `predicate`), and the relationship filters (`contractor.id`)."""
    found = []
    for resource in RESOURCES:
        if resource.path == "invoice-templates":
            continue
        for attribute in (*resource.attributes, *resource.filter_only):
            if attribute.filter in PREDICATES:
                suffix = predicate or PREDICATES[attribute.filter]
                found.append(NumericFilter(resource, f"{attribute.name}_{suffix}"))
        if predicate is None:
            for relationship in resource.relationships:
                if relationship.filterable:
                    found.append(NumericFilter(resource, f"{relationship.name}.id"))
    return found


FILTERS = numeric_filters()
LIST_FILTERS = numeric_filters("in")


def test_every_numeric_filter_family_is_covered() -> None:
    names = {str(numeric) for numeric in FILTERS}
    assert names >= {
        "accounts-balance_lteq",
        "accounts-balance_low_threshold_lteq",
        "accounts-total_capacity_lteq",
        "accounts-currency_id_not_eq",
        "accounts-contractor.id",
        "accounts-invoice_template.id",
        "payments-amount_lteq",
        "payments-id_lteq",
        "payments-created_at_gteq",
        "payments-account.id",
        "transactions-service_id_not_eq",
        "currencies-rate_lteq",
        "contractors-external_id_lteq",
        "ledger-entries-created_at_gteq",
    }


def not_valid(value: str, name: str) -> list[dict[str, Any]]:
    detail = f"{value} is not a valid value for {name}."
    return [{"title": "Invalid filter value", "detail": detail, "code": "107", "status": "400"}]


@pytest.mark.parametrize("literal", IN_A_URL.values(), ids=IN_A_URL.keys())
@pytest.mark.parametrize("numeric", FILTERS, ids=str)
def test_a_hostile_number_in_a_filter_is_107(
    worlds: list[World], numeric: NumericFilter, literal: str
) -> None:
    response = worlds[0].api.get(numeric.path, params={f"filter[{numeric.name}]": literal})

    assert response.status_code == 400, response.text[:500]
    assert response.json()["errors"] == not_valid(literal, numeric.name)


@pytest.mark.parametrize("literal", IN_A_URL.values(), ids=IN_A_URL.keys())
@pytest.mark.parametrize("numeric", LIST_FILTERS, ids=str)
def test_a_hostile_number_in_a_list_filter_is_107(
    worlds: list[World], numeric: NumericFilter, literal: str
) -> None:
    response = worlds[0].api.get(numeric.path, params={f"filter[{numeric.name}]": f"1,{literal}"})

    assert response.status_code == 400, response.text[:500]
    assert response.json()["errors"] == not_valid(f"1,{literal}", numeric.name)


DATES = [numeric for numeric in FILTERS if numeric.name.endswith("_at_gteq")]


@pytest.mark.parametrize("numeric", DATES, ids=str)
def test_a_timestamp_with_15000_fractional_digits_is_107(
    worlds: list[World], numeric: NumericFilter
) -> None:
    value = "2024-01-01T00:00:00." + "1" * 15_000

    response = worlds[0].api.get(numeric.path, params={f"filter[{numeric.name}]": value})

    assert response.status_code == 400, response.text[:500]
    assert response.json()["errors"] == not_valid(value, numeric.name)
