"""Issue 8: a real JSON:API client against a real server. jsonapi-requests' ORM (PyPI) fetches
objects and sends them back whole on `save()`: `links`, read-only `balance` and `currency`,
relationship `links` and all. The app runs under uvicorn on a free loopback port (`server_url`)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from jsonapi_requests.orm import ApiModel, AttributeField, OrmApi, RelationField
from jsonapi_requests.request_factory import ApiClientError

from tests.conftest import Db

PREFIX = "/api/rest/admin"


class TokenAuth(requests.auth.AuthBase):
    """contract §1.3: the JWT alone in the Authorization header."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.token
        return request


@pytest.fixture
def orm(server_url: str, token: str, clean_database: None) -> Any:
    """Models declared as a jsonapi-requests user would, bound to the running server."""
    orm_api = OrmApi.config(
        API_ROOT=f"{server_url}{PREFIX}/",
        AUTH=TokenAuth(token),
        # our routes have no trailing slash; one attempt, so that a failure shows at once
        APPEND_SLASH=False,
        TIMEOUT=30,
        RETRIES=1,
    )

    class Contractor(ApiModel):
        class Meta:
            type = "contractors"
            api = orm_api

        name = AttributeField("name")

    class Account(ApiModel):
        class Meta:
            type = "accounts"
            api = orm_api

        name = AttributeField("name")
        balance = AttributeField("balance")
        currency = AttributeField("currency")
        max_balance = AttributeField("max-balance")
        contractor = RelationField("contractor")

    return SimpleNamespace(api=orm_api, Contractor=Contractor, Account=Account)


def contractor(db: Db, name: str = "acme") -> str:
    return str(
        db.fetchval(
            "INSERT INTO contractors (name, enabled, vendor, customer)"
            " VALUES ($1, true, true, false) RETURNING id",
            name,
        )
    )


def created_account(orm: Any, contractor_id: str, name: str = "first") -> Any:
    account = orm.Account()
    account.name = name
    account.currency = "USD"
    account.contractor = orm.Contractor.from_id(contractor_id)
    account.save()
    return account


def test_create(orm: Any, db: Db) -> None:
    contractor_id = contractor(db)

    account = created_account(orm, contractor_id)

    # save() takes the 201 answer's object: the server's id, defaults and links
    assert account.id is not None
    assert (account.name, account.balance, account.currency) == ("first", "0.0", "USD")
    assert account.links["self"].endswith(f"{PREFIX}/accounts/{account.id}")
    assert db.fetchval("SELECT name FROM accounts WHERE id = $1", int(account.id)) == "first"


def test_fetch_modify_save_sends_the_object_back_whole(orm: Any, db: Db) -> None:
    account_id = created_account(orm, contractor(db)).id
    db.set_balance(int(account_id), Decimal("12.5"))

    account = orm.Account.from_id(account_id)
    account.refresh()
    assert account.balance == "12.5"
    account.max_balance = "100"
    # the PATCH body carries links, balance, currency and relationship links as read
    sent = account.raw_object.as_data()
    assert {"links", "attributes", "relationships"} <= set(sent)
    assert sent["attributes"]["balance"] == "12.5"
    assert "links" in sent["relationships"]["contractor"]
    account.save()

    assert account.max_balance == "100.0"
    assert account.balance == "12.5"
    row = db.fetchrow("SELECT max_balance, balance FROM accounts WHERE id = $1", int(account_id))
    assert row is not None
    assert (str(row["max_balance"]), str(row["balance"])) == ("100", "12.5")


def test_saving_a_stale_read_only_value_is_refused(orm: Any, db: Db) -> None:
    # the balance moved after the client read it: sending the old one back changes a
    # read-only attribute, refused as Yeti refuses it, and nothing is saved
    account = created_account(orm, contractor(db))
    db.set_balance(int(account.id), 7)
    account.name = "renamed"

    with pytest.raises(ApiClientError) as refused:
        account.save()

    assert refused.value.status_code == 400
    assert b'"detail":"balance is not allowed."' in refused.value.content
    assert db.fetchval("SELECT name FROM accounts WHERE id = $1", int(account.id)) == "first"


def test_list_with_include_resolves_the_relationship_from_included(orm: Any, db: Db) -> None:
    contractor_id = contractor(db, "included-co")
    created_account(orm, contractor_id, "a1")
    created_account(orm, contractor_id, "a2")

    accounts = orm.Account.get_list(params={"include": "contractor", "sort": "name"})

    assert [account.name for account in accounts] == ["a1", "a2"]
    # taken from `included`: the relationship cache already holds a full object, no stub
    related = accounts[0].contractor
    assert not related.is_stub
    assert (related.id, related.name) == (contractor_id, "included-co")


def test_relationship_read_fetches_the_related_object(orm: Any, db: Db) -> None:
    contractor_id = contractor(db, "fetched-co")
    account = orm.Account.from_id(created_account(orm, contractor_id).id)

    related = account.contractor  # a stub: reading an attribute fetches /contractors/{id}

    assert related.is_stub
    assert (related.id, related.name) == (contractor_id, "fetched-co")
    relationship = orm.api.endpoint(f"accounts/{account.id}/relationships/contractor").get()
    assert relationship.payload["data"] == {"type": "contractors", "id": contractor_id}


def test_pagination_links_are_followed(orm: Any, db: Db) -> None:
    contractor_id = contractor(db)
    for name in ("p1", "p2", "p3"):
        created_account(orm, contractor_id, name)

    names: list[str] = []
    response = orm.api.endpoint("accounts").get(
        params={"page[size]": "2", "page[number]": "1", "sort": "name"}
    )
    while True:
        names += [item.attributes["name"] for item in response.content.data]
        following = response.content.links.get("next")
        if following is None:
            break
        response = orm.api.endpoint(following).get()  # absolute: urljoin keeps it

    assert names == ["p1", "p2", "p3"]
    assert response.payload["meta"] == {"total-count": 3}


def test_delete(orm: Any, db: Db) -> None:
    account = created_account(orm, contractor(db))

    # jsonapi-requests sends the object as a body with its DELETE: the body is ignored
    account.delete()

    assert not orm.Account.exists(account.id)
    assert db.fetchval("SELECT count(*) FROM accounts") == 0
