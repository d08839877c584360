"""Contacts (contract §5.2): shape, the contractor scope, no validations (bar our two
deviations), filters, and the delete that forgets the contact in accounts' and event
subscriptions' lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.contract import PREFIX, ResourceContract, ids
from tests.conftest import BASE_URL, Api, Db

CONTACTS = f"{PREFIX}/contacts"
ACCOUNTS = f"{PREFIX}/accounts"


def contact_body(contractor: int | None, **attributes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "contacts",
        "attributes": {"email": "billing@example.com", **attributes},
    }
    if contractor is not None:
        data["relationships"] = {
            "contractor": {"data": {"type": "contractors", "id": str(contractor)}}
        }
    return {"data": data}


def error(attribute: str, message: str, member: str = "attributes") -> dict[str, Any]:
    return {
        "title": message,
        "detail": f"{attribute} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/{member}/{attribute}"},
        "status": "422",
    }


def contact_in(db: Db, contractor: int | None, email: str, notes: str | None = None) -> int:
    return int(
        db.fetchval(
            "INSERT INTO contacts (contractor_id, email, notes) VALUES ($1, $2, $3) RETURNING id",
            contractor,
            email,
            notes,
        )
    )


class TestContacts(ResourceContract):
    path = "contacts"
    type = "contacts"

    def create_body(self) -> dict[str, Any]:
        return contact_body(self.contractor)

    @pytest.fixture(autouse=True)
    def _contractor(self, api: Api, contractor_id: int) -> None:
        self.contractor = contractor_id

    def make(self, api: Api) -> str:
        response = api.post(self.collection, contact_body(self.contractor))
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])


# -- shape, create, update ----------------------------------------------------------------


def test_create_renders_the_contact(api: Api, db: Db, contractor_id: int) -> None:
    response = api.post(CONTACTS, contact_body(contractor_id, notes="accounting"))

    assert response.status_code == 201, response.text
    key = response.json()["data"]["id"]
    own = f"{BASE_URL}{CONTACTS}/{key}"
    assert response.headers["location"] == own
    assert response.json() == {
        "data": {
            "id": key,
            "type": "contacts",
            "links": {"self": own},
            "attributes": {"email": "billing@example.com", "notes": "accounting"},
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
    }
    row = db.fetchrow("SELECT contractor_id, email, notes FROM contacts WHERE id = $1", int(key))
    assert row is not None
    assert tuple(row) == (contractor_id, "billing@example.com", "accounting")
    assert api.get(f"{CONTACTS}/{key}").json() == response.json()


def test_contractor_relationship_endpoint(api: Api, db: Db, contractor_id: int) -> None:
    key = contact_in(db, contractor_id, "a@example.com")
    own = f"{BASE_URL}{CONTACTS}/{key}"

    response = api.get(f"{CONTACTS}/{key}/relationships/contractor")

    assert response.status_code == 200
    assert response.json() == {
        "data": {"type": "contractors", "id": str(contractor_id)},
        "links": {"self": f"{own}/relationships/contractor", "related": f"{own}/contractor"},
    }


def test_malformed_email_is_accepted_on_update(api: Api, db: Db, contractor_id: int) -> None:
    # contract §5.2: no validations (Yeti's spec PATCHes exactly this)
    key = contact_in(db, contractor_id, "a@example.com")

    response = api.patch(
        f"{CONTACTS}/{key}",
        {"data": {"type": "contacts", "id": str(key), "attributes": {"email": "another@mail,com"}}},
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {"email": "another@mail,com", "notes": None}
    assert db.fetchval("SELECT email FROM contacts WHERE id = $1", key) == "another@mail,com"


def test_update_moves_the_contact_to_another_contractor(
    api: Api, db: Db, make_contractor: Callable[..., int]
) -> None:
    first, second = make_contractor(), make_contractor()
    key = contact_in(db, first, "a@example.com", "keep")

    response = api.patch(
        f"{CONTACTS}/{key}",
        {
            "data": {
                "type": "contacts",
                "id": str(key),
                "relationships": {
                    "contractor": {"data": {"type": "contractors", "id": str(second)}}
                },
            }
        },
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["relationships"]["contractor"]["data"] == {"type": "contractors", "id": str(second)}
    assert data["attributes"] == {"email": "a@example.com", "notes": "keep"}
    assert db.fetchval("SELECT contractor_id FROM contacts WHERE id = $1", key) == second


# -- our deviations: 422 instead of a 500 or an unreadable record ------------------------


def test_create_without_email_is_422(api: Api, db: Db, contractor_id: int) -> None:
    body = contact_body(contractor_id)
    del body["data"]["attributes"]["email"]

    response = api.post(CONTACTS, body)

    assert response.status_code == 422
    assert response.json() == {"errors": [error("email", "can't be blank")]}
    assert db.fetchval("SELECT count(*) FROM contacts") == 0


@pytest.mark.parametrize(
    "relationships",
    [
        None,
        {"contractor": {"data": None}},
        {"contractor": {"data": {"type": "contractors", "id": "999999"}}},
    ],
)
def test_create_without_an_existing_contractor_is_422(
    api: Api, db: Db, relationships: dict[str, Any] | None
) -> None:
    body = contact_body(None)
    if relationships is not None:
        body["data"]["relationships"] = relationships

    response = api.post(CONTACTS, body)

    assert response.status_code == 422
    assert response.json() == {
        "errors": [error("contractor", "must exist", member="relationships")]
    }
    assert db.fetchval("SELECT count(*) FROM contacts") == 0


def test_create_with_nothing_reports_email_then_contractor(api: Api) -> None:
    response = api.post(CONTACTS, {"data": {"type": "contacts", "attributes": {"notes": "x"}}})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        error("email", "can't be blank"),
        error("contractor", "must exist", member="relationships"),
    ]


def test_update_to_no_contractor_is_422(api: Api, db: Db, contractor_id: int) -> None:
    key = contact_in(db, contractor_id, "a@example.com")

    response = api.patch(
        f"{CONTACTS}/{key}",
        {"data": {"type": "contacts", "id": str(key), "relationships": {"contractor": None}}},
    )

    assert response.status_code == 422
    assert response.json() == {
        "errors": [error("contractor", "must exist", member="relationships")]
    }
    assert db.fetchval("SELECT contractor_id FROM contacts WHERE id = $1", key) == contractor_id


# -- scope: contacts without a contractor are invisible ---------------------------------


@pytest.fixture
def hidden(db: Db, admin_id: int) -> int:
    return int(
        db.fetchval(
            "INSERT INTO contacts (admin_user_id, email) VALUES ($1, 'admin@example.com')"
            " RETURNING id",
            admin_id,
        )
    )


def not_found(key: int) -> dict[str, Any]:
    return {
        "errors": [
            {
                "title": "Record not found",
                "detail": f"The record identified by {key} could not be found.",
                "code": "404",
                "status": "404",
            }
        ]
    }


def test_index_leaves_out_contacts_without_contractor(
    api: Api, db: Db, contractor_id: int, hidden: int
) -> None:
    visible = contact_in(db, contractor_id, "a@example.com")

    response = api.get(CONTACTS)

    assert ids(response) == [visible]
    assert response.json()["meta"]["total-count"] == 1
    assert ids(api.get(CONTACTS, params={"filter[id]": str(hidden)})) == []
    assert ids(api.get(CONTACTS, params={"filter[email_eq]": "admin@example.com"})) == []


def test_show_of_contact_without_contractor_is_404(api: Api, hidden: int) -> None:
    response = api.get(f"{CONTACTS}/{hidden}")

    assert response.status_code == 404
    assert response.json() == not_found(hidden)


def test_update_of_contact_without_contractor_is_404(api: Api, db: Db, hidden: int) -> None:
    response = api.patch(
        f"{CONTACTS}/{hidden}",
        {"data": {"type": "contacts", "id": str(hidden), "attributes": {"email": "x@y.z"}}},
    )

    assert response.status_code == 404
    assert response.json() == not_found(hidden)
    assert db.fetchval("SELECT email FROM contacts WHERE id = $1", hidden) == "admin@example.com"


def test_delete_of_contact_without_contractor_is_404(api: Api, db: Db, hidden: int) -> None:
    response = api.delete(f"{CONTACTS}/{hidden}")

    assert response.status_code == 404
    assert response.json() == not_found(hidden)
    assert db.fetchval("SELECT count(*) FROM contacts WHERE id = $1", hidden) == 1


# -- filters and sorting --------------------------------------------------------------------


@pytest.fixture
def three(db: Db, contractor_id: int) -> list[int]:
    return [
        contact_in(db, contractor_id, "alice@example.com", "Primary_contact"),
        contact_in(db, contractor_id, "bob@corp.net", "backup"),
        contact_in(db, contractor_id, "carol@example.com"),
    ]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("email_eq", "bob@corp.net", [1]),
        ("email_not_eq", "bob@corp.net", [0, 2]),
        ("email_cont", "EXAMPLE", [0, 2]),
        ("email_start", "car", [2]),
        ("email_end", ".net", [1]),
        ("email_in", "alice@example.com,carol@example.com", [0, 2]),
        ("email_not_in", "alice@example.com", [1, 2]),
        ("email_cont_any", "alice,bob", [0, 1]),
        ("notes_eq", "backup", [1]),
        ("notes_not_eq", "backup", [0]),
        ("notes_cont", "y_c", [0]),
        ("notes_cont", "_", [0]),
        ("notes_start", "PRI", [0]),
        ("notes_end", "UP", [1]),
        ("notes_in", "backup,none", [1]),
        ("notes_not_in", "backup", [0]),
        ("notes_cont_any", "prim,back", [0, 1]),
    ],
)
def test_string_filters(
    api: Api, three: list[int], name: str, value: str, expected: list[int]
) -> None:
    response = api.get(CONTACTS, params={f"filter[{name}]": value})

    assert ids(response) == [three[i] for i in expected]
    assert response.json()["meta"]["total-count"] == len(expected)


@pytest.mark.parametrize("name", ["contractor_id_eq", "email", "created_at_gt"])
def test_other_filters_are_102(api: Api, name: str) -> None:
    response = api.get(CONTACTS, params={f"filter[{name}]": "1"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "102"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [("-id", [2, 1, 0]), ("email", [1, 2, 0]), ("-email", [0, 2, 1]), ("notes", [2, 0, 1])],
)
def test_sort(api: Api, db: Db, contractor_id: int, sort: str, expected: list[int]) -> None:
    made = [
        contact_in(db, contractor_id, "c@example.com", "z"),
        contact_in(db, contractor_id, "a@example.com", None),
        contact_in(db, contractor_id, "b@example.com", "y"),
    ]

    # ascending NULLs sort last
    assert ids(api.get(CONTACTS, params={"sort": sort})) == [made[i] for i in expected]


# -- delete --------------------------------------------------------------------------------


def test_delete_answers_204_and_removes_the_contact(api: Api, db: Db, contractor_id: int) -> None:
    key = contact_in(db, contractor_id, "a@example.com")

    response = api.delete(f"{CONTACTS}/{key}")

    assert response.status_code == 204
    assert response.content == b""
    assert db.fetchval("SELECT count(*) FROM contacts WHERE id = $1", key) == 0
    assert api.get(f"{CONTACTS}/{key}").status_code == 404


def test_delete_forgets_the_contact_in_accounts(
    api: Api,
    db: Db,
    admin_id: int,
    contractor_id: int,
    make_account: Callable[..., dict[str, Any]],
) -> None:
    doomed = contact_in(db, contractor_id, "doomed@example.com")
    kept = contact_in(db, contractor_id, "kept@example.com")
    both_lists = make_account(
        **{"send-invoices-to": [doomed, kept], "send-balance-notifications-to": [kept, doomed]}
    )
    only_doomed = make_account(
        **{"send-invoices-to": [doomed], "send-balance-notifications-to": [doomed]}
    )
    only_notifications = make_account(**{"send-balance-notifications-to": [doomed]})
    untouched = make_account(**{"send-invoices-to": [kept]})
    db.execute("DELETE FROM audit_log")

    response = api.delete(f"{CONTACTS}/{doomed}")

    assert response.status_code == 204, response.text

    def lists(account: dict[str, Any]) -> tuple[Any, Any]:
        shown = api.get(f"{ACCOUNTS}/{account['id']}").json()["data"]["attributes"]
        return shown["send-invoices-to"], shown["send-balance-notifications-to"]

    assert lists(both_lists) == ([kept], [kept])
    assert lists(only_doomed) == (None, None)
    assert lists(only_notifications) == (None, None)
    assert lists(untouched) == ([kept], None)
    assert (
        db.fetchval(
            "SELECT count(*) FROM account_balance_notification_settings WHERE send_to = '{}'"
        )
        == 0
    )
    audits = db.fetch("SELECT item_type, item_id, event, whodunnit FROM audit_log ORDER BY item_id")
    # one 'update' per account whose own row changed; the settings table is not audited
    assert [tuple(row) for row in audits] == [
        ("Account", int(both_lists["id"]), "update", str(admin_id)),
        ("Account", int(only_doomed["id"]), "update", str(admin_id)),
    ]


def test_delete_forgets_the_contact_in_event_subscriptions(
    api: Api, db: Db, contractor_id: int
) -> None:
    doomed = contact_in(db, contractor_id, "doomed@example.com")
    kept = contact_in(db, contractor_id, "kept@example.com")
    for event, send_to in (
        ("AccountLowThesholdReached", [kept, doomed]),
        ("AccountHighThesholdReached", [doomed]),
        ("AccountLowThesholdCleared", [kept]),
    ):
        db.execute(
            "INSERT INTO event_subscriptions (event, send_to, secret, updated_at)"
            " VALUES ($1, $2, 'whsec_AAAAAAAAAAAAAAAAAAAAAA', now() - interval '1 day')",
            event,
            send_to,
        )

    response = api.delete(f"{CONTACTS}/{doomed}")

    assert response.status_code == 204, response.text
    rows = db.fetch(
        "SELECT event, send_to, updated_at > now() - interval '1 hour' AS touched"
        " FROM event_subscriptions ORDER BY id"
    )
    # contract §5.2: the id leaves System::EventSubscription.send_to; an empty list is NULL
    assert [tuple(row) for row in rows] == [
        ("AccountLowThesholdReached", [kept], True),
        ("AccountHighThesholdReached", None, True),
        ("AccountLowThesholdCleared", [kept], False),
    ]


def test_delete_audit_row_carries_the_previous_account_and_the_change(
    api: Api, db: Db, contractor_id: int, make_account: Callable[..., dict[str, Any]]
) -> None:
    doomed = contact_in(db, contractor_id, "doomed@example.com")
    kept = contact_in(db, contractor_id, "kept@example.com")
    account = make_account(name="billed", **{"send-invoices-to": [doomed, kept]})
    account_id = int(account["id"])
    db.execute("DELETE FROM audit_log")

    response = api.delete(f"{CONTACTS}/{doomed}", headers={"X-Real-IP": "10.1.2.3"})
    assert response.status_code == 204

    row = db.fetchrow("SELECT item_id, ip, object, object_changes FROM audit_log")
    assert row is not None
    assert row["item_id"] == account_id
    assert str(row["ip"]) == "10.1.2.3"
    assert row["object_changes"]["send_invoices_to"] == [[doomed, kept], [kept]]
    # contract §4.3: `object` holds the previous attributes of the account (paper_trail)
    assert row["object"]["send_invoices_to"] == [doomed, kept]
    assert row["object"]["name"] == "billed"
