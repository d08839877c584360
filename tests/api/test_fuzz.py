"""Hostile input on every route (issue 6): hypothesis-generated paths, query strings, headers
and bodies, authenticated or not. Whatever comes in, the answer is never a 5xx, and every
4xx carries an error document (JSON:API on the API, JSON on /auth).

Bounded: a fixed number of examples per route and method, derandomized so that CI runs the
same requests every time (a failure is reproducible from its printed example).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from accounts_api.app import create_app
from accounts_api.jsonapi.declaration import FilterFamily
from accounts_api.resources import REGISTRY
from accounts_api.resources.balances import BALANCE_CORRECTION, BALANCES
from accounts_api.settings import Settings
from tests.conftest import JSONAPI, ROOT, SECRET, Api, Db, validate_document

# more for a deeper search by hand: ACCOUNTS_API_FUZZ_EXAMPLES=500 make test
EXAMPLES_PER_ROUTE = int(os.environ.get("ACCOUNTS_API_FUZZ_EXAMPLES", "12"))

# numbers and texts that broke, or could break, parsing and arithmetic somewhere
HOSTILE_TEXT = [
    "",
    " ",
    "0",
    "-1",
    "1e1000000",
    "-1e-1000000",
    "1" * 5000,
    "0." + "1" * 16384,
    "NaN",
    "Infinity",
    "9" * 20,
    "\x00",
    "%",
    "_\\",
    "null",
    "true",
    "2024-02-30T25:61:00Z",
    "0001-01-01T00:00:00+14:00",
    "a," * 150,
    '"a,b",c',
    "USD",
    "UTC",
]
HEADER_SAFE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def _scalars() -> st.SearchStrategy[Any]:
    hostile = st.sampled_from(HOSTILE_TEXT)
    return st.one_of(
        hostile,
        st.integers(min_value=-1000, max_value=1000),
        hostile,
        st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
    )


def _member_names() -> list[str]:
    names = {"data", "type", "id", "attributes", "relationships", "links", "meta", "token"}
    names |= {"auth", "username", "password"}
    for resource in REGISTRY.values():
        names.add(resource.type)
        names |= {attribute.key for attribute in resource.attributes}
        names |= {relationship.key for relationship in resource.relationships}
    return sorted(names)


MEMBER_NAMES = _member_names()
# the resources requests write, the balance endpoints' included (they are not in the registry)
WRITTEN = {**REGISTRY, BALANCES.type: BALANCES, BALANCE_CORRECTION.type: BALANCE_CORRECTION}

JSON_VALUES = st.recursive(
    _scalars(),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(MEMBER_NAMES), children, max_size=6),
    ),
    max_leaves=20,
)


def _mostly(value: Any, otherwise: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`value` (a value or a strategy) three times in four, else a draw of `otherwise`."""
    usual = value if isinstance(value, st.SearchStrategy) else st.just(value)
    return st.one_of(usual, usual, usual, otherwise)


def _resource_document(resource_type: str, ids: list[str]) -> st.SearchStrategy[Any]:
    """A body shaped like a write of `resource_type`, with hostile values inside; its
    linkage often names existing records, so that writes get past their lookups."""
    resource = WRITTEN.get(resource_type)
    attributes = [a.key for a in resource.attributes] if resource else ["name"]
    writable = [a.key for a in resource.attributes if a.updatable] if resource else []
    writable = writable or attributes
    relationships = {r.key: r.type for r in resource.relationships} if resource else {}
    some_id = st.one_of(st.sampled_from(ids), _scalars())
    by_type = {"accounts": ids[0], "contractors": ids[1], "payments": ids[2]}
    linkage = st.fixed_dictionaries(
        {
            key: st.fixed_dictionaries(
                {
                    "data": st.fixed_dictionaries(
                        {
                            "type": st.just(linked_type),
                            "id": _mostly(by_type[linked_type], some_id)
                            if linked_type in by_type
                            else some_id,
                        }
                    )
                }
            )
            for key, linked_type in relationships.items()
        }
    )
    return st.fixed_dictionaries(
        {
            "data": st.fixed_dictionaries(
                {
                    "type": _mostly(resource_type, st.sampled_from(MEMBER_NAMES)),
                    "attributes": st.dictionaries(
                        _mostly(st.sampled_from(writable), st.sampled_from(attributes)),
                        _scalars(),
                        min_size=1,
                        max_size=6,
                    ),
                    "relationships": _mostly(
                        linkage,
                        st.dictionaries(st.sampled_from(MEMBER_NAMES), JSON_VALUES, max_size=3),
                    ),
                },
                optional={"id": _mostly(ids[0], some_id)},
            )
        }
    )


def _filter_names() -> list[str]:
    names = {"filter", "filter[]", "filter[id]", "filter[contractor.id]", "filter[account.id]"}
    for resource in REGISTRY.values():
        for attribute in (*resource.attributes, *resource.filter_only):
            family: FilterFamily | None = attribute.filter
            for predicate in family.predicates if family else ():
                names.add(f"filter[{attribute.name}_{predicate}]")
        names |= {f"filter[{name}]" for name in resource.plain_filters}
    return sorted(names)


QUERY_NAMES = [
    *_filter_names(),
    "sort",
    "include",
    "page[number]",
    "page[size]",
    "page",
    "fields[accounts]",
    "fields[contractors]",
    "fields",
    "token",
    "filter[name_in][]",
]
QUERIES = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(QUERY_NAMES), st.text(max_size=12)),
        st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40)),
    ),
    max_size=5,
)
MEDIA_TYPES = st.one_of(
    st.sampled_from(
        [
            JSONAPI,
            f"{JSONAPI}; charset=utf-8",
            "application/json",
            "*/*",
            "a" + " " * 3000 + "b",
            "a," * 3000 + '"',
            '"' * 2000,
        ]
    ),
    st.text(HEADER_SAFE, max_size=40),
)
KEYS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=20),
)


_KEY_NUMBERS = itertools.count()


def _routes() -> list[tuple[str, str]]:
    settings_ = Settings(
        database_url="postgresql://unused/unused",
        data_dir=ROOT / "var" / "test-data",
        token_lifetime=None,
        pool_size=1,
        secret_key_env=SECRET,
    )
    pairs = []
    for route in create_app(settings_).routes:
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            pairs.append((route.path, method))
    return pairs


def _path(template: str, key: str) -> str:
    for parameter in ("{key:path}", "{key}", "{any}"):
        template = template.replace(parameter, quote(key, safe="") or "%20")
    return template


def _resource_type_of(template: str) -> str:
    segment = template.removeprefix("/api/rest/admin/").split("/")[0]
    if template.endswith("/balance"):
        return "balances"
    if template.endswith("/balance-correction"):
        return "balance-correction"
    return "invoice-templates" if segment == "invoice-template" else segment


@pytest.fixture
def existing_ids(make_account: Callable[..., dict[str, Any]], db: Db) -> list[str]:
    """An account with money on it (external id = id), its contractor and a payment."""
    account = int(make_account(name="fuzzed")["id"])
    db.execute("UPDATE accounts SET external_id = id WHERE id = $1", account)
    db.set_balance(account, 100)
    contractor = db.fetchval("SELECT contractor_id FROM accounts WHERE id = $1", account)
    payment = db.fetchval(
        "INSERT INTO payments (account_id, amount, currency_id, status_id)"
        " VALUES ($1, 1, 0, 20) RETURNING id",
        account,
    )
    return [str(account), str(contractor), str(payment)]


@pytest.mark.parametrize(("template", "method"), _routes())
@settings(
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_requests_never_answer_5xx(
    api: Api, existing_ids: list[str], template: str, method: str, data: st.DataObject
) -> None:
    # mostly well-formed around the hostile part, so that requests reach the deep code
    path = _path(template, data.draw(st.one_of(st.sampled_from(existing_ids), KEYS), label="key"))
    query = data.draw(QUERIES, label="query")
    headers = {"Accept": data.draw(_mostly(JSONAPI, MEDIA_TYPES), label="accept")}
    if data.draw(_mostly(True, st.just(False)), label="authenticated"):
        headers["Authorization"] = api.token
    if method in ("POST", "PATCH", "PUT"):
        headers["Content-Type"] = data.draw(_mostly(JSONAPI, MEDIA_TYPES), label="content-type")
    if data.draw(st.booleans(), label="keyed"):
        # fresh keys, or a replay of the first would answer every later example
        unique = f"fuzz-{next(_KEY_NUMBERS)}"
        headers["Idempotency-Key"] = data.draw(
            _mostly(unique, st.text(HEADER_SAFE, max_size=300)), label="idempotency key"
        )
    document = _resource_document(_resource_type_of(template), existing_ids).map(json.dumps)
    body = data.draw(
        st.one_of(
            document,
            document,
            st.none(),
            JSON_VALUES.map(json.dumps),
            st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
        ),
        label="body",
    )
    url = f"{path}?{urlencode(query)}" if query else path
    # the client itself refuses URLs past 64 KiB (the server's limit is 16 KiB of query)
    assume(len(url) < 60_000)

    response = api.client.request(
        method, url, content=body.encode("latin-1", "replace") if body else None, headers=headers
    )

    assert response.status_code < 500, response.text
    if response.status_code < 400 or not response.content:
        return
    document = response.json()
    assert document["errors"], document
    assert document["errors"][0]["status"] == str(response.status_code)
    if response.headers["content-type"] == JSONAPI:
        validate_document(response)
    else:
        assert template == "/api/rest/admin/auth", response.headers["content-type"]
        assert response.headers["content-type"].startswith("application/json")
