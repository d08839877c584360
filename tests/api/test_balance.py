"""The balance endpoints (contract §5.8, §5.9): PUT|PATCH /accounts/{any}/balance sets the
absolute balance of the account whose external id is `data.id`; /balance-correction adds a
delta to the account whose id is `data.id`. Each change writes one ledger entry and one
audit row (an absolute set is audited too: our deviation from Yeti); a rejected request
changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import BASE_URL, JSONAPI, Api, Db

ACCOUNTS = "/api/rest/admin/accounts"
EXTERNAL_ID = 900_000_000_100  # never an account id, so addressing by id cannot hit it
OPENING = Decimal(1000)

MakeAccount = Callable[..., dict[str, Any]]


def balance_url(segment: object) -> str:
    return f"{ACCOUNTS}/{segment}/balance"


def correction_url(segment: object) -> str:
    return f"{ACCOUNTS}/{segment}/balance-correction"


def balance_body(key: object, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "balances", "id": key}
    if attributes is not None:
        data["attributes"] = attributes
    return {"data": data}


def correction_body(key: object, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "balance-correction", "id": key}
    if attributes is not None:
        data["attributes"] = attributes
    return {"data": data}


def error(title: str, detail: str, code: str, status: str = "400") -> dict[str, Any]:
    return {"title": title, "detail": detail, "code": code, "status": status}


def not_a_number(key: str) -> dict[str, Any]:
    return {
        "title": "is not a number",
        "detail": f"{key} - is not a number",
        "code": "100",
        "source": {"pointer": f"/data/attributes/{key}"},
        "status": "422",
    }


def not_found(key: object) -> dict[str, Any]:
    return error(
        "Record not found", f"The record identified by {key} could not be found.", "404", "404"
    )


@pytest.fixture
def account(make_account: MakeAccount, db: Db) -> dict[str, Any]:
    """acme-usd with external id EXTERNAL_ID and a balance of 1000 (set with its entry)."""
    data = make_account(name="acme-usd", **{"external-id": EXTERNAL_ID})
    account_id = int(data["id"])
    db.set_balance(account_id, OPENING)
    return {"id": account_id, "name": "acme-usd"}


def snapshot(db: Db, account_id: int) -> dict[str, Any]:
    """Everything a balance write may touch: the balance, the ledger and the audit log."""
    return {
        "balance": db.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id),
        "ledger": [
            dict(row)
            for row in db.fetch(
                "SELECT * FROM ledger_entries WHERE account_id = $1 ORDER BY id", account_id
            )
        ],
        "audit": [dict(row) for row in db.fetch("SELECT * FROM audit_log ORDER BY id")],
    }


def new_entries(db: Db, account_id: int, before: dict[str, Any]) -> list[dict[str, Any]]:
    known = {entry["id"] for entry in before["ledger"]}
    return [entry for entry in snapshot(db, account_id)["ledger"] if entry["id"] not in known]


def new_audit_rows(db: Db, before: dict[str, Any]) -> list[dict[str, Any]]:
    known = {row["id"] for row in before["audit"]}
    return [
        dict(row)
        for row in db.fetch("SELECT * FROM audit_log ORDER BY id")
        if row["id"] not in known
    ]


def send(api: Api, method: str, path: str, body: Any, **kwargs: Any) -> Any:
    return api.request(method, path, json_body=body, **kwargs)


# -- §5.8 the absolute balance -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("segment", [str(EXTERNAL_ID), "anything", "1", "balance"])
def test_balance_sets_the_absolute_balance_of_the_external_id(
    api: Api, db: Db, admin_id: int, account: dict[str, Any], method: str, segment: str
) -> None:
    before = snapshot(db, account["id"])

    response = send(
        api,
        method,
        balance_url(segment),
        balance_body(str(EXTERNAL_ID), {"balance": "21"}),
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == {
        "data": {
            "id": str(EXTERNAL_ID),
            "type": "balances",
            "links": {"self": f"{BASE_URL}/api/rest/admin/balances"},
            "attributes": {"balance": "21.0"},
        }
    }
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", account["id"]) == 21
    [entry] = new_entries(db, account["id"], before)
    assert entry["kind"] == "absolute_set"
    assert entry["amount"] == Decimal(21) - OPENING
    assert entry["balance_after"] == 21
    assert (entry["source_type"], entry["source_id"]) == ("Account", account["id"])
    assert entry["admin_id"] == admin_id
    # our deviation from §4.3: the absolute set is audited like any balance change
    [row] = new_audit_rows(db, before)
    assert (row["item_type"], row["item_id"], row["event"], row["whodunnit"]) == (
        "Account",
        account["id"],
        "update",
        str(admin_id),
    )


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (21, "21.0"),
        ("21.50", "21.5"),
        (-5.25, "-5.25"),
        ("0", "0.0"),
        ("1234567.891", "1234567.891"),
        (0.1, "0.1"),
    ],
)
def test_balance_values_are_read_as_decimals_and_rendered_as_strings(
    api: Api, db: Db, account: dict[str, Any], value: Any, rendered: str
) -> None:
    before = snapshot(db, account["id"])

    response = api.put(balance_url(EXTERNAL_ID), balance_body(EXTERNAL_ID, {"balance": value}))

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {"balance": rendered}
    balance = db.fetchval("SELECT balance FROM accounts WHERE id = $1", account["id"])
    assert balance == Decimal(rendered)
    [entry] = new_entries(db, account["id"], before)
    assert entry["amount"] == Decimal(rendered) - OPENING
    assert entry["balance_after"] == Decimal(rendered)


def test_data_id_may_be_a_json_number(api: Api, db: Db, account: dict[str, Any]) -> None:
    response = api.patch(balance_url("x"), balance_body(EXTERNAL_ID, {"balance": 7}))

    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == str(EXTERNAL_ID)
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", account["id"]) == 7


@pytest.mark.parametrize("same", ["1000", 1000, "1000.00"])
def test_setting_the_same_balance_writes_no_entry(
    api: Api, db: Db, account: dict[str, Any], same: Any
) -> None:
    before = snapshot(db, account["id"])

    response = api.put(balance_url(EXTERNAL_ID), balance_body(EXTERNAL_ID, {"balance": same}))

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {"balance": "1000.0"}
    assert snapshot(db, account["id"]) == before


def test_balance_without_the_attribute_changes_nothing(
    api: Api, db: Db, account: dict[str, Any]
) -> None:
    before = snapshot(db, account["id"])

    response = api.put(balance_url(EXTERNAL_ID), balance_body(EXTERNAL_ID, {}))

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {"balance": "1000.0"}
    assert snapshot(db, account["id"]) == before


def test_consecutive_sets_chain_their_entries(api: Api, db: Db, account: dict[str, Any]) -> None:
    before = snapshot(db, account["id"])

    for value in ("10", "-2.5", "40"):
        response = api.put(balance_url(EXTERNAL_ID), balance_body(EXTERNAL_ID, {"balance": value}))
        assert response.status_code == 200, response.text

    entries = new_entries(db, account["id"], before)
    assert [(e["amount"], e["balance_after"]) for e in entries] == [
        (Decimal(-990), Decimal(10)),
        (Decimal("-12.5"), Decimal("-2.5")),
        (Decimal("42.5"), Decimal(40)),
    ]
    assert len(new_audit_rows(db, before)) == 3


BALANCE_REJECTIONS = [
    pytest.param(
        {"data": {"type": "balances", "attributes": {"balance": "5"}}},
        {},
        400,
        [error("A key is required", "The resource object does not contain a key.", "109")],
        id="no-data-id",
    ),
    pytest.param(
        balance_body(None, {"balance": "5"}),
        {},
        400,
        [error("A key is required", "The resource object does not contain a key.", "109")],
        id="null-data-id",
    ),
    pytest.param(
        {"data": {"type": "accounts", "id": str(EXTERNAL_ID), "attributes": {"balance": "5"}}},
        {},
        400,
        [error("Invalid resource", "accounts is not a valid resource.", "101")],
        id="wrong-type",
    ),
    pytest.param(
        balance_body(str(EXTERNAL_ID), {"name": "other"}),
        {},
        400,
        [error("Param not allowed", "name is not allowed.", "105")],
        id="name",
    ),
    pytest.param(
        balance_body(str(EXTERNAL_ID), {"balance": "5", "min-balance": "1"}),
        {},
        400,
        [error("Param not allowed", "min-balance is not allowed.", "105")],
        id="min-balance",
    ),
    pytest.param(
        balance_body(str(EXTERNAL_ID), {"correction": "5"}),
        {},
        400,
        [error("Param not allowed", "correction is not allowed.", "105")],
        id="correction-on-balance",
    ),
    pytest.param(
        balance_body("900000000999", {"balance": "5"}),
        {},
        404,
        [not_found("900000000999")],
        id="unknown-external-id",
    ),
    pytest.param(
        balance_body("abc", {"balance": "5"}),
        {},
        404,
        [not_found("abc")],
        id="non-integer-id",
    ),
    pytest.param(
        balance_body("1.5", {"balance": "5"}),
        {},
        404,
        [not_found("1.5")],
        id="decimal-id",
    ),
    pytest.param(
        balance_body(str(EXTERNAL_ID), {"balance": "abc"}),
        {},
        422,
        [not_a_number("balance")],
        id="abc",
    ),
    pytest.param(
        balance_body(str(EXTERNAL_ID), {"balance": None}),
        {},
        422,
        [not_a_number("balance")],
        id="null-balance",
    ),
    pytest.param(
        balance_body(str(EXTERNAL_ID), {"balance": "5"}),
        {"Content-Type": "application/json"},
        415,
        [
            error(
                "Unsupported media type",
                "All requests that create or update must use the 'application/vnd.api+json'"
                " Content-Type. This request specified 'application/json'.",
                "415",
                "415",
            )
        ],
        id="content-type",
    ),
    pytest.param(
        balance_body(str(EXTERNAL_ID), {"balance": "5"}),
        {"Accept": "application/json"},
        406,
        [
            error(
                "Not acceptable",
                "All requests must use the 'application/vnd.api+json' Accept without media"
                " type parameters. This request specified 'application/json'.",
                "406",
                "406",
            )
        ],
        id="accept",
    ),
]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(("body", "headers", "status", "errors"), BALANCE_REJECTIONS)
def test_rejected_balance_changes_nothing(
    api: Api,
    db: Db,
    account: dict[str, Any],
    method: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    errors: list[dict[str, Any]],
) -> None:
    before = snapshot(db, account["id"])

    response = send(api, method, balance_url(EXTERNAL_ID), body, headers=headers)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == {"errors": errors}
    assert snapshot(db, account["id"]) == before


def test_balance_is_addressed_by_external_id_not_by_id(
    api: Api, db: Db, account: dict[str, Any]
) -> None:
    before = snapshot(db, account["id"])
    key = str(account["id"])

    response = api.put(balance_url(key), balance_body(key, {"balance": "5"}))

    assert response.status_code == 404
    assert response.json() == {"errors": [not_found(key)]}
    assert snapshot(db, account["id"]) == before


def test_balance_requires_authentication(api: Api, db: Db, account: dict[str, Any]) -> None:
    before = snapshot(db, account["id"])

    response = api.put(
        balance_url(EXTERNAL_ID), balance_body(str(EXTERNAL_ID), {"balance": "5"}), auth=False
    )

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "401"
    assert snapshot(db, account["id"]) == before


# -- §5.9 the balance correction ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("segment", ["own", "other", "anything"])
def test_correction_adds_to_the_balance_of_the_account_id(
    api: Api,
    db: Db,
    admin_id: int,
    account: dict[str, Any],
    make_account: MakeAccount,
    method: str,
    segment: str,
) -> None:
    other = make_account(name="other")
    url_segment = {"own": account["id"], "other": other["id"]}.get(segment, segment)
    before = snapshot(db, account["id"])
    other_before = snapshot(db, int(other["id"]))

    # a JSON float, read losslessly: 1000 - 22.11 is exactly 977.89
    response = send(
        api,
        method,
        correction_url(url_segment),
        correction_body(str(account["id"]), {"correction": -22.11}),
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == {
        "data": {
            "id": str(account["id"]),
            "type": "balance-correction",
            "links": {"self": f"{BASE_URL}/api/rest/admin/balance-correction"},
            "attributes": {"name": "acme-usd", "balance": "977.89"},
        }
    }
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", account["id"]) == Decimal(
        "977.89"
    )
    [entry] = new_entries(db, account["id"], before)
    assert entry["kind"] == "correction"
    assert entry["amount"] == Decimal("-22.11")
    assert entry["balance_after"] == Decimal("977.89")
    assert (entry["source_type"], entry["source_id"]) == ("Account", account["id"])
    assert entry["admin_id"] == admin_id
    [row] = new_audit_rows(db, before)
    assert (row["item_type"], row["item_id"], row["event"], row["whodunnit"]) == (
        "Account",
        account["id"],
        "update",
        str(admin_id),
    )
    # the URL segment addresses nothing
    assert snapshot(db, int(other["id"]))["ledger"] == other_before["ledger"]
    assert snapshot(db, int(other["id"]))["balance"] == other_before["balance"]


# (balance before, correction): plain numerals, and those whose Decimal text is scientific
# (below 1e-6, a zero of more than 6 decimals), which the one-statement path leaves to Python
AUDITED_CORRECTIONS = [
    ("1000", "-22.11", ("1000", "977.89")),
    ("1.0", "0.01", ("1.0", "1.01")),
    ("-3", "1000000000000000000000000000.000001", None),
    ("0", "0.000001", ("0", "0.000001")),
    ("0", "1e-7", ("0", "1E-7")),
    ("0.0000001", "-0.0000001", ("1E-7", "0E-7")),
    ("5", "-5.00000000", ("5", "0E-8")),
    ("5.000000", "-5", ("5.000000", "0.000000")),
    # a whole number of scale 0 ending in four zeros: asyncpg decodes it with a positive
    # exponent, which str(Decimal) writes in scientific notation (found by review)
    ("0", "10000", ("0", "1E+4")),
    ("5", "9995", ("5", "1E+4")),
    ("-30000", "10000", ("-3E+4", "-2E+4")),
    ("1000000", "-1", ("1.00E+6", "999999")),
    ("12340", "10000", ("12340", "22340")),
]


@pytest.mark.parametrize(("opening", "amount", "texts"), AUDITED_CORRECTIONS)
def test_a_correction_is_audited_as_with_its_lock_apart(
    api: Api,
    db: Db,
    account: dict[str, Any],
    opening: str,
    amount: str,
    texts: tuple[str, str] | None,
) -> None:
    """issue 10: a correction without If-Match locks, moves and audits in one statement; with
    one, the lock and the If-Match check come first and the audit row is written apart. Both
    write the same audit row: the balances as the JSON strings str(Decimal) makes."""

    def audited(headers: dict[str, str]) -> tuple[Any, Any]:
        db.set_balance(account["id"], opening)
        before = snapshot(db, account["id"])
        body = correction_body(str(account["id"]), {"correction": amount})
        response = send(api, "PUT", correction_url(account["id"]), body, headers=headers)
        assert response.status_code == 200, response.text
        [row] = new_audit_rows(db, before)
        return row["object"], row["object_changes"]

    in_one_statement = audited({})
    apart = audited({"If-Match": "*"})

    assert in_one_statement == apart
    if texts is not None:
        assert in_one_statement == ({"balance": texts[0]}, {"balance": list(texts)})


def test_correction_renders_decimals_as_strings(api: Api, db: Db, account: dict[str, Any]) -> None:
    db.set_balance(account["id"], "991")

    response = api.put(
        correction_url(account["id"]),
        correction_body(str(account["id"]), {"correction": "-22.11"}),
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {"name": "acme-usd", "balance": "968.89"}


@pytest.mark.parametrize(
    ("correction", "balance"),
    [
        (5, "1005.0"),
        ("0.5", "1000.5"),
        (-1000, "0.0"),
        ("-1000.01", "-0.01"),
        (0.1, "1000.1"),
    ],
)
def test_correction_values(
    api: Api, db: Db, account: dict[str, Any], correction: Any, balance: str
) -> None:
    before = snapshot(db, account["id"])

    response = api.patch(
        correction_url(account["id"]),
        correction_body(account["id"], {"correction": correction}),
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["balance"] == balance
    [entry] = new_entries(db, account["id"], before)
    assert entry["amount"] == Decimal(balance) - OPENING
    assert entry["balance_after"] == Decimal(balance)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(correction_body("ID"), id="no-attributes"),
        pytest.param(correction_body("ID", {}), id="empty-attributes"),
    ],
)
def test_absent_correction_is_a_no_op(
    api: Api, db: Db, account: dict[str, Any], body: dict[str, Any]
) -> None:
    body["data"]["id"] = str(account["id"])
    before = snapshot(db, account["id"])

    response = api.put(correction_url(account["id"]), body)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {"name": "acme-usd", "balance": "1000.0"}
    assert snapshot(db, account["id"]) == before


CORRECTION_REJECTIONS = [
    pytest.param(
        {"data": {"type": "balance-correction", "attributes": {"correction": "5"}}},
        {},
        400,
        [error("A key is required", "The resource object does not contain a key.", "109")],
        id="no-data-id",
    ),
    pytest.param(
        {"data": {"type": "balances", "id": "ID", "attributes": {"correction": "5"}}},
        {},
        400,
        [error("Invalid resource", "balances is not a valid resource.", "101")],
        id="wrong-type",
    ),
    pytest.param(
        correction_body("ID", {"balance": "5"}),
        {},
        400,
        [error("Param not allowed", "balance is not allowed.", "105")],
        id="balance",
    ),
    pytest.param(
        correction_body("ID", {"correction": "5", "name": "x"}),
        {},
        400,
        [error("Param not allowed", "name is not allowed.", "105")],
        id="name",
    ),
    pytest.param(
        correction_body("999999", {"correction": "5"}),
        {},
        404,
        [not_found("999999")],
        id="unknown-id",
    ),
    pytest.param(
        correction_body(str(EXTERNAL_ID), {"correction": "5"}),
        {},
        404,
        [not_found(str(EXTERNAL_ID))],
        id="external-id",
    ),
    pytest.param(
        correction_body("abc", {"correction": "5"}),
        {},
        404,
        [not_found("abc")],
        id="non-integer-id",
    ),
    pytest.param(
        correction_body("ID", {"correction": None}),
        {},
        422,
        [not_a_number("correction")],
        id="null",
    ),
    pytest.param(
        correction_body("ID", {"correction": "abc"}),
        {},
        422,
        [not_a_number("correction")],
        id="abc",
    ),
    pytest.param(
        correction_body("ID", {"correction": "5"}),
        {"Content-Type": "application/json"},
        415,
        [
            error(
                "Unsupported media type",
                "All requests that create or update must use the 'application/vnd.api+json'"
                " Content-Type. This request specified 'application/json'.",
                "415",
                "415",
            )
        ],
        id="content-type",
    ),
    pytest.param(
        correction_body("ID", {"correction": "5"}),
        {"Accept": "text/html"},
        406,
        [
            error(
                "Not acceptable",
                "All requests must use the 'application/vnd.api+json' Accept without media"
                " type parameters. This request specified 'text/html'.",
                "406",
                "406",
            )
        ],
        id="accept",
    ),
]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(("body", "headers", "status", "errors"), CORRECTION_REJECTIONS)
def test_rejected_correction_changes_nothing(
    api: Api,
    db: Db,
    account: dict[str, Any],
    method: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    errors: list[dict[str, Any]],
) -> None:
    body = copy.deepcopy(body)
    if body["data"].get("id") == "ID":
        body["data"]["id"] = str(account["id"])
    before = snapshot(db, account["id"])

    response = send(api, method, correction_url(account["id"]), body, headers=headers)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == {"errors": errors}
    assert snapshot(db, account["id"]) == before


def test_correction_requires_authentication(api: Api, db: Db, account: dict[str, Any]) -> None:
    before = snapshot(db, account["id"])

    response = api.put(
        correction_url(account["id"]),
        correction_body(str(account["id"]), {"correction": "5"}),
        auth=False,
    )

    assert response.status_code == 401
    assert snapshot(db, account["id"]) == before


# -- §0.5: an update parses `include` before its body -------------------------------------------


@pytest.mark.parametrize("endpoint", ["balance", "balance-correction"])
def test_unknown_include_is_400_and_changes_nothing(
    api: Api, db: Db, account: dict[str, Any], endpoint: str
) -> None:
    if endpoint == "balance":
        path, body = balance_url(EXTERNAL_ID), balance_body(str(EXTERNAL_ID), {"balance": "5"})
        resource_type = "balances"
    else:
        path = correction_url(account["id"])
        body = correction_body(str(account["id"]), {"correction": "5"})
        resource_type = "balance-correction"
    before = snapshot(db, account["id"])

    response = api.put(path, body, params={"include": "account"})

    assert response.status_code == 400, response.text
    assert response.json() == {
        "errors": [
            error("Invalid field", f"account is not a valid relationship of {resource_type}", "112")
        ]
    }
    assert snapshot(db, account["id"]) == before
