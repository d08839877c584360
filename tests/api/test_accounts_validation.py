"""Accounts write validation: the body-level 400s of contract §2.9/§2.10/§3.3, every rule of
§3.1 with the exact 422 objects of §3.2, and the validation extras decided for this server.
Every rejected write is followed by a check that nothing was written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import account_body
from tests.conftest import JSONAPI, Api, Db

ACCOUNTS = "/api/rest/admin/accounts"
UUID_A = "29161666-c29c-11e8-a11d-a088b4454590"
UUID_B = "3f0c2a4e-5b1d-4c3e-9a7f-0123456789ab"

MakeAccount = Callable[..., dict[str, Any]]


def member(account_id: object) -> str:
    return f"{ACCOUNTS}/{account_id}"


def invalid(key: str, message: str) -> dict[str, Any]:
    """A 422 validation error object (contract §3)."""
    member_name = "relationships" if key == "contractor" else "attributes"
    return {
        "title": message,
        "detail": f"{key} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/{member_name}/{key}"},
        "status": "422",
    }


def bad_request(title: str, detail: str, code: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "code": code, "status": "400"}


def missing(parameter: str) -> dict[str, Any]:
    return bad_request(
        "Missing Parameter", f"The required parameter, {parameter}, is missing.", "106"
    )


def not_allowed(key: str) -> dict[str, Any]:
    return bad_request("Param not allowed", f"{key} is not allowed.", "105")


INVALID_DATA = bad_request("Invalid data format", "Data must be a hash.", "122")
LINKS_OBJECT = bad_request("Invalid Links Object", "Data is not a valid Links Object.", "115")


def type_mismatch(linkage_type: str) -> dict[str, Any]:
    return bad_request(
        "Type Mismatch", f"{linkage_type} is not a valid type for this operation.", "116"
    )


def invalid_id(value: str) -> dict[str, Any]:
    return bad_request("Invalid field value", f"{value} is not a valid value for id.", "103")


def assert_errors(response: Any, status: int, errors: list[dict[str, Any]]) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    body = response.json()
    assert body == {"errors": errors}
    # contract §0.4: members in the order title, detail, code, source, status
    assert [list(error) for error in body["errors"]] == [list(error) for error in errors]


def assert_nothing_created(db: Db, accounts: int = 0) -> None:
    counts = db.fetchrow(
        "SELECT (SELECT count(*) FROM accounts) AS accounts,"
        " (SELECT count(*) FROM account_balance_notification_settings) AS settings,"
        " (SELECT count(*) FROM audit_log WHERE event <> 'create') AS changes,"
        " (SELECT count(*) FROM audit_log) AS audit"
    )
    assert counts is not None
    assert dict(counts) == {
        "accounts": accounts,
        "settings": accounts,
        "changes": 0,
        "audit": accounts,
    }


def assert_unchanged(api: Api, db: Db, account: dict[str, Any], accounts: int = 1) -> None:
    """After a rejected update the account reads back exactly as before, nothing audited."""
    response = api.get(member(account["id"]))
    assert response.status_code == 200
    assert response.json()["data"] == account
    assert_nothing_created(db, accounts)


def with_data(data: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {"data": {**data, **members}}


# -- §2.9 body-level 400s on create -------------------------------------------------------


def create_cases(contractor: str) -> list[tuple[Any, dict[str, Any]]]:
    linkage = {"data": {"type": "contractors", "id": contractor}}
    good = {"type": "accounts", "attributes": {"name": "a", "currency": "USD"}}
    rel = {"contractor": linkage}
    return [
        ({}, missing("data")),
        ({"data": None}, missing("data")),
        ({"data": {}}, missing("data")),
        ({"data": []}, missing("data")),
        ({"data": ""}, missing("data")),
        ({"data": "accounts"}, INVALID_DATA),
        ({"data": 5}, INVALID_DATA),
        ({"data": [good]}, INVALID_DATA),
        ({"data": {"attributes": good["attributes"]}}, missing("type")),
        ({"data": {"type": None, "attributes": good["attributes"]}}, missing("type")),
        (
            with_data(good, type="contractors"),
            bad_request("Invalid resource", "contractors is not a valid resource.", "101"),
        ),
        # the type is checked before the attributes, wherever it stands
        (
            {"data": {"attributes": {"balance": 1}, "type": "nonsense"}},
            bad_request("Invalid resource", "nonsense is not a valid resource.", "101"),
        ),
        (with_data(good, id="5", relationships=rel), not_allowed("id")),
        (with_data(good, id=None, relationships=rel), not_allowed("id")),
        (with_data(good, attributes={"name": "a", "balance": 1}), not_allowed("balance")),
        (with_data(good, attributes={"name": "a", "min_balance": 1}), not_allowed("min_balance")),
        (with_data(good, attributes={"name": "a", "colour": "red"}), not_allowed("colour")),
        (
            with_data(good, relationships={"invoice_template": {"data": None}}),
            not_allowed("invoice_template"),
        ),
        (with_data(good, relationships={"owner": linkage}), not_allowed("owner")),
        # only the first offender, in body order
        (
            with_data(good, attributes={"name": "a", "min_balance": 1, "balance": 1}),
            not_allowed("min_balance"),
        ),
        # issue 8: `meta` is ignored, the next offender is reported
        (
            {"data": {"type": "accounts", "meta": {}, "attributes": {"balance": 1}}},
            not_allowed("balance"),
        ),
        (
            {"data": {"type": "accounts", "attributes": {"balance": 1}, "meta": {}}},
            not_allowed("balance"),
        ),
        (
            {"data": {"type": "accounts", "attributes": {"balance": 1}, "id": "5"}},
            not_allowed("balance"),
        ),
        (
            {"data": {"type": "accounts", "id": "5", "attributes": {"balance": 1}}},
            not_allowed("id"),
        ),
        (
            {
                "data": {
                    "type": "accounts",
                    "relationships": {"invoice_template": {"data": None}},
                    "attributes": {"balance": 1},
                }
            },
            not_allowed("invoice_template"),
        ),
        # relationship linkage
        (
            with_data(good, relationships={"contractor": {"data": {"type": "contractors"}}}),
            LINKS_OBJECT,
        ),
        (
            with_data(
                good,
                relationships={
                    "contractor": {"data": {"type": "contractors", "id": contractor, "x": 1}}
                },
            ),
            LINKS_OBJECT,
        ),
        (with_data(good, relationships={"contractor": {"data": contractor}}), LINKS_OBJECT),
        (with_data(good, relationships={"contractor": {"data": [linkage["data"]]}}), LINKS_OBJECT),
        (
            with_data(
                good, relationships={"contractor": {"data": {"type": "accounts", "id": contractor}}}
            ),
            type_mismatch("accounts"),
        ),
        (
            with_data(
                good,
                relationships={
                    "contractor": linkage,
                    "invoice-template": {"data": {"type": "invoice-template", "id": "1"}},
                },
            ),
            type_mismatch("invoice_template"),
        ),
        (
            with_data(
                good, relationships={"contractor": {"data": {"type": "contractors", "id": "abc"}}}
            ),
            invalid_id("abc"),
        ),
        (
            with_data(
                good, relationships={"contractor": {"data": {"type": "contractors", "id": "5x"}}}
            ),
            invalid_id("5x"),
        ),
    ]


def case_ids(cases: list[tuple[Any, dict[str, Any]]]) -> list[str]:
    """`<index>-<code>-<first word of the detail>`, e.g. `25-105-balance`."""
    return [
        f"{i:02d}-{error['code']}-{error['detail'].split()[0]}"
        for i, (_, error) in enumerate(cases)
    ]


CREATE_CASES = case_ids(create_cases("1"))


@pytest.mark.parametrize("case", range(len(CREATE_CASES)), ids=CREATE_CASES)
def test_create_body_level_400(api: Api, db: Db, contractor_id: int, case: int) -> None:
    body, error = create_cases(str(contractor_id))[case]
    assert_errors(api.post(ACCOUNTS, body), 400, [error])
    assert_nothing_created(db)


# -- §2.10 update checks, in their order ---------------------------------------------------


def update_cases(key: str) -> list[tuple[Any, dict[str, Any]]]:
    good = {"type": "accounts", "id": key, "attributes": {"name": "changed"}}
    other_key = f"0{key}"
    return [
        ({}, missing("data")),
        ({"data": None}, missing("data")),
        ({"data": {}}, missing("data")),
        ({"data": []}, missing("data")),
        ({"data": ""}, missing("data")),
        ({"data": "accounts"}, INVALID_DATA),
        ({"data": {"type": "accounts", "attributes": {"name": "changed"}}}, key_required()),
        (with_data(good, id=None), key_required()),
        # 109 comes before the type check
        ({"data": {"type": "nonsense", "attributes": {}}}, key_required()),
        (with_data(good, id=other_key), key_mismatch(other_key)),
        # 110 comes before the type check
        (with_data(good, id=other_key, type="nonsense"), key_mismatch(other_key)),
        ({"data": {"id": key, "attributes": {"name": "changed"}}}, missing("type")),
        (
            with_data(good, type="contractors"),
            bad_request("Invalid resource", "contractors is not a valid resource.", "101"),
        ),
        (with_data(good, attributes={"name": "changed", "balance": 1}), not_allowed("balance")),
        (with_data(good, attributes={"currency": "EUR"}), not_allowed("currency")),
        (with_data(good, attributes={"max_balance": 1}), not_allowed("max_balance")),
        (with_data(good, attributes={"colour": "red"}), not_allowed("colour")),
        # an unknown key is refused while parsing, before a read-only key is compared
        (with_data(good, attributes={"balance": 1, "colour": "red"}), not_allowed("colour")),
        (with_data(good, included=[]), not_allowed("included")),
        (
            with_data(good, relationships={"invoice_template": {"data": None}}),
            not_allowed("invoice_template"),
        ),
        (
            with_data(
                good, relationships={"contractor": {"data": {"type": "accounts", "id": "1"}}}
            ),
            type_mismatch("accounts"),
        ),
        (with_data(good, relationships={"contractor": {"data": {"id": "1"}}}), LINKS_OBJECT),
    ]


def key_required() -> dict[str, Any]:
    return bad_request("A key is required", "The resource object does not contain a key.", "109")


def key_mismatch(key: object) -> dict[str, Any]:
    return bad_request(
        "Key is not included in URL", f"The URL does not support the key {key}", "110"
    )


UPDATE_CASES = case_ids(update_cases("1"))


@pytest.mark.parametrize("method", ["patch", "put"])
@pytest.mark.parametrize("case", range(len(UPDATE_CASES)), ids=UPDATE_CASES)
def test_update_body_level_400(
    api: Api, db: Db, make_account: MakeAccount, case: int, method: str
) -> None:
    account = make_account()
    body, error = update_cases(account["id"])[case]
    response = getattr(api, method)(member(account["id"]), body)
    assert_errors(response, 400, [error])
    assert_unchanged(api, db, account)


@pytest.mark.parametrize("key", ["13", 13])
def test_update_key_mismatch_names_the_body_key(api: Api, key: object) -> None:
    response = api.patch(
        member(12), {"data": {"type": "accounts", "id": key, "attributes": {"name": "x"}}}
    )
    assert_errors(response, 400, [key_mismatch(13)])


def test_update_ignores_an_attribute_name_under_relationships(
    api: Api, db: Db, make_account: MakeAccount
) -> None:
    # contract §2.9 quirk, on update too: nothing to change, so 200 with the current state
    account = make_account()
    body = {
        "data": {
            "type": "accounts",
            "id": account["id"],
            "relationships": {"timezone": {"data": {"type": "timezones", "id": "Asia/Tokyo"}}},
        }
    }
    response = api.patch(member(account["id"]), body)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == account
    assert_unchanged(api, db, account)


# -- §3.3 read-only attributes -------------------------------------------------------------


def test_balance_on_create_is_400(api: Api, db: Db, contractor_id: int) -> None:
    response = api.post(ACCOUNTS, account_body(contractor_id, balance=100))
    assert_errors(response, 400, [not_allowed("balance")])
    assert_nothing_created(db)


@pytest.mark.parametrize(
    ("attributes", "offender"),
    [
        ({"balance": "1"}, "balance"),
        ({"currency": "1"}, "currency"),
        ({"balance": "5.01"}, "balance"),
        ({"balance": None}, "balance"),
        ({"currency": "EUR"}, "currency"),
        # issue 8: the first value that differs from the stored one, in body order
        ({"currency": "USD", "balance": 4}, "balance"),
        ({"balance": 5, "currency": "usd"}, "currency"),
        ({"name": "changed", "balance": "-5.0"}, "balance"),
    ],
    ids=lambda value: ",".join(value) if isinstance(value, dict) else value,
)
@pytest.mark.parametrize("method", ["patch", "put"])
def test_read_only_attribute_changed_on_update_is_400(
    api: Api,
    db: Db,
    make_account: MakeAccount,
    attributes: dict[str, Any],
    offender: str,
    method: str,
) -> None:
    account = make_account()
    db.set_balance(int(account["id"]), 5)
    account["attributes"]["balance"] = "5.0"
    body = {"data": {"type": "accounts", "id": account["id"], "attributes": attributes}}
    response = getattr(api, method)(member(account["id"]), body)
    assert_errors(response, 400, [not_allowed(offender)])
    assert_unchanged(api, db, account)


@pytest.mark.parametrize(
    "attributes",
    [
        {"balance": "5.0"},
        {"balance": 5},
        {"balance": "5.00"},
        {"balance": 5.0},
        {"currency": "USD"},
        {"currency": "USD", "balance": "5"},
    ],
    ids=lambda attributes: ",".join(f"{k}={v!r}" for k, v in attributes.items()),
)
def test_read_only_attribute_as_stored_on_update_is_ignored(
    api: Api, db: Db, make_account: MakeAccount, attributes: dict[str, Any]
) -> None:
    # issue 8: a client sending back what it read; nothing to change, so nothing is audited
    account = make_account()
    db.set_balance(int(account["id"]), 5)
    account["attributes"]["balance"] = "5.0"
    body = {"data": {"type": "accounts", "id": account["id"], "attributes": attributes}}
    response = api.patch(member(account["id"]), body)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == account
    assert_unchanged(api, db, account)


def test_read_only_attribute_as_stored_beside_a_change(
    api: Api, db: Db, make_account: MakeAccount
) -> None:
    account = make_account()
    attributes = {**account["attributes"], "name": "renamed", "max-balance": "10"}
    body = {
        "data": {
            **account,
            "attributes": attributes,
            "meta": {"client": "x"},
        }
    }
    response = api.patch(member(account["id"]), body)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {
        **account["attributes"],
        "name": "renamed",
        "max-balance": "10.0",
    }
    assert db.fetchval("SELECT name FROM accounts WHERE id = $1", int(account["id"])) == "renamed"


def test_read_only_attribute_on_a_missing_account_is_404(api: Api) -> None:
    # the stored value is needed to judge it: a missing record is found missing first
    body = {"data": {"type": "accounts", "id": "999999", "attributes": {"balance": "0.0"}}}
    response = api.patch(member(999999), body)
    assert response.status_code == 404


@pytest.mark.parametrize("member_name", ["links", "meta"])
def test_links_and_meta_of_the_resource_object_are_ignored(
    api: Api, db: Db, contractor_id: int, make_account: MakeAccount, member_name: str
) -> None:
    # issue 8 (JSON:API 1.0 §5.2 allows both in a resource object); Yeti: 105
    extra = {"self": "http://elsewhere.example/x"} if member_name == "links" else {"a": 1}
    body = account_body(contractor_id, name="with-extra")
    body["data"][member_name] = extra
    created = api.post(ACCOUNTS, body)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["links"]["self"].startswith("http://api.example.com/")
    account = make_account()
    update = {"data": {"type": "accounts", "id": account["id"], member_name: extra}}
    response = api.patch(member(account["id"]), update)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == account


# -- §3.2 the exact 422 examples ----------------------------------------------------------


def test_example_1_create_without_currency_and_contractor(api: Api, db: Db) -> None:
    body = {"data": {"type": "accounts", "attributes": {"name": "name", "max-balance": -1}}}
    assert_errors(
        api.post(ACCOUNTS, body),
        422,
        [
            invalid("contractor", "must exist"),
            invalid("currency", "must exist"),
            invalid("max-balance", "must be greater than or equal to 0.0"),
        ],
    )
    assert_nothing_created(db)


def test_example_3_update_min_above_max(api: Api, db: Db, make_account: MakeAccount) -> None:
    account = make_account()
    body = {
        "data": {
            "type": "accounts",
            "id": account["id"],
            "attributes": {"min-balance": 10, "max-balance": 0},
        }
    }
    assert_errors(
        api.patch(member(account["id"]), body),
        422,
        [invalid("max-balance", "must be greater than or equal to 10.0")],
    )
    assert_unchanged(api, db, account)


# §3.1 rules on create, one case per rule and message. Each: attributes, expected errors.
THRESHOLD = invalid("balance-low-threshold", "must be less than balance high threshold")
CREATE_RULES: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    # 2, 18: currency
    ("currency-absent", {"currency": None}, [invalid("currency", "must exist")]),
    (
        "currency-unknown",
        {"currency": "INVALID"},
        [invalid("currency", "must exist"), invalid("currency", "is not found")],
    ),
    (
        "currency-case-sensitive",
        {"currency": "usd"},
        [invalid("currency", "must exist"), invalid("currency", "is not found")],
    ),
    # 3: min-balance numericality
    ("min-balance-nan", {"min-balance": "abc"}, [invalid("min-balance", "is not a number")]),
    # 6: presence
    ("name-null", {"name": None}, [invalid("name", "can't be blank")]),
    ("name-empty", {"name": ""}, [invalid("name", "can't be blank")]),
    ("name-whitespace", {"name": "   "}, [invalid("name", "can't be blank")]),
    (
        "timezone-empty",
        {"timezone": ""},
        [invalid("timezone", "can't be blank"), invalid("timezone", " is not a valid timezone")],
    ),
    (
        "vat-empty",
        {"vat": ""},
        [invalid("vat", "can't be blank"), invalid("vat", "is not a number")],
    ),
    (
        "max-balance-null",
        {"max-balance": None},
        [invalid("max-balance", "can't be blank"), invalid("max-balance", "is not a number")],
    ),
    ("min-balance-null", {"min-balance": None}, [invalid("min-balance", "can't be blank")]),
    (
        "presence-order",
        {"min-balance": None, "max-balance": None, "vat": None, "timezone": None, "name": ""},
        [
            invalid("name", "can't be blank"),
            invalid("timezone", "can't be blank"),
            invalid("timezone", " is not a valid timezone"),
            invalid("vat", "can't be blank"),
            invalid("vat", "is not a number"),
            invalid("max-balance", "can't be blank"),
            invalid("max-balance", "is not a number"),
            invalid("min-balance", "can't be blank"),
        ],
    ),
    # 7: timezone (example 6 and 7)
    (
        "timezone-unknown",
        {"timezone": "Mars/Base"},
        [invalid("timezone", "Mars/Base is not a valid timezone")],
    ),
    (
        "timezone-friendly",
        {"timezone": "Kyiv"},
        [invalid("timezone", "Kyiv is not a valid timezone")],
    ),
    (
        "timezone-null",
        {"timezone": None},
        [invalid("timezone", "can't be blank"), invalid("timezone", " is not a valid timezone")],
    ),
    # 8: max-balance
    ("max-balance-nan", {"max-balance": "abc"}, [invalid("max-balance", "is not a number")]),
    (
        "max-below-min",
        {"min-balance": 10, "max-balance": 0},
        [invalid("max-balance", "must be greater than or equal to 10.0")],
    ),
    (
        "max-below-negative-min",
        {"min-balance": "-5.5", "max-balance": -6},
        [invalid("max-balance", "must be greater than or equal to -5.5")],
    ),
    # 9: capacities
    *[
        (f"{key}-{label}", {key: value}, [invalid(key, message)])
        for key in ("termination-capacity", "origination-capacity", "total-capacity")
        for label, value, message in (
            ("zero", 0, "must be greater than 0"),
            ("negative", -1, "must be greater than 0"),
            ("too-big", 40000, "must be less than or equal to 32767"),
            ("fraction", 1.5, "must be an integer"),
            ("nan", "abc", "is not a number"),
        )
    ],
    (
        "capacity-order",
        {"total-capacity": 0, "origination-capacity": 0, "termination-capacity": 0},
        [
            invalid("termination-capacity", "must be greater than 0"),
            invalid("origination-capacity", "must be greater than 0"),
            invalid("total-capacity", "must be greater than 0"),
        ],
    ),
    # 11: vat
    ("vat-above-100", {"vat": 101}, [invalid("vat", "must be less than or equal to 100")]),
    ("vat-negative", {"vat": -1}, [invalid("vat", "must be greater than or equal to 0")]),
    ("vat-nan", {"vat": "abc"}, [invalid("vat", "is not a number")]),
    (
        "vat-null",
        {"vat": None},
        [invalid("vat", "can't be blank"), invalid("vat", "is not a number")],
    ),
    # 12: destination-rate-limit
    (
        "rate-limit-negative",
        {"destination-rate-limit": -0.1},
        [invalid("destination-rate-limit", "must be greater than or equal to 0")],
    ),
    (
        "rate-limit-nan",
        {"destination-rate-limit": "abc"},
        [invalid("destination-rate-limit", "is not a number")],
    ),
    # 13: max-call-duration
    (
        "duration-zero",
        {"max-call-duration": 0},
        [invalid("max-call-duration", "must be greater than 0")],
    ),
    (
        "duration-nan",
        {"max-call-duration": "abc"},
        [invalid("max-call-duration", "is not a number")],
    ),
    # 16: invoice period
    *[
        (
            f"period-{value}",
            {"invoice-period-id": value},
            [invalid("invoice-period-id", "is not included in the list")],
        )
        for value in (9, 0, 8, "abc")
    ],
    # 19: thresholds
    ("thresholds-equal", {"balance-low-threshold": 90, "balance-high-threshold": 90}, [THRESHOLD]),
    (
        "thresholds-equal-text",
        {"balance-low-threshold": "90", "balance-high-threshold": "90.0"},
        [THRESHOLD],
    ),
    (
        "thresholds-inverted",
        {"balance-low-threshold": 96, "balance-high-threshold": 95},
        [THRESHOLD],
    ),
    # ordering: model errors by attribute, the form's currency error joins its group,
    # the threshold error comes last
    (
        "group-order",
        {
            "balance-low-threshold": 2,
            "balance-high-threshold": 1,
            "vat": 101,
            "currency": "INVALID",
            "name": "",
        },
        [
            invalid("currency", "must exist"),
            invalid("currency", "is not found"),
            invalid("name", "can't be blank"),
            invalid("vat", "must be less than or equal to 100"),
            THRESHOLD,
        ],
    ),
    # the decided extras
    ("uuid-invalid", {"uuid": "not-a-uuid"}, [invalid("uuid", "is invalid")]),
    (
        "threshold-nan",
        {"balance-low-threshold": "abc"},
        [invalid("balance-low-threshold", "is not a number")],
    ),
    (
        "high-threshold-nan",
        {"balance-high-threshold": "abc"},
        [invalid("balance-high-threshold", "is not a number")],
    ),
    *[
        (
            f"{key}-{label}",
            {key: value},
            [invalid(key, "must be a list of contact ids")],
        )
        for key in ("send-invoices-to", "send-balance-notifications-to")
        for label, value in (
            ("text", ["x"]),
            ("zero", [0]),
            ("negative", [-1]),
            ("fraction", [1.5]),
            ("too-big", [2**31]),
            ("object", {"id": 1}),
        )
    ],
    (
        "external-id-too-big",
        {"external-id": 2**63},
        [invalid("external-id", "must be less than or equal to 9223372036854775807")],
    ),
    (
        "duration-too-big",
        {"max-call-duration": 2**31},
        [invalid("max-call-duration", "must be less than or equal to 2147483647")],
    ),
    (
        "name-too-long",
        {"name": "n" * 256},
        [invalid("name", "is too long (maximum is 255 characters)")],
    ),
    ("name-nul", {"name": "a\x00b"}, [invalid("name", "must not contain null bytes")]),
    ("timezone-nul", {"timezone": "UTC\x00"}, [invalid("timezone", "must not contain null bytes")]),
    *[
        (f"name-{label}", {"name": value}, [invalid("name", "must be a string")])
        for label, value in (("true", True), ("list", ["a"]), ("object", {"a": 1}))
    ],
    *[
        (f"timezone-{label}", {"timezone": value}, [invalid("timezone", "must be a string")])
        for label, value in (("true", True), ("list", ["UTC"]), ("object", {"name": "UTC"}))
    ],
    *[
        (f"{key}-out-of-range-{value}", {key: value}, [invalid(key, "is out of range")])
        for key, value in (
            ("max-balance", "1e31"),
            ("min-balance", "-1e31"),
            ("vat", "1e40"),
            ("balance-low-threshold", "2e30"),
            ("destination-rate-limit", "1e31"),
        )
    ],
]


@pytest.mark.parametrize(
    ("attributes", "errors"),
    [pytest.param(attributes, errors, id=name) for name, attributes, errors in CREATE_RULES],
)
def test_create_validation(
    api: Api,
    db: Db,
    contractor_id: int,
    attributes: dict[str, Any],
    errors: list[dict[str, Any]],
) -> None:
    assert_errors(api.post(ACCOUNTS, account_body(contractor_id, **attributes)), 422, errors)
    assert_nothing_created(db)


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"type": "accounts", "attributes": {"name": "a", "currency": "USD"}}},
        {
            "data": {
                "type": "accounts",
                "attributes": {"name": "a", "currency": "USD"},
                "relationships": {"contractor": {"data": {"type": "contractors", "id": "999999"}}},
            }
        },
        {
            "data": {
                "type": "accounts",
                "attributes": {"name": "a", "currency": "USD"},
                "relationships": {"contractor": None},
            }
        },
    ],
    ids=["absent", "missing-record", "null"],
)
def test_create_requires_an_existing_contractor(api: Api, db: Db, body: dict[str, Any]) -> None:
    assert_errors(api.post(ACCOUNTS, body), 422, [invalid("contractor", "must exist")])
    assert_nothing_created(db)


# The same rules reached through an update (example 6, example 7, thresholds, extras).
UPDATE_RULES = [
    rule
    for rule in CREATE_RULES
    if not rule[0].startswith(("currency", "group-order", "presence-order"))
] + [
    ("uuid-null", {"uuid": None}, [invalid("uuid", "can't be blank")]),
]


@pytest.mark.parametrize(
    ("attributes", "errors"),
    [pytest.param(attributes, errors, id=name) for name, attributes, errors in UPDATE_RULES],
)
def test_update_validation(
    api: Api,
    db: Db,
    make_account: MakeAccount,
    attributes: dict[str, Any],
    errors: list[dict[str, Any]],
) -> None:
    account = make_account()
    body = {"data": {"type": "accounts", "id": account["id"], "attributes": attributes}}
    assert_errors(api.put(member(account["id"]), body), 422, errors)
    assert_unchanged(api, db, account)


BOUNDARIES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("min-equals-max", {"vat": 0, "min-balance": 5, "max-balance": 5}, {"max-balance": "5.0"}),
    (
        "lowest-limits",
        {"vat": 100, "destination-rate-limit": 0, "max-call-duration": 1},
        {"vat": "100.0", "destination-rate-limit": "0.0", "max-call-duration": 1},
    ),
    (
        "capacities",
        {"origination-capacity": 1, "termination-capacity": 32767, "total-capacity": "20"},
        {"origination-capacity": 1, "termination-capacity": 32767, "total-capacity": 20},
    ),
    (
        "thresholds-free-of-balances",
        {"balance-low-threshold": -10, "balance-high-threshold": -9.5, "max-balance": 200},
        {"balance-low-threshold": "-10.0", "balance-high-threshold": "-9.5"},
    ),
    ("one-threshold", {"balance-low-threshold": 5}, {"balance-high-threshold": None}),
    (
        "integer-limits",
        {"external-id": -(2**63), "max-call-duration": 2**31 - 1},
        {"external-id": -(2**63), "max-call-duration": 2**31 - 1},
    ),
    ("long-name", {"name": "n" * 255, "invoice-period-id": 7}, {"name": "n" * 255}),
    ("uuid-upper-case", {"uuid": UUID_B.upper()}, {"uuid": UUID_B}),
    ("decimal-1e30", {"max-balance": "1e30"}, {"max-balance": "1" + "0" * 30 + ".0"}),
    (
        "contact-ids",
        {"send-invoices-to": [2**31 - 1], "send-balance-notifications-to": ["5"]},
        {"send-invoices-to": [2**31 - 1], "send-balance-notifications-to": [5]},
    ),
    # "beyond 1e30 in magnitude" is out of range; a tiny magnitude is not
    (
        "tiny-decimal",
        {"destination-rate-limit": "1e-31"},
        {"destination-rate-limit": "0." + "0" * 30 + "1"},
    ),
]


@pytest.mark.parametrize(
    ("attributes", "rendered"),
    [pytest.param(attributes, rendered, id=name) for name, attributes, rendered in BOUNDARIES],
)
def test_create_accepts_boundaries(
    api: Api, contractor_id: int, attributes: dict[str, Any], rendered: dict[str, Any]
) -> None:
    response = api.post(ACCOUNTS, account_body(contractor_id, **attributes))
    assert response.status_code == 201, response.text
    shown = response.json()["data"]["attributes"]
    assert {key: shown[key] for key in rendered} == rendered


# -- uniqueness (§3.1 rules 4, 5, 10; example 5) -------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "key"),
    [
        ({"name": "taken"}, "name"),
        ({"uuid": UUID_A}, "uuid"),
        ({"external-id": 100}, "external-id"),
    ],
)
def test_create_duplicate_is_422(
    api: Api,
    db: Db,
    make_account: MakeAccount,
    contractor_id: int,
    attributes: dict[str, Any],
    key: str,
) -> None:
    make_account(name="taken", uuid=UUID_A, **{"external-id": 100})
    fresh = {"name": "fresh", **attributes}
    response = api.post(ACCOUNTS, account_body(contractor_id, **fresh))
    assert_errors(response, 422, [invalid(key, "has already been taken")])
    assert_nothing_created(db, accounts=1)


@pytest.mark.parametrize(
    ("attributes", "key"),
    [
        ({"name": "taken"}, "name"),
        ({"uuid": UUID_A}, "uuid"),
        ({"external-id": 100}, "external-id"),
    ],
)
def test_update_to_a_duplicate_is_422(
    api: Api, db: Db, make_account: MakeAccount, attributes: dict[str, Any], key: str
) -> None:
    make_account(name="taken", uuid=UUID_A, **{"external-id": 100})
    account = make_account(name="mine")
    body = {"data": {"type": "accounts", "id": account["id"], "attributes": attributes}}
    assert_errors(
        api.patch(member(account["id"]), body), 422, [invalid(key, "has already been taken")]
    )
    assert_unchanged(api, db, account, accounts=2)


def test_an_update_refused_by_its_lookups_leaves_the_settings_row_as_it_was(
    api: Api, db: Db, make_account: MakeAccount
) -> None:
    # issue 10: the lookups are judged in the statement that writes; when one fails, the
    # settings row that statement wrote goes with the rollback
    make_account(name="taken")
    account = make_account(name="mine", **{"balance-high-threshold": 10})
    attributes = {"name": "taken", "balance-high-threshold": 50}
    body = {"data": {"type": "accounts", "id": account["id"], "attributes": attributes}}
    assert_errors(
        api.patch(member(account["id"]), body), 422, [invalid("name", "has already been taken")]
    )
    assert_unchanged(api, db, account, accounts=2)


def test_uniqueness_allows_own_values_case_variants_and_null_external_ids(
    api: Api, make_account: MakeAccount
) -> None:
    account = make_account(name="Acme", uuid=UUID_A, **{"external-id": 100})
    make_account(name="acme")
    make_account(**{"external-id": None})
    make_account(**{"external-id": None})
    body = {
        "data": {
            "type": "accounts",
            "id": account["id"],
            "attributes": {"name": "Acme", "uuid": UUID_A, "external-id": 100, "vat": 1},
        }
    }
    response = api.patch(member(account["id"]), body)
    assert response.status_code == 200, response.text


def test_max_call_duration_below_one_is_stored_truncated_or_refused(
    api: Api, db: Db, contractor_id: int
) -> None:
    # contract §3.1 #13: validated on the raw value (0.5 > 0) and stored truncated, as 0.
    # A server whose schema forbids 0 may refuse it with the rule's own 422; a 500 is wrong.
    response = api.post(ACCOUNTS, account_body(contractor_id, **{"max-call-duration": 0.5}))
    if response.status_code == 201:
        assert response.json()["data"]["attributes"]["max-call-duration"] == 0
    else:
        assert_errors(response, 422, [invalid("max-call-duration", "must be greater than 0")])
        assert_nothing_created(db)
