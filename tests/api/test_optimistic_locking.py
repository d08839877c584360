"""Optimistic locking on accounts (our extension, docs/compatibility.md): every single-account
response carries a strong ETag of the stored account, which changes with any attribute,
relationship or the balance; If-Match on account writes and on the balance endpoints is
compared with it (strong comparison) and a mismatch is 412 with nothing changed. Other
resources keep Rack's weak ETag of the body (contract §6.1, §6.2)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tests.api.conftest import account_body
from tests.conftest import JSONAPI, Api, Db

PREFIX = "/api/rest/admin"
ACCOUNTS = f"{PREFIX}/accounts"
PAYMENTS = f"{PREFIX}/payments"
TRANSACTIONS = f"{PREFIX}/transactions"
EXTERNAL_ID = 900_000_000_700
OPENING = Decimal(100)
STRONG = re.compile(r'\A"[0-9a-f]{32}"\Z')
WEAK = re.compile(r'\AW/"[0-9a-f]{32}"\Z')
UNKNOWN_TAG = '"00000000000000000000000000000000"'
PRECONDITION_FAILED = {
    "errors": [
        {
            "title": "Precondition Failed",
            "detail": "The record has changed since the ETag given in If-Match;"
            " read it again and retry.",
            "code": "412",
            "status": "412",
        }
    ]
}

MakeAccount = Callable[..., dict[str, Any]]


@dataclass
class World:
    account_id: int
    payment_id: int
    contractor_id: int
    other_contractor_id: int

    @property
    def member(self) -> str:
        return f"{ACCOUNTS}/{self.account_id}"


@pytest.fixture
def world(
    api: Api,
    db: Db,
    make_account: MakeAccount,
    contractor_id: int,
    make_contractor: Callable[..., int],
) -> World:
    account_id = int(make_account(name="locked", **{"external-id": EXTERNAL_ID})["id"])
    db.set_balance(account_id, OPENING)
    paid = api.post(PAYMENTS, payment_body(account_id, "50"))
    assert paid.status_code == 201, paid.text
    return World(
        account_id, int(paid.json()["data"]["id"]), contractor_id, make_contractor(name="other")
    )


def payment_body(account_id: object, amount: str = "10") -> dict[str, Any]:
    return {
        "data": {
            "type": "payments",
            "attributes": {"amount": amount},
            "relationships": {"account": {"data": {"type": "accounts", "id": str(account_id)}}},
        }
    }


def account_update(account_id: int, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": "accounts", "id": str(account_id), "attributes": attributes}}


def current_tag(api: Api, world: World) -> str:
    response = api.get(world.member)
    assert response.status_code == 200, response.text
    tag: str = response.headers["etag"]
    return tag


TABLES = {
    "accounts": "t.id",
    "account_balance_notification_settings": "t.account_id",
    "payments": "t.id",
    "transactions": "t.id",
    "ledger_entries": "t.id",
    "audit_log": "t.id",
}


def state(db: Db) -> dict[str, str]:
    """One snapshot, on one connection, of the tables a write can change."""
    columns = ", ".join(
        f"(SELECT coalesce(json_agg(t ORDER BY {order}), '[]')::text FROM {table} t) AS {table}"
        for table, order in TABLES.items()
    )
    row = db.fetchrow(f"SELECT {columns}")
    assert row is not None
    return dict(row)


# -- the tag --------------------------------------------------------------------------------


def test_every_single_account_response_carries_the_same_strong_tag(
    api: Api, contractor_id: int
) -> None:
    created = api.post(ACCOUNTS, account_body(contractor_id, name="tagged"))
    assert created.status_code == 201, created.text
    member = f"{ACCOUNTS}/{created.json()['data']['id']}"
    paid = api.post(PAYMENTS, payment_body(created.json()["data"]["id"]))
    assert paid.status_code == 201, paid.text
    shown = api.get(member)
    related = api.get(f"{PAYMENTS}/{paid.json()['data']['id']}/account")

    assert STRONG.match(created.headers["etag"])
    assert STRONG.match(shown.headers["etag"])
    assert shown.headers["etag"] != created.headers["etag"]  # the payment moved the balance
    assert related.status_code == 200, related.text
    assert related.headers["etag"] == shown.headers["etag"]
    assert shown.headers["cache-control"] == "max-age=0, private, must-revalidate"

    patched = api.patch(member, account_update(int(created.json()["data"]["id"]), {"vat": "3"}))
    put = api.put(member, account_update(int(created.json()["data"]["id"]), {"vat": "4"}))

    assert patched.status_code == put.status_code == 200, put.text
    assert STRONG.match(patched.headers["etag"]) and STRONG.match(put.headers["etag"])
    assert len({shown.headers["etag"], patched.headers["etag"], put.headers["etag"]}) == 3
    assert api.get(member).headers["etag"] == put.headers["etag"]


def test_the_tag_is_that_of_the_stored_account_not_of_the_document(api: Api, world: World) -> None:
    tag = current_tag(api, world)
    renders = {
        "again": api.get(world.member),
        "another host": api.get(world.member, headers={"Host": "other.example.org"}),
    }
    # a document with included records or a sparse fieldset is not the record as stored:
    # it keeps the weak tag of its body, so a 304 never hides a changed included record
    partial = {
        "sparse fieldset": api.get(world.member, params={"fields[accounts]": "name"}),
        "include": api.get(world.member, params={"include": "contractor"}),
    }
    unchanged = api.patch(world.member, account_update(world.account_id, {"name": "locked"}))

    assert {name: r.headers["etag"] for name, r in renders.items()} == dict.fromkeys(renders, tag)
    for response in partial.values():
        digest = hashlib.sha256(response.content).hexdigest()[:32]
        assert response.headers["etag"] == f'W/"{digest}"'
    assert (
        renders["another host"]
        .json()["data"]["links"]["self"]
        .startswith("http://other.example.org/")
    )
    assert list(partial["sparse fieldset"].json()["data"]["attributes"]) == ["name"]
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.headers["etag"] == tag
    assert current_tag(api, world) == tag


def correction(api: Api, w: World, amount: str) -> Any:
    return api.patch(
        f"{ACCOUNTS}/{w.account_id}/balance-correction",
        {
            "data": {
                "type": "balance-correction",
                "id": str(w.account_id),
                "attributes": {"correction": amount},
            }
        },
    )


def absolute(api: Api, balance: str) -> Any:
    return api.put(
        f"{ACCOUNTS}/{EXTERNAL_ID}/balance",
        {"data": {"type": "balances", "id": str(EXTERNAL_ID), "attributes": {"balance": balance}}},
    )


def patch(api: Api, w: World, attributes: dict[str, Any]) -> Any:
    return api.patch(w.member, account_update(w.account_id, attributes))


CHANGES: dict[str, Callable[[Api, World], Any]] = {
    "payment": lambda api, w: api.post(PAYMENTS, payment_body(w.account_id)),
    "payment rollback": lambda api, w: api.post(f"{PAYMENTS}/{w.payment_id}/rollback"),
    "transaction": lambda api, w: api.post(
        TRANSACTIONS,
        {
            "data": {
                "type": "transactions",
                "attributes": {"amount": "1"},
                "relationships": {
                    "account": {"data": {"type": "accounts", "id": str(w.account_id)}}
                },
            }
        },
    ),
    "correction": lambda api, w: correction(api, w, "-0.01"),
    "absolute balance": lambda api, w: absolute(api, "7"),
    "name": lambda api, w: patch(api, w, {"name": "renamed"}),
    "min-balance": lambda api, w: patch(api, w, {"min-balance": "-10"}),
    "max-balance": lambda api, w: patch(api, w, {"max-balance": "1000"}),
    "vat": lambda api, w: patch(api, w, {"vat": "20"}),
    "destination-rate-limit": lambda api, w: patch(api, w, {"destination-rate-limit": "0.5"}),
    "max-call-duration": lambda api, w: patch(api, w, {"max-call-duration": 60}),
    "external-id": lambda api, w: patch(api, w, {"external-id": 123}),
    "uuid": lambda api, w: patch(api, w, {"uuid": "0b5f7a8e-3c1d-4d7e-9f3a-2b6c8d9e0f11"}),
    "origination-capacity": lambda api, w: patch(api, w, {"origination-capacity": 5}),
    "termination-capacity": lambda api, w: patch(api, w, {"termination-capacity": 5}),
    "total-capacity": lambda api, w: patch(api, w, {"total-capacity": 5}),
    "timezone": lambda api, w: patch(api, w, {"timezone": "Europe/Kyiv"}),
    "balance-low-threshold": lambda api, w: patch(api, w, {"balance-low-threshold": "5"}),
    "balance-high-threshold": lambda api, w: patch(api, w, {"balance-high-threshold": "500"}),
    "contractor relationship": lambda api, w: api.patch(
        f"{w.member}/relationships/contractor",
        {"data": {"type": "contractors", "id": str(w.other_contractor_id)}},
    ),
    "contractor in the document": lambda api, w: api.patch(
        w.member,
        {
            "data": {
                "type": "accounts",
                "id": str(w.account_id),
                "relationships": {
                    "contractor": {
                        "data": {"type": "contractors", "id": str(w.other_contractor_id)}
                    }
                },
            }
        },
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_the_tag_changes_with_every_change_of_the_account(
    api: Api, world: World, change: str
) -> None:
    before = current_tag(api, world)

    response = CHANGES[change](api, world)

    assert response.status_code in (200, 201, 204), response.text
    after = current_tag(api, world)
    assert STRONG.match(after)
    assert after != before
    if response.request.url.path == world.member:
        assert response.headers["etag"] == after


def test_a_balance_back_where_it_was_gives_the_tag_back(api: Api, world: World) -> None:
    before = current_tag(api, world)

    assert correction(api, world, "5").status_code == 200
    moved = current_tag(api, world)
    assert correction(api, world, "-5").status_code == 200

    assert moved != before
    assert current_tag(api, world) == before


def test_other_resources_keep_weak_tags(api: Api, world: World) -> None:
    responses = [
        api.get(f"{PREFIX}/contractors/{world.contractor_id}"),
        api.get(f"{PAYMENTS}/{world.payment_id}"),
        api.get(ACCOUNTS),
        absolute(api, "100"),
    ]

    for response in responses:
        assert response.status_code == 200, response.text
        assert WEAK.match(response.headers["etag"]), response.request.url


# -- conditional GET --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, status",
    [
        ("{tag}", 304),
        (f"{UNKNOWN_TAG}, {{tag}}", 304),
        (UNKNOWN_TAG, 200),
        ("{stale}", 200),
        # RFC 9110 §13.1.2: If-None-Match compares weakly, and `*` matches any current record
        ("W/{tag}", 304),
        ("*", 304),
    ],
)
def test_if_none_match_with_the_current_tag_is_304(
    api: Api, world: World, header: str, status: int
) -> None:
    stale = current_tag(api, world)
    assert correction(api, world, "1").status_code == 200
    tag = current_tag(api, world)

    response = api.get(world.member, headers={"If-None-Match": header.format(tag=tag, stale=stale)})

    assert response.status_code == status
    assert response.headers["etag"] == tag
    if status == 304:
        assert response.content == b""
    else:
        assert response.json()["data"]["attributes"]["balance"] == "151.0"


# -- If-Match ---------------------------------------------------------------------------------


def balance_body(key: object, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": "balances", "id": str(key), "attributes": attributes}}


def correction_body(key: object, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": "balance-correction", "id": str(key), "attributes": attributes}}


Write = tuple[str, str, Any, int]

CONDITIONAL_WRITES: dict[str, Callable[[World], Write]] = {
    "account put": lambda w: ("PUT", w.member, account_update(w.account_id, {"vat": "9"}), 200),
    "account patch": lambda w: ("PATCH", w.member, account_update(w.account_id, {"vat": "9"}), 200),
    "account delete": lambda w: ("DELETE", w.member, None, 204),
    "contractor patch": lambda w: (
        "PATCH",
        f"{w.member}/relationships/contractor",
        {"data": {"type": "contractors", "id": str(w.other_contractor_id)}},
        204,
    ),
    "contractor put": lambda w: (
        "PUT",
        f"{w.member}/relationships/contractor",
        {"data": {"type": "contractors", "id": str(w.other_contractor_id)}},
        204,
    ),
    "balance put": lambda w: (
        "PUT",
        f"{ACCOUNTS}/{EXTERNAL_ID}/balance",
        balance_body(EXTERNAL_ID, {"balance": "75"}),
        200,
    ),
    "balance patch": lambda w: (
        "PATCH",
        f"{ACCOUNTS}/any/balance",
        balance_body(EXTERNAL_ID, {"balance": "75"}),
        200,
    ),
    "correction put": lambda w: (
        "PUT",
        f"{ACCOUNTS}/{w.account_id}/balance-correction",
        correction_body(w.account_id, {"correction": "5"}),
        200,
    ),
    "correction patch": lambda w: (
        "PATCH",
        f"{ACCOUNTS}/any/balance-correction",
        correction_body(w.account_id, {"correction": "5"}),
        200,
    ),
}


def stale_tag(api: Api, world: World) -> str:
    """A tag this account really had, before a payment moved its balance."""
    tag = current_tag(api, world)
    assert api.post(PAYMENTS, payment_body(world.account_id, "1")).status_code == 201
    return tag


REFUSED_TAGS: dict[str, Callable[[Api, World], str]] = {
    "stale": stale_tag,
    "stale and unknown": lambda api, w: f"{stale_tag(api, w)}, {UNKNOWN_TAG}",
    # RFC 9110 §13.1.1: If-Match compares strongly, a weak tag never matches
    "weak current": lambda api, w: f"W/{current_tag(api, w)}",
    "another account's": lambda api, w: api.get(
        api.post(ACCOUNTS, account_body(w.contractor_id, name="neighbour")).headers["location"]
    ).headers["etag"],
}


@pytest.mark.parametrize("tags", list(REFUSED_TAGS))
@pytest.mark.parametrize("write", list(CONDITIONAL_WRITES))
def test_a_write_with_a_tag_that_does_not_match_is_412_and_changes_nothing(
    api: Api, db: Db, world: World, write: str, tags: str
) -> None:
    method, path, body, _ = CONDITIONAL_WRITES[write](world)
    header = REFUSED_TAGS[tags](api, world)
    before = state(db)
    tag = current_tag(api, world)

    response = api.request(method, path, json_body=body, headers={"If-Match": header})

    assert response.status_code == 412, response.text
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == PRECONDITION_FAILED
    assert state(db) == before
    assert current_tag(api, world) == tag


ACCEPTED_TAGS: dict[str, Callable[[str], str]] = {
    "current": lambda tag: tag,
    "any": lambda tag: "*",
    "a list ending with the current": lambda tag: f'W/{tag}, "{"f" * 32}",{tag}',
}


@pytest.mark.parametrize("tags", list(ACCEPTED_TAGS))
@pytest.mark.parametrize("write", list(CONDITIONAL_WRITES))
def test_a_write_with_a_matching_tag_goes_through(
    api: Api, db: Db, world: World, write: str, tags: str
) -> None:
    method, path, body, status = CONDITIONAL_WRITES[write](world)
    tag = current_tag(api, world)
    before = state(db)

    response = api.request(
        method, path, json_body=body, headers={"If-Match": ACCEPTED_TAGS[tags](tag)}
    )

    assert response.status_code == status, response.text
    assert state(db) != before
    if method != "DELETE":
        assert current_tag(api, world) != tag


def test_the_second_of_two_writers_with_the_same_tag_is_refused(api: Api, world: World) -> None:
    """Two clients read the account, both change it: the second would overwrite the first."""
    tag = current_tag(api, world)

    first = api.patch(
        world.member, account_update(world.account_id, {"vat": "5"}), headers={"If-Match": tag}
    )
    second = api.patch(
        world.member,
        account_update(world.account_id, {"max-balance": "5"}),
        headers={"If-Match": tag},
    )

    assert first.status_code == 200, first.text
    assert second.status_code == 412, second.text
    assert second.json() == PRECONDITION_FAILED
    shown = api.get(world.member)
    assert shown.headers["etag"] == first.headers["etag"]
    attributes = shown.json()["data"]["attributes"]
    assert (attributes["vat"], attributes["max-balance"]) == ("5.0", "0.0")


def test_a_balance_request_compares_with_its_accounts_tag(api: Api, world: World) -> None:
    """The balance endpoint addresses the account by external id: the tag is the account's."""
    tag = current_tag(api, world)

    moved = correction(api, world, "2")
    assert moved.status_code == 200
    refused = api.put(
        f"{ACCOUNTS}/{EXTERNAL_ID}/balance",
        balance_body(EXTERNAL_ID, {"balance": "1"}),
        headers={"If-Match": tag},
    )
    accepted = api.put(
        f"{ACCOUNTS}/{EXTERNAL_ID}/balance",
        balance_body(EXTERNAL_ID, {"balance": "1"}),
        headers={"If-Match": current_tag(api, world)},
    )

    assert refused.status_code == 412
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["data"]["attributes"] == {"balance": "1.0"}


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_if_match_on_a_missing_account_is_404(api: Api, world: World, method: str) -> None:
    body = account_update(999999, {"vat": "1"}) if method == "PATCH" else None

    response = api.request(method, f"{ACCOUNTS}/999999", json_body=body, headers={"If-Match": "*"})

    assert response.status_code == 404, response.text
    assert response.json()["errors"][0]["code"] == "404"


def test_writes_without_if_match_are_unconditional(api: Api, world: World) -> None:
    stale = stale_tag(api, world)

    response = patch(api, world, {"vat": "2"})

    assert response.status_code == 200, response.text
    assert response.headers["etag"] not in (stale, "")
