"""Accounts writes (contract §2.9-§2.12) and their side effects (§4.1-§4.4): create, update,
delete, the relationship endpoints, the notification-settings row, the hidden invoice
schedule, the audit log and the delete cascade."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import account_body
from tests.conftest import BASE_URL, JSONAPI, Api, Db, lock_waiters, wait_until

ACCOUNTS = "/api/rest/admin/accounts"
FULL_UUID = "29161666-c29c-11e8-a11d-a088b4454590"
ATTRIBUTE_ORDER = [
    "name",
    "balance",
    "min-balance",
    "max-balance",
    "vat",
    "balance-low-threshold",
    "balance-high-threshold",
    "send-balance-notifications-to",
    "destination-rate-limit",
    "max-call-duration",
    "external-id",
    "uuid",
    "origination-capacity",
    "termination-capacity",
    "total-capacity",
    "send-invoices-to",
    "invoice-period-id",
    "timezone",
    "currency",
]

MakeAccount = Callable[..., dict[str, Any]]
MakeContractor = Callable[..., int]


def member(account_id: object) -> str:
    return f"{ACCOUNTS}/{account_id}"


def update_body(
    account_id: object,
    attributes: dict[str, Any] | None = None,
    relationships: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "accounts", "id": str(account_id)}
    if attributes is not None:
        data["attributes"] = attributes
    if relationships is not None:
        data["relationships"] = relationships
    return {"data": data}


def invalid(key: str, message: str, *, relationship: bool = False) -> dict[str, Any]:
    """A 422 validation error object (contract §3)."""
    member_name = "relationships" if relationship else "attributes"
    return {
        "title": message,
        "detail": f"{key} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/{member_name}/{key}"},
        "status": "422",
    }


def bad_request(title: str, detail: str, code: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "code": code, "status": "400"}


def not_found(key: str) -> dict[str, Any]:
    return {
        "title": "Record not found",
        "detail": f"The record identified by {key} could not be found.",
        "code": "404",
        "status": "404",
    }


def assert_errors(response: Any, status: int, errors: list[dict[str, Any]]) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    body = response.json()
    assert body == {"errors": errors}
    # contract §0.4: members in the order title, detail, code, source, status
    assert [list(error) for error in body["errors"]] == [list(error) for error in errors]


def assert_unchanged(api: Api, account: dict[str, Any]) -> None:
    """After a rejected write the account reads back exactly as before."""
    response = api.get(member(account["id"]))
    assert response.status_code == 200
    assert response.json()["data"] == account


def settings_rows(db: Db, account_id: object) -> list[dict[str, Any]]:
    rows = db.fetch(
        "SELECT low_threshold, high_threshold, send_to, state_id"
        " FROM account_balance_notification_settings WHERE account_id = $1",
        int(str(account_id)),
    )
    return [dict(row) for row in rows]


def audit_rows(db: Db, item_type: str = "Account") -> list[dict[str, Any]]:
    rows = db.fetch(
        "SELECT item_type, item_id, event, whodunnit, host(ip) AS ip, object_changes"
        " FROM audit_log WHERE item_type = $1 ORDER BY id",
        item_type,
    )
    return [dict(row) for row in rows]


def schedule(db: Db, account_id: object) -> tuple[datetime | None, int | None]:
    row = db.fetchrow(
        "SELECT next_invoice_at, next_invoice_type_id FROM accounts WHERE id = $1",
        int(str(account_id)),
    )
    assert row is not None
    return row["next_invoice_at"], row["next_invoice_type_id"]


# -- §4.2: an independent, simple calendar for the periods whose end is easy to state ------


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def period_end(period: int, today: date) -> date:
    if period == 1:  # Daily: tomorrow
        return today + timedelta(days=1)
    if period == 2:  # Weekly: next Monday
        return today + timedelta(days=7 - today.weekday())
    if period == 4:  # Monthly: the 1st of next month
        return _first_of_next_month(today)
    assert period == 7  # SemiMonthly: the 16th, else the 1st of next month
    return today.replace(day=16) if today.day < 16 else _first_of_next_month(today)


def expected_schedules(period: int, zone: str, before: datetime) -> set[tuple[datetime, int]]:
    """Local midnight of the period end in `zone`, for 'today' at the start and at the end
    of the request (a request may straddle midnight); all these periods are Auto Full (2)."""
    tz = ZoneInfo(zone)
    days = {before.astimezone(tz).date(), datetime.now(tz).date()}
    return {(datetime.combine(period_end(period, day), time(0), tzinfo=tz), 2) for day in days}


def now() -> datetime:
    return datetime.now(ZoneInfo("UTC"))


# -- §2.9 create ------------------------------------------------------------------------


def full_body(contractor_id: int) -> dict[str, Any]:
    return {
        "data": {
            "type": "accounts",
            "attributes": {
                "name": "name",
                "currency": "USD",
                "min-balance": 1,
                "max-balance": 10,
                "external-id": 100,
                "uuid": FULL_UUID,
                "balance-low-threshold": 90,
                "balance-high-threshold": 95,
                "destination-rate-limit": 0.333,
                "max-call-duration": 24000,
                "send-balance-notifications-to": [3],
                "send-invoices-to": 3,
                "origination-capacity": 10,
                "termination-capacity": 3,
                "total-capacity": 11,
                "invoice-period-id": 2,
                "timezone": "Europe/Kyiv",
            },
            "relationships": {
                "contractor": {"data": {"type": "contractors", "id": str(contractor_id)}},
                "invoice-template": {"data": {"type": "invoice-templates", "id": "1"}},
            },
        }
    }


def test_create_full_body_renders_every_attribute(
    api: Api, db: Db, contractor_id: int, admin_id: int
) -> None:
    started = now()
    response = api.post(ACCOUNTS, full_body(contractor_id))

    assert response.status_code == 201, response.text
    document = response.json()
    assert list(document) == ["data"]
    data = document["data"]
    account_id = data["id"]
    own = f"{BASE_URL}{ACCOUNTS}/{account_id}"
    assert response.headers["location"] == data["links"]["self"] == own
    assert list(data) == ["id", "type", "links", "attributes", "relationships"]
    assert data["type"] == "accounts"
    assert list(data["attributes"]) == ATTRIBUTE_ORDER
    assert data["attributes"] == {
        "name": "name",
        "balance": "0.0",
        "min-balance": "1.0",
        "max-balance": "10.0",
        "vat": "0.0",
        "balance-low-threshold": "90.0",
        "balance-high-threshold": "95.0",
        "send-balance-notifications-to": [3],
        "destination-rate-limit": "0.333",
        "max-call-duration": 24000,
        "external-id": 100,
        "uuid": FULL_UUID,
        "origination-capacity": 10,
        "termination-capacity": 3,
        "total-capacity": 11,
        "send-invoices-to": [3],
        "invoice-period-id": 2,
        "timezone": "Europe/Kyiv",
        "currency": "USD",
    }
    assert data["relationships"] == {
        "contractor": {
            "links": {"self": f"{own}/relationships/contractor", "related": f"{own}/contractor"},
            "data": {"type": "contractors", "id": str(contractor_id)},
        },
        # contract §2.2: no existence check, the linkage points at a missing template
        "invoice-template": {
            "links": {
                "self": f"{own}/relationships/invoice-template",
                "related": f"{own}/invoice-template",
            },
            "data": {"type": "invoice-templates", "id": "1"},
        },
    }
    assert [list(rel) for rel in data["relationships"].values()] == [["links", "data"]] * 2
    # the created record reads back as the same document
    assert api.get(member(account_id)).json() == document
    # §4.1, §4.2, §4.3; §7 at once (issue 7): the opening balance 0 is below the low
    # threshold, so the account starts in the Low state, where Yeti's cron would put it
    assert settings_rows(db, account_id) == [
        {"low_threshold": 90, "high_threshold": 95, "send_to": [3], "state_id": 1}
    ]
    assert schedule(db, account_id) in expected_schedules(2, "Europe/Kyiv", started)
    rows = audit_rows(db)
    assert [(r["item_id"], r["event"], r["whodunnit"]) for r in rows] == [
        (int(account_id), "create", str(admin_id))
    ]


def test_create_minimum_body_fills_defaults(api: Api, db: Db, contractor_id: int) -> None:
    body = {
        "data": {
            "type": "accounts",
            "attributes": {"name": "name", "currency": "USD"},
            "relationships": {
                "contractor": {"data": {"type": "contractors", "id": str(contractor_id)}}
            },
        }
    }
    response = api.post(ACCOUNTS, body)

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert response.headers["location"] == data["links"]["self"]
    attributes = data["attributes"]
    generated = attributes.pop("uuid")
    assert isinstance(generated, str) and len(generated) == 36
    assert attributes == {
        "name": "name",
        "balance": "0.0",
        "min-balance": "0.0",
        "max-balance": "0.0",
        "vat": "0.0",
        "balance-low-threshold": None,
        "balance-high-threshold": None,
        "send-balance-notifications-to": None,
        "destination-rate-limit": None,
        "max-call-duration": None,
        "external-id": None,
        "origination-capacity": None,
        "termination-capacity": None,
        "total-capacity": None,
        "send-invoices-to": None,
        "invoice-period-id": None,
        "timezone": "UTC",
        "currency": "USD",
    }
    assert data["relationships"]["invoice-template"]["data"] is None
    stored = db.fetchval("SELECT uuid::text FROM accounts WHERE id = $1", int(data["id"]))
    assert stored == generated
    assert settings_rows(db, data["id"]) == [
        {"low_threshold": None, "high_threshold": None, "send_to": None, "state_id": 0}
    ]
    assert schedule(db, data["id"]) == (None, None)


def test_create_accepts_a_customer_only_contractor(
    api: Api, make_contractor: MakeContractor
) -> None:
    # contract §3.1: neither vendor nor customer status is required
    customer = make_contractor(vendor=False, customer=True)
    response = api.post(ACCOUNTS, account_body(customer))
    assert response.status_code == 201, response.text


def test_create_honours_include_and_fields(api: Api, contractor_id: int) -> None:
    response = api.post(
        ACCOUNTS,
        account_body(contractor_id),
        params={"include": "contractor", "fields[accounts]": "name,contractor"},
    )
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["data"]["attributes"] == {"name": "acme-usd"}
    assert list(document["data"]["relationships"]) == ["contractor"]
    assert [(item["type"], item["id"]) for item in document["included"]] == [
        ("contractors", str(contractor_id))
    ]


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"send-invoices-to": [3, 7]}, {"send-invoices-to": [3, 7]}),
        ({"send-invoices-to": "3"}, {"send-invoices-to": [3]}),
        ({"send-invoices-to": [3, "", None]}, {"send-invoices-to": [3]}),
        ({"send-invoices-to": []}, {"send-invoices-to": None}),
        ({"send-invoices-to": None}, {"send-invoices-to": None}),
        ({"send-balance-notifications-to": 4}, {"send-balance-notifications-to": [4]}),
        ({"max-balance": "1000", "vat": "23.1"}, {"max-balance": "1000.0", "vat": "23.1"}),
        ({"destination-rate-limit": 0.3444}, {"destination-rate-limit": "0.3444"}),
        ({"min-balance": -100.5}, {"min-balance": "-100.5"}),
        ({"max-call-duration": 1.5}, {"max-call-duration": 1}),
        ({"timezone": "America/Los_Angeles"}, {"timezone": "America/Los_Angeles"}),
    ],
)
def test_create_casts_and_renders_values(
    api: Api, contractor_id: int, attributes: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = api.post(ACCOUNTS, account_body(contractor_id, **attributes))
    assert response.status_code == 201, response.text
    rendered = response.json()["data"]["attributes"]
    assert {key: rendered[key] for key in expected} == expected


def test_create_ignores_an_attribute_name_under_relationships(api: Api, contractor_id: int) -> None:
    # contract §2.9 quirk: passes the permission check, then silently ignored
    body = account_body(contractor_id)
    body["data"]["relationships"]["timezone"] = {"data": {"type": "timezones", "id": "Asia/Tokyo"}}
    response = api.post(ACCOUNTS, body)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["timezone"] == "UTC"


def test_create_ignores_top_level_members_other_than_data(api: Api, contractor_id: int) -> None:
    body: dict[str, Any] = account_body(contractor_id)
    body.update({"meta": {"a": 1}, "jsonapi": {"version": "1.0"}, "included": []})
    response = api.post(ACCOUNTS, body)
    assert response.status_code == 201, response.text


# -- §2.10 update -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["patch", "put"])
def test_update_is_partial_for_put_and_patch(
    api: Api, make_account: MakeAccount, method: str
) -> None:
    account = make_account(
        **{
            "min-balance": -5,
            "max-balance": 50,
            "vat": 10,
            "balance-low-threshold": 1,
            "balance-high-threshold": 2,
            "timezone": "Asia/Tokyo",
            "external-id": 7,
        }
    )
    send = getattr(api, method)
    response = send(member(account["id"]), update_body(account["id"], {"max-balance": 20}))

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    expected = {**account["attributes"], "max-balance": "20.0"}
    assert data["attributes"] == expected
    assert data["relationships"] == account["relationships"]
    assert api.get(member(account["id"])).json()["data"] == data


def test_update_answers_the_contract_document(api: Api, make_account: MakeAccount) -> None:
    account = make_account(name="acme")
    body = update_body(account["id"], {"name": "name", "max-balance": 20, "invoice-period-id": 3})
    response = api.patch(member(account["id"]), body)
    assert response.status_code == 200, response.text
    document = response.json()
    assert list(document) == ["data"]
    assert list(document["data"]) == ["id", "type", "links", "attributes", "relationships"]
    attributes = document["data"]["attributes"]
    assert (attributes["name"], attributes["max-balance"], attributes["invoice-period-id"]) == (
        "name",
        "20.0",
        3,
    )


@pytest.mark.parametrize(
    "data_extra",
    [{}, {"attributes": {}}, {"relationships": {}}, {"attributes": {}, "relationships": {}}],
)
def test_update_without_attributes_returns_current_state_without_audit(
    api: Api, db: Db, make_account: MakeAccount, data_extra: dict[str, Any]
) -> None:
    account = make_account()
    # contract §2.10: no save and no validation either
    db.execute("UPDATE accounts SET timezone = 'Mars/Base' WHERE id = $1", int(account["id"]))
    account["attributes"]["timezone"] = "Mars/Base"
    before = len(audit_rows(db))

    body = {"data": {"type": "accounts", "id": account["id"], **data_extra}}
    response = api.patch(member(account["id"]), body)

    assert response.status_code == 200, response.text
    assert response.json() == {"data": account}
    assert len(audit_rows(db)) == before


def test_update_relationships_contractor(
    api: Api, db: Db, make_account: MakeAccount, make_contractor: MakeContractor
) -> None:
    account = make_account()
    other = make_contractor()
    linkage = {"contractor": {"data": {"type": "contractors", "id": str(other)}}}
    response = api.patch(member(account["id"]), update_body(account["id"], None, linkage))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["relationships"]["contractor"]["data"] == {
        "type": "contractors",
        "id": str(other),
    }


def test_update_missing_record_is_404(api: Api) -> None:
    response = api.patch(member(999999), update_body(999999, {"name": "x"}))
    assert_errors(
        response,
        404,
        [not_found("999999")],
    )


def test_update_non_integer_url_id_is_simply_not_found(api: Api) -> None:
    # contract §2.10: the URL id is not verified as an integer on update
    response = api.patch(member("abc"), update_body("abc", {"name": "x"}))
    assert_errors(
        response,
        404,
        [not_found("abc")],
    )


# -- §2.11 delete and §4.4 the cascade --------------------------------------------------


def test_delete_cascades_money_rows_and_the_settings_row(
    api: Api, db: Db, make_account: MakeAccount, admin_id: int
) -> None:
    account = make_account(**{"balance-low-threshold": 1})
    keep = make_account()
    account_id, keep_id = int(account["id"]), int(keep["id"])
    payments = [
        db.fetchval(
            "INSERT INTO payments (account_id, amount, currency_id) VALUES ($1, $2, 0)"
            " RETURNING id",
            account_id,
            amount,
        )
        for amount in (10, 20)
    ]
    service = db.fetchval(
        "INSERT INTO services (account_id, name) VALUES ($1, 's') RETURNING id", account_id
    )
    db.execute(
        "INSERT INTO transactions (account_id, service_id, amount)"
        " VALUES ($1, $2, 5), ($1, NULL, 6)",
        account_id,
        service,
    )
    # rows of another account stay
    db.execute("INSERT INTO payments (account_id, amount, currency_id) VALUES ($1, 1, 0)", keep_id)
    db.execute("INSERT INTO services (account_id, name) VALUES ($1, 'k')", keep_id)
    db.execute("INSERT INTO transactions (account_id, amount) VALUES ($1, 1)", keep_id)

    response = api.delete(member(account_id), headers={"X-Real-IP": "198.51.100.4"})

    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert api.get(member(account_id)).status_code == 404
    for table in ("payments", "services", "transactions"):
        counts = db.fetchrow(
            f"SELECT count(*) FILTER (WHERE account_id = $1) AS gone,"
            f" count(*) FILTER (WHERE account_id = $2) AS kept FROM {table}",
            account_id,
            keep_id,
        )
        assert counts is not None
        assert (table, counts["gone"], counts["kept"]) == (table, 0, 1)
    assert settings_rows(db, account_id) == []
    assert len(settings_rows(db, keep_id)) == 1
    account_audit = [r for r in audit_rows(db) if r["item_id"] == account_id]
    assert [(r["event"], r["whodunnit"], r["ip"]) for r in account_audit] == [
        ("create", str(admin_id), "127.0.0.1"),
        ("destroy", str(admin_id), "198.51.100.4"),
    ]
    payment_audit = audit_rows(db, "Payment")
    assert sorted((r["item_id"], r["event"], r["whodunnit"], r["ip"]) for r in payment_audit) == [
        (payment, "destroy", str(admin_id), "198.51.100.4") for payment in sorted(payments)
    ]


def test_delete_audits_cascaded_services(
    api: Api, db: Db, make_account: MakeAccount, admin_id: int
) -> None:
    # contract §4.3: destroy rows for the account and for each cascaded Payment and Service
    account_id = int(make_account()["id"])
    service = db.fetchval(
        "INSERT INTO services (account_id, name) VALUES ($1, 's') RETURNING id", account_id
    )
    assert api.delete(member(account_id)).status_code == 204
    # Yeti's item_type is the model class, Billing::Service; a plain Service is as good
    rows = audit_rows(db, "Service") + audit_rows(db, "Billing::Service")
    assert [(r["item_id"], r["event"], r["whodunnit"]) for r in rows] == [
        (service, "destroy", str(admin_id))
    ]


def test_delete_missing_record_is_404(api: Api) -> None:
    assert_errors(
        api.delete(member(999999)),
        404,
        [not_found("999999")],
    )


def test_delete_non_integer_id_is_103(api: Api, db: Db, make_account: MakeAccount) -> None:
    make_account()
    assert_errors(
        api.delete(member("abc")),
        400,
        [bad_request("Invalid field value", "abc is not a valid value for id.", "103")],
    )
    assert db.fetchval("SELECT count(*) FROM accounts") == 1


def test_delete_does_not_require_a_content_type(api: Api, make_account: MakeAccount) -> None:
    account = make_account()
    response = api.delete(member(account["id"]), headers={"Content-Type": "text/plain"})
    assert response.status_code == 204


# -- §2.12 relationship endpoints -------------------------------------------------------


def relationship_links(account_id: object, name: str) -> dict[str, str]:
    own = f"{BASE_URL}{ACCOUNTS}/{account_id}"
    return {"self": f"{own}/relationships/{name}", "related": f"{own}/{name}"}


def test_show_contractor_relationship(
    api: Api, make_account: MakeAccount, contractor_id: int
) -> None:
    account_id = make_account()["id"]
    response = api.get(f"{member(account_id)}/relationships/contractor")
    assert response.status_code == 200
    document = response.json()
    assert document == {
        "data": {"type": "contractors", "id": str(contractor_id)},
        "links": relationship_links(account_id, "contractor"),
    }
    # contract §2.12: here data comes before links
    assert list(document) == ["data", "links"]
    assert list(document["data"]) == ["type", "id"]


def test_show_empty_invoice_template_relationship(api: Api, make_account: MakeAccount) -> None:
    account_id = make_account()["id"]
    response = api.get(f"{member(account_id)}/relationships/invoice-template")
    assert response.status_code == 200
    assert response.json() == {
        "data": None,
        "links": relationship_links(account_id, "invoice-template"),
    }


def test_show_relationship_non_integer_id_is_103(api: Api) -> None:
    assert_errors(
        api.get(f"{member('abc')}/relationships/contractor"),
        400,
        [bad_request("Invalid field value", "abc is not a valid value for id.", "103")],
    )


@pytest.mark.parametrize("method", ["patch", "put"])
def test_replace_contractor_relationship(
    api: Api,
    db: Db,
    make_account: MakeAccount,
    make_contractor: MakeContractor,
    method: str,
    admin_id: int,
) -> None:
    account = make_account()
    other = make_contractor()
    send = getattr(api, method)
    response = send(
        f"{member(account['id'])}/relationships/contractor",
        {"data": {"type": "contractors", "id": str(other)}},
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    shown = api.get(member(account["id"])).json()["data"]
    assert shown["relationships"]["contractor"]["data"] == {"type": "contractors", "id": str(other)}
    assert shown["attributes"] == account["attributes"]
    assert [(r["event"], r["whodunnit"]) for r in audit_rows(db)] == [
        ("create", str(admin_id)),
        ("update", str(admin_id)),
    ]


MUST_EXIST = invalid("contractor", "must exist", relationship=True)


@pytest.mark.parametrize(
    "body",
    [{"data": {"type": "contractors", "id": "999999"}}, {"data": None}],
    ids=["missing-contractor", "null"],
)
def test_replace_contractor_relationship_must_exist(
    api: Api, make_account: MakeAccount, body: dict[str, Any]
) -> None:
    account = make_account()
    response = api.patch(f"{member(account['id'])}/relationships/contractor", body)
    assert_errors(response, 422, [MUST_EXIST])
    assert_unchanged(api, account)


def test_replace_relationship_without_data_is_106(api: Api, make_account: MakeAccount) -> None:
    account = make_account()
    response = api.patch(f"{member(account['id'])}/relationships/contractor", {"meta": {}})
    assert_errors(
        response,
        400,
        [bad_request("Missing Parameter", "The required parameter, data, is missing.", "106")],
    )
    assert_unchanged(api, account)


@pytest.mark.parametrize(
    ("linkage", "error"),
    [
        (
            {"type": "accounts", "id": "1"},
            bad_request("Type Mismatch", "accounts is not a valid type for this operation.", "116"),
        ),
        (
            {"type": "contractors"},
            bad_request("Invalid Links Object", "Data is not a valid Links Object.", "115"),
        ),
        (
            {"type": "contractors", "id": "abc"},
            bad_request("Invalid field value", "abc is not a valid value for id.", "103"),
        ),
    ],
    ids=["116", "115", "103"],
)
def test_replace_contractor_relationship_bad_linkage(
    api: Api, make_account: MakeAccount, linkage: dict[str, Any], error: dict[str, Any]
) -> None:
    account = make_account()
    response = api.patch(f"{member(account['id'])}/relationships/contractor", {"data": linkage})
    assert_errors(response, 400, [error])
    assert_unchanged(api, account)


def test_delete_contractor_relationship_is_422(api: Api, make_account: MakeAccount) -> None:
    account = make_account()
    response = api.delete(f"{member(account['id'])}/relationships/contractor")
    assert_errors(response, 422, [MUST_EXIST])
    assert_unchanged(api, account)


@pytest.mark.parametrize("linkage_type", ["invoice-templates", "invoice_templates"])
def test_replace_invoice_template_relationship(
    api: Api, make_account: MakeAccount, linkage_type: str
) -> None:
    account = make_account()
    response = api.patch(
        f"{member(account['id'])}/relationships/invoice-template",
        {"data": {"type": linkage_type, "id": "3"}},
    )
    assert response.status_code == 204, response.text
    shown = api.get(f"{member(account['id'])}/relationships/invoice-template").json()
    # not checked for existence (contract §2.12)
    assert shown["data"] == {"type": "invoice-templates", "id": "3"}


def test_replace_invoice_template_relationship_singular_type_is_116(
    api: Api, make_account: MakeAccount
) -> None:
    account = make_account()
    response = api.patch(
        f"{member(account['id'])}/relationships/invoice-template",
        {"data": {"type": "invoice-template", "id": "3"}},
    )
    assert_errors(
        response,
        400,
        [
            bad_request(
                "Type Mismatch", "invoice_template is not a valid type for this operation.", "116"
            )
        ],
    )
    assert_unchanged(api, account)


def test_delete_invoice_template_relationship_sets_null(
    api: Api, contractor_id: int, db: Db
) -> None:
    body = account_body(contractor_id)
    body["data"]["relationships"]["invoice-template"] = {
        "data": {"type": "invoice-templates", "id": "5"}
    }
    created = api.post(ACCOUNTS, body)
    assert created.status_code == 201, created.text
    account_id = created.json()["data"]["id"]

    response = api.delete(f"{member(account_id)}/relationships/invoice-template")

    assert response.status_code == 204, response.text
    shown = api.get(member(account_id)).json()["data"]
    assert shown["relationships"]["invoice-template"]["data"] is None
    stored = db.fetchval("SELECT invoice_template_id FROM accounts WHERE id = $1", int(account_id))
    assert stored is None


@pytest.mark.parametrize("key", ["abc", "999999"])
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_write_relationship_of_unknown_account_is_404(api: Api, method: str, key: str) -> None:
    # contract §2.12: the URL id is verified as an integer only on GET; here abc is not found
    path = f"{member(key)}/relationships/invoice-template"
    response = api.patch(path, {"data": None}) if method == "patch" else api.delete(path)
    assert_errors(response, 404, [not_found(key)])


def test_related_contractor_document(
    api: Api, make_account: MakeAccount, make_contractor: MakeContractor
) -> None:
    contractor = make_contractor(name="acme", description="d", external_id=5, customer=True)
    body = account_body(contractor)
    created = api.post(ACCOUNTS, body)
    assert created.status_code == 201, created.text
    account_id = created.json()["data"]["id"]

    response = api.get(f"{member(account_id)}/contractor")

    assert response.status_code == 200
    own = f"{BASE_URL}/api/rest/admin/contractors/{contractor}"
    assert response.json() == {
        "data": {
            "id": str(contractor),
            "type": "contractors",
            "links": {"self": own},
            "attributes": {
                "name": "acme",
                "enabled": True,
                "vendor": True,
                "customer": True,
                "description": "d",
                "address": None,
                "phones": None,
                "external-id": 5,
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
    }


def test_related_contractor_of_missing_account_is_404(api: Api) -> None:
    assert_errors(api.get(f"{member(999999)}/contractor"), 404, [not_found("999999")])


# -- §4.1 the notification-settings row -------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "row"),
    [
        ({}, (None, None, None)),
        ({"balance-low-threshold": "-5.5"}, (-5.5, None, None)),
        ({"send-balance-notifications-to": []}, (None, None, None)),
        ({"send-balance-notifications-to": None}, (None, None, None)),
        ({"send-balance-notifications-to": [4, 2]}, (None, None, [4, 2])),
    ],
)
def test_create_writes_exactly_one_settings_row(
    api: Api, db: Db, contractor_id: int, attributes: dict[str, Any], row: tuple[Any, ...]
) -> None:
    response = api.post(ACCOUNTS, account_body(contractor_id, **attributes))
    assert response.status_code == 201, response.text
    low, high, send_to = row
    assert settings_rows(db, response.json()["data"]["id"]) == [
        {"low_threshold": low, "high_threshold": high, "send_to": send_to, "state_id": 0}
    ]


TRIO = {
    "balance-low-threshold": 10,
    "balance-high-threshold": 20,
    "send-balance-notifications-to": [1, 2],
}


@pytest.mark.parametrize(
    ("attributes", "row"),
    [
        ({"balance-low-threshold": 15}, (15, 20, [1, 2])),
        ({"balance-high-threshold": None}, (10, None, [1, 2])),
        ({"send-balance-notifications-to": []}, (10, 20, None)),
        ({"send-balance-notifications-to": 5}, (10, 20, [5])),
        ({"name": "renamed"}, (10, 20, [1, 2])),
    ],
)
def test_update_merges_the_notification_trio(
    api: Api, db: Db, make_account: MakeAccount, attributes: dict[str, Any], row: tuple[Any, ...]
) -> None:
    account = make_account(**TRIO)
    db.execute(
        "UPDATE account_balance_notification_settings SET state_id = 1 WHERE account_id = $1",
        int(account["id"]),
    )
    response = api.patch(member(account["id"]), update_body(account["id"], attributes))
    assert response.status_code == 200, response.text
    low, high, send_to = row
    # state_id is not touched by an update (contract §4.1)
    assert settings_rows(db, account["id"]) == [
        {"low_threshold": low, "high_threshold": high, "send_to": send_to, "state_id": 1}
    ]
    rendered = response.json()["data"]["attributes"]
    assert rendered["send-balance-notifications-to"] == send_to
    assert rendered["balance-low-threshold"] == (None if low is None else f"{low}.0")
    assert rendered["balance-high-threshold"] == (None if high is None else f"{high}.0")


def test_update_builds_a_missing_settings_row(api: Api, db: Db, make_account: MakeAccount) -> None:
    account = make_account()
    db.execute(
        "DELETE FROM account_balance_notification_settings WHERE account_id = $1",
        int(account["id"]),
    )
    response = api.patch(
        member(account["id"]), update_body(account["id"], {"balance-high-threshold": 3})
    )
    assert response.status_code == 200, response.text
    assert settings_rows(db, account["id"]) == [
        {"low_threshold": None, "high_threshold": 3, "send_to": None, "state_id": 0}
    ]


@pytest.mark.parametrize(
    "attributes",
    [
        {"balance-low-threshold": 20},
        {"balance-low-threshold": 25},
        {"balance-high-threshold": 10},
        {"balance-low-threshold": 90, "balance-high-threshold": 90},
        {"balance-low-threshold": 91, "balance-high-threshold": 90, "name": "renamed"},
    ],
)
def test_update_rejects_thresholds_and_keeps_the_row(
    api: Api, db: Db, make_account: MakeAccount, attributes: dict[str, Any]
) -> None:
    account = make_account(**TRIO)
    before = settings_rows(db, account["id"])
    response = api.patch(member(account["id"]), update_body(account["id"], attributes))
    assert_errors(
        response,
        422,
        [invalid("balance-low-threshold", "must be less than balance high threshold")],
    )
    assert_unchanged(api, account)
    assert settings_rows(db, account["id"]) == before


# -- §4.2 next_invoice_at and next_invoice_type_id ---------------------------------------


@pytest.mark.parametrize(
    ("period", "zone"),
    [(1, "Europe/Kyiv"), (2, "UTC"), (4, "America/Los_Angeles"), (7, "Asia/Tokyo")],
)
def test_create_schedules_the_next_invoice(
    api: Api, db: Db, contractor_id: int, period: int, zone: str
) -> None:
    started = now()
    body = account_body(contractor_id, **{"invoice-period-id": period, "timezone": zone})
    response = api.post(ACCOUNTS, body)
    assert response.status_code == 201, response.text
    assert schedule(db, response.json()["data"]["id"]) in expected_schedules(period, zone, started)


def test_update_setting_a_period_schedules(api: Api, db: Db, make_account: MakeAccount) -> None:
    account = make_account(timezone="Europe/Kyiv")
    started = now()
    response = api.patch(
        member(account["id"]), update_body(account["id"], {"invoice-period-id": 1})
    )
    assert response.status_code == 200, response.text
    assert schedule(db, account["id"]) in expected_schedules(1, "Europe/Kyiv", started)


def test_update_changing_the_period_recomputes(api: Api, db: Db, make_account: MakeAccount) -> None:
    account = make_account(**{"invoice-period-id": 1, "timezone": "Asia/Tokyo"})
    started = now()
    response = api.patch(
        member(account["id"]), update_body(account["id"], {"invoice-period-id": 4})
    )
    assert response.status_code == 200, response.text
    assert schedule(db, account["id"]) in expected_schedules(4, "Asia/Tokyo", started)


def test_update_clearing_the_period_clears_the_schedule(
    api: Api, db: Db, make_account: MakeAccount
) -> None:
    account = make_account(**{"invoice-period-id": 2})
    assert schedule(db, account["id"]) != (None, None)
    body = update_body(account["id"], {"invoice-period-id": None})
    response = api.patch(member(account["id"]), body)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["invoice-period-id"] is None
    assert schedule(db, account["id"]) == (None, None)


def test_update_changing_only_the_timezone_recomputes(
    api: Api, db: Db, make_account: MakeAccount
) -> None:
    account = make_account(**{"invoice-period-id": 1, "timezone": "UTC"})
    # a stale value proves the recomputation happened
    db.execute(
        "UPDATE accounts SET next_invoice_at = '2001-01-01T00:00:00Z', next_invoice_type_id = 1"
        " WHERE id = $1",
        int(account["id"]),
    )
    started = now()
    body = update_body(account["id"], {"timezone": "Pacific/Kiritimati"})
    response = api.patch(member(account["id"]), body)
    assert response.status_code == 200, response.text
    assert schedule(db, account["id"]) in expected_schedules(1, "Pacific/Kiritimati", started)


@pytest.mark.parametrize(
    "attributes",
    [
        {"invoice-period-id": 1, "timezone": "UTC"},
        {"invoice-period-id": "1", "name": "renamed"},
        {"timezone": "UTC", "vat": 5},
    ],
)
def test_update_resending_the_same_values_does_not_recompute(
    api: Api, db: Db, make_account: MakeAccount, attributes: dict[str, Any]
) -> None:
    account = make_account(**{"invoice-period-id": 1, "timezone": "UTC"})
    stale = datetime(2001, 1, 1, tzinfo=ZoneInfo("UTC"))
    db.execute(
        "UPDATE accounts SET next_invoice_at = $2, next_invoice_type_id = 1 WHERE id = $1",
        int(account["id"]),
        stale,
    )
    response = api.patch(member(account["id"]), update_body(account["id"], attributes))
    assert response.status_code == 200, response.text
    assert schedule(db, account["id"]) == (stale, 1)


def test_update_timezone_without_a_period_leaves_the_schedule_empty(
    api: Api, db: Db, make_account: MakeAccount
) -> None:
    account = make_account()
    body = update_body(account["id"], {"timezone": "Asia/Tokyo"})
    assert api.patch(member(account["id"]), body).status_code == 200
    assert schedule(db, account["id"]) == (None, None)


# -- §4.3 the audit log -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "ip"),
    [
        ({}, "127.0.0.1"),
        ({"X-Real-IP": "203.0.113.9"}, "203.0.113.9"),
        ({"X-Real-IP": "2001:db8::1"}, "2001:db8::1"),
    ],
)
def test_create_writes_one_create_audit_row(
    api: Api, db: Db, contractor_id: int, admin_id: int, headers: dict[str, str], ip: str
) -> None:
    response = api.post(ACCOUNTS, account_body(contractor_id), headers=headers)
    assert response.status_code == 201, response.text
    rows = audit_rows(db)
    assert [(r["item_type"], r["item_id"], r["event"], r["whodunnit"], r["ip"]) for r in rows] == [
        ("Account", int(response.json()["data"]["id"]), "create", str(admin_id), ip)
    ]


@pytest.mark.parametrize("method", ["patch", "put"])
def test_update_of_account_columns_writes_one_update_row(
    api: Api, db: Db, make_account: MakeAccount, admin_id: int, method: str
) -> None:
    account = make_account(name="before")
    send = getattr(api, method)
    body = update_body(account["id"], {"name": "after", "balance-low-threshold": 1})
    response = send(member(account["id"]), body, headers={"X-Real-IP": "192.0.2.1"})
    assert response.status_code == 200, response.text
    rows = audit_rows(db)
    assert [(r["item_id"], r["event"], r["whodunnit"], r["ip"]) for r in rows] == [
        (int(account["id"]), "create", str(admin_id), "127.0.0.1"),
        (int(account["id"]), "update", str(admin_id), "192.0.2.1"),
    ]
    assert rows[1]["object_changes"]["name"] == ["before", "after"]


@pytest.mark.parametrize(
    "attributes",
    [
        {"balance-low-threshold": 1, "balance-high-threshold": 2},
        {"send-balance-notifications-to": [9]},
        {"name": "same", "vat": "0", "timezone": "UTC"},
    ],
    ids=["thresholds", "send-to", "same-values"],
)
def test_update_without_account_column_changes_writes_no_audit(
    api: Api, db: Db, make_account: MakeAccount, attributes: dict[str, Any]
) -> None:
    account = make_account(name="same")
    response = api.patch(member(account["id"]), update_body(account["id"], attributes))
    assert response.status_code == 200, response.text
    assert [r["event"] for r in audit_rows(db)] == ["create"]


def test_rejected_writes_write_no_audit(api: Api, db: Db, make_account: MakeAccount) -> None:
    account = make_account()
    rejected = [
        api.patch(member(account["id"]), update_body(account["id"], {"vat": 101})),
        api.patch(member(account["id"]), update_body(account["id"], {"balance": 1})),
        api.post(ACCOUNTS, account_body(999999, name="other")),
        api.delete(f"{member(account['id'])}/relationships/contractor"),
    ]
    assert [response.status_code for response in rejected] == [422, 400, 422, 422]
    assert [r["event"] for r in audit_rows(db)] == ["create"]
    assert db.fetchval("SELECT count(*) FROM accounts") == 1
    assert db.fetchval("SELECT count(*) FROM account_balance_notification_settings") == 1


def test_the_stored_columns_derived_from_the_declaration_cover_the_table(db: Db) -> None:
    """The columns a write stores come from the declaration (resources/accounts.py STORED):
    with the ones the service keeps itself, they are exactly the table's."""
    from accounts_api.resources.accounts import STORED

    kept_by_the_service = {
        "id",
        "balance",
        "currency_id",
        "currency_name",
        "next_invoice_at",
        "next_invoice_type_id",
        "invoice_ref_template",
        "created_at",
        "updated_at",
    }
    table = {
        row["column_name"]
        for row in db.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'"
        )
    }
    assert set(STORED) | kept_by_the_service == table
    assert not set(STORED) & kept_by_the_service


def test_update_judges_its_lookups_after_waiting_for_the_row_lock(
    api: Api, db: Db, contractor_id: int, make_contractor: Callable[..., int]
) -> None:
    """Found in review (issue 10): lookups read in the statement that waits for the row lock
    see the database as it was before the wait. A contractor deleted meanwhile must give the
    contract's 422, not a foreign-key error (500)."""
    created = api.post(ACCOUNTS, account_body(contractor_id))
    assert created.status_code == 201, created.text
    account = created.json()["data"]["id"]
    doomed = make_contractor()
    body = {
        "data": {
            "type": "accounts",
            "id": account,
            "relationships": {"contractor": {"data": {"type": "contractors", "id": str(doomed)}}},
        }
    }
    answers: list[Any] = []
    db.execute("BEGIN")
    try:
        db.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", int(account))
        writer = threading.Thread(target=lambda: answers.append(api.put(member(account), body)))
        writer.start()
        assert wait_until(lambda: lock_waiters(db) > 0), "the update never waited"
        db.execute("DELETE FROM contractors WHERE id = $1", doomed)
    finally:
        db.execute("COMMIT")  # the delete commits as the lock is released
    writer.join(60)

    assert_errors(answers[0], 422, [invalid("contractor", "must exist", relationship=True)])
    assert db.fetchval("SELECT contractor_id FROM accounts WHERE id = $1", int(account)) == (
        contractor_id
    )
