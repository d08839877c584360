"""Bad input never yields a 500 and never writes half (issue item 8).

Every case sends a malformed or out-of-range request and asserts a 4xx JSON:API error
document (with the contract's code, and a pointer where the contract gives one), then
re-reads the database: nothing may have changed. Every case runs twice, with the token
in the Authorization header and with `?token=` in the query string (contract §1.3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from accounts_api.auth import tokens
from tests.api.conftest import account_body
from tests.conftest import JSONAPI, SECRET, TABLES, Api, Db

ACCOUNTS = "/api/rest/admin/accounts"
CONTRACTORS = "/api/rest/admin/contractors"
HUGE_ID = "99999999999999999999"
RELATIONSHIPS = ("contractor", "invoice-template", "smtp-connection")
_RAW = re.compile(r'"@raw:([^"]*)"')


def raw(number_text: str) -> str:
    """A JSON number json.dumps cannot write (1e400, 20,000 digits): spliced in by `encode`."""
    return f"@raw:{number_text}"


def encode(body: Any) -> bytes:
    return _RAW.sub(lambda match: match.group(1), json.dumps(body)).encode()


def invalid(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    """The 422 error objects of contract §3 for (dasherized key, message) pairs."""
    errors = []
    for key, message in pairs:
        member = "relationships" if key in RELATIONSHIPS else "attributes"
        errors.append(
            {
                "title": message,
                "detail": f"{key} - {message}",
                "code": "100",
                "source": {"pointer": f"/data/{member}/{key}"},
                "status": "422",
            }
        )
    return errors


def bad_request(detail: str, code: str, title: str) -> list[dict[str, Any]]:
    return [{"title": title, "detail": detail, "code": code, "status": "400"}]


def invalid_id(value: str) -> list[dict[str, Any]]:
    return bad_request(f"{value} is not a valid value for id.", "103", "Invalid field value")


def not_found(key: str) -> list[dict[str, Any]]:
    detail = f"The record identified by {key} could not be found."
    return [{"title": "Record not found", "detail": detail, "code": "404", "status": "404"}]


NOT_A_HASH = bad_request("Request must be a hash", "400", "Bad Request")


class Caller:
    """Sends JSON:API requests authenticated by header or by `?token=`."""

    def __init__(self, api: Api, mode: str):
        self.api = api
        self.mode = mode

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        if self.mode == "query":
            if params is None:
                # appended as text: httpx would re-encode a query it has to merge params into
                path += f"{'&' if '?' in path else '?'}token={self.api.token}"
            else:
                params = {**params, "token": self.api.token}
        if body is not None:
            content = encode(body)
        return self.api.request(
            method, path, content=content, auth=self.mode == "header", params=params
        )


def snapshot(db: Db) -> str:
    """Every row a rejected write could touch, in one round trip."""
    text: str = db.fetchval(
        "SELECT json_build_object("
        " 'accounts', (SELECT json_agg(a ORDER BY a.id) FROM accounts a),"
        " 'settings', (SELECT json_agg(s ORDER BY s.id)"
        "              FROM account_balance_notification_settings s),"
        " 'contractors', (SELECT json_agg(c ORDER BY c.id) FROM contractors c),"
        " 'audit', (SELECT count(*) FROM audit_log))::text"
    )
    return text


@dataclass
class World:
    """One contractor and one account (with a settings row and an audit entry), shared by
    the tests of this module: none of them may change it."""

    api: Api
    db: Db
    account: dict[str, Any]
    contractor: str
    baseline: str

    @property
    def callers(self) -> list[Caller]:
        return [Caller(self.api, "header"), Caller(self.api, "query")]


def build_world(api: Api, db: Db) -> World:
    db.execute("; ".join(f"DELETE FROM {table}" for table in TABLES))
    contractor = int(
        db.fetchval(
            "INSERT INTO contractors (name, enabled, vendor, customer)"
            " VALUES ('existing', true, true, false) RETURNING id"
        )
    )
    thresholds = {"balance-low-threshold": 1, "balance-high-threshold": 2}
    created = api.post(ACCOUNTS, account_body(contractor, name="existing", **thresholds))
    assert created.status_code == 201, created.text
    return World(api, db, created.json()["data"], str(contractor), snapshot(db))


@pytest.fixture(scope="module")
def worlds(app_client: TestClient, admin_id: int, db: Db) -> list[World]:
    return [build_world(Api(app_client, tokens.issue(admin_id, SECRET, None)), db)]


@pytest.fixture
def world(worlds: list[World]) -> World:
    """The shared state, rebuilt only when a failed test left it changed."""
    current = worlds[0]
    if snapshot(current.db) != current.baseline:
        worlds[0] = build_world(current.api, current.db)
    return worlds[0]


def assert_rejected(
    response: httpx.Response, status: int, errors: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    found: list[dict[str, Any]] = response.json()["errors"]
    if errors is not None:
        assert found == errors
    return found


def rejected(
    world: World,
    send: Callable[[Caller], httpx.Response],
    status: int,
    errors: list[dict[str, Any]] | None = None,
) -> list[list[dict[str, Any]]]:
    """Sends with the header token and with `?token=`; each answer must be the given error
    and leave the database as it was. Returns the error lists for further checks."""
    found = []
    for call in world.callers:
        response = send(call)
        try:
            found.append(assert_rejected(response, status, errors))
        except AssertionError as failure:
            raise AssertionError(f"token in {call.mode}: {failure}") from None
        assert snapshot(world.db) == world.baseline, f"token in {call.mode}: data changed"
    return found


def write(
    call: Caller,
    method: str,
    account: dict[str, Any],
    attributes: dict[str, Any] | None = None,
    relationships: dict[str, Any] | None = None,
) -> httpx.Response:
    """POST a new account or PATCH the existing one with the given members."""
    if method == "POST":
        contractor = int(account["relationships"]["contractor"]["data"]["id"])
        body = account_body(contractor, **(attributes or {}))
        body["data"]["relationships"].update(relationships or {})
        return call("POST", ACCOUNTS, body)
    data: dict[str, Any] = {"type": "accounts", "id": account["id"]}
    if attributes is not None:
        data["attributes"] = attributes
    if relationships is not None:
        data["relationships"] = relationships
    return call("PATCH", f"{ACCOUNTS}/{account['id']}", {"data": data})


def write_path(method: str, account: dict[str, Any]) -> str:
    return ACCOUNTS if method == "POST" else f"{ACCOUNTS}/{account['id']}"


WRITES = ["POST", "PATCH"]

# -- the body is not a JSON object ---------------------------------------------------------

DEEP = b"[" * 50_000 + b"]" * 50_000
MALFORMED = {
    "truncated": b'{"data": ',
    "trailing-garbage": b'{"data": {}} x',
    "single-quotes": b"{'data': {}}",
    "non-utf8": b"\xff\xfe{\x00}",
    "non-utf8-in-a-string": b'{"data": {"type": "accounts", "attributes": {"name": "\xff"}}}',
    "raw-nul-in-a-string": b'{"data": {"type": "accounts", "attributes": {"name": "a\x00b"}}}',
    "deeply-nested": b'{"data": ' + DEEP + b"}",
    # a top-level "token" makes the authenticator read the body too (contract §1.3)
    "non-utf8-token": b'{"token": "\xff"}',
    "deeply-nested-with-token": b'{"token": "x", "data": ' + DEEP + b"}",
}


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_json_is_400(world: World, method: str, content: bytes) -> None:
    path = write_path(method, world.account)

    for [error] in rejected(world, lambda call: call(method, path, content=content), 400):
        assert error["title"] == "Bad Request"
        assert error["code"] == "400"
        assert error["status"] == "400"
        assert isinstance(error["detail"], str) and error["detail"]


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("content", [b"[]", b'"x"', b"1", b"null", b"true", b'[{"data": {}}]'])
def test_top_level_not_an_object_is_400(world: World, method: str, content: bytes) -> None:
    path = write_path(method, world.account)

    rejected(world, lambda call: call(method, path, content=content), 400, NOT_A_HASH)


@pytest.mark.parametrize("method", WRITES)
def test_empty_body_is_missing_data(world: World, method: str) -> None:
    # Rails does not parse an empty body: `data` is simply missing (contract §2.9)
    path = write_path(method, world.account)
    missing = bad_request("The required parameter, data, is missing.", "106", "Missing Parameter")

    rejected(world, lambda call: call(method, path, content=b""), 400, missing)


@pytest.mark.parametrize("method", WRITES)
def test_body_over_one_mebibyte_is_413(world: World, method: str) -> None:
    attributes = {"name": "x" * (1024 * 1024 + 1)}

    for [error] in rejected(
        world, lambda call: write(call, method, world.account, attributes), 413
    ):
        assert error["code"] == "413"
        assert error["status"] == "413"


# -- attribute values of the wrong type or out of range -------------------------------------

ATTRIBUTE_CASES: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "max-call-duration-string": (
        {"max-call-duration": "abc"},
        invalid(("max-call-duration", "is not a number")),
    ),
    "max-call-duration-2^40": (
        {"max-call-duration": 2**40},
        invalid(("max-call-duration", "must be less than or equal to 2147483647")),
    ),
    "max-call-duration-1e400": (
        {"max-call-duration": raw("1e400")},
        invalid(("max-call-duration", "is out of range")),
    ),
    "send-invoices-to-object": (
        {"send-invoices-to": {"id": 3}},
        invalid(("send-invoices-to", "must be a list of contact ids")),
    ),
    "send-invoices-to-2^70": (
        {"send-invoices-to": [2**70]},
        invalid(("send-invoices-to", "must be a list of contact ids")),
    ),
    "send-balance-notifications-to-object": (
        {"send-balance-notifications-to": {"id": 3}},
        invalid(("send-balance-notifications-to", "must be a list of contact ids")),
    ),
    "name-array": ({"name": ["x"]}, invalid(("name", "must be a string"))),
    "name-object": ({"name": {"x": 1}}, invalid(("name", "must be a string"))),
    "name-boolean": ({"name": True}, invalid(("name", "must be a string"))),
    "name-1MB": (
        {"name": "x" * 1_000_000},
        invalid(("name", "is too long (maximum is 255 characters)")),
    ),
    "name-nul": ({"name": "a\x00b"}, invalid(("name", "must not contain null bytes"))),
    "timezone-nul": ({"timezone": "UTC\x00"}, invalid(("timezone", "must not contain null bytes"))),
    "timezone-array": ({"timezone": ["UTC"]}, invalid(("timezone", "must be a string"))),
    "timezone-object": ({"timezone": {"zone": "UTC"}}, invalid(("timezone", "must be a string"))),
    "min-balance-object": ({"min-balance": {"v": 1}}, invalid(("min-balance", "is not a number"))),
    "min-balance-1e400": (
        {"min-balance": raw("1e400")},
        invalid(("min-balance", "is out of range")),
    ),
    "max-balance-minus-1e400": (
        {"max-balance": raw("-1e400")},
        invalid(("max-balance", "is out of range")),
    ),
    "max-balance-string-1e400": (
        {"max-balance": "1e400"},
        invalid(("max-balance", "is out of range")),
    ),
    "vat-boolean": ({"vat": True}, invalid(("vat", "is not a number"))),
    "vat-array": ({"vat": [1]}, invalid(("vat", "is not a number"))),
    "external-id-2^70": (
        {"external-id": 2**70},
        invalid(("external-id", "must be less than or equal to 9223372036854775807")),
    ),
    "external-id-string-2^70": (
        {"external-id": str(2**70)},
        invalid(("external-id", "must be less than or equal to 9223372036854775807")),
    ),
    "external-id-minus-2^70": (
        {"external-id": -(2**70)},
        invalid(("external-id", "must be greater than or equal to -9223372036854775808")),
    ),
    "origination-capacity-40000": (
        {"origination-capacity": 40000},
        invalid(("origination-capacity", "must be less than or equal to 32767")),
    ),
    "total-capacity-2^70": (
        {"total-capacity": 2**70},
        invalid(("total-capacity", "must be less than or equal to 32767")),
    ),
    "termination-capacity-string": (
        {"termination-capacity": "many"},
        invalid(("termination-capacity", "is not a number")),
    ),
    "destination-rate-limit-object": (
        {"destination-rate-limit": {"a": 1}},
        invalid(("destination-rate-limit", "is not a number")),
    ),
    "low-threshold-string": (
        {"balance-low-threshold": "abc"},
        invalid(("balance-low-threshold", "is not a number")),
    ),
    "high-threshold-1e400": (
        {"balance-high-threshold": raw("1e400")},
        invalid(("balance-high-threshold", "is out of range")),
    ),
    "uuid-number": ({"uuid": 5}, invalid(("uuid", "is invalid"))),
    "uuid-nul": ({"uuid": "\x00"}, invalid(("uuid", "is invalid"))),
    "invoice-period-string": (
        {"invoice-period-id": "abc"},
        invalid(("invoice-period-id", "is not included in the list")),
    ),
    "invoice-period-2^70": (
        {"invoice-period-id": 2**70},
        invalid(("invoice-period-id", "is not included in the list")),
    ),
    # a valid change next to an invalid one: nothing of either is written
    "valid-thresholds-with-invalid-vat": (
        {"balance-low-threshold": 5, "balance-high-threshold": 10, "vat": 101},
        invalid(("vat", "must be less than or equal to 100")),
    ),
    "valid-name-with-invalid-vat": (
        {"name": "renamed", "vat": 101},
        invalid(("vat", "must be less than or equal to 100")),
    ),
}


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    ("attributes", "errors"), ATTRIBUTE_CASES.values(), ids=ATTRIBUTE_CASES.keys()
)
def test_invalid_attribute_values_are_422(
    world: World, method: str, attributes: dict[str, Any], errors: list[dict[str, Any]]
) -> None:
    rejected(world, lambda call: write(call, method, world.account, attributes), 422, errors)


@pytest.mark.parametrize(
    ("currency", "message"),
    [("US\x00D", "must not contain null bytes"), (["USD"], "must be a string")],
    ids=["nul", "array"],
)
def test_invalid_currency_on_create_is_422(world: World, currency: Any, message: str) -> None:
    attributes = {"currency": currency}

    for found in rejected(world, lambda call: write(call, "POST", world.account, attributes), 422):
        assert invalid(("currency", message))[0] in found
        assert {error["source"]["pointer"] for error in found} == {"/data/attributes/currency"}


@pytest.mark.parametrize("method", WRITES)
def test_decimal_with_more_digits_than_numeric_holds_is_422(world: World, method: str) -> None:
    attributes = {"name": "renamed", "vat": raw("1." + "0" * 20_000 + "1")}

    for found in rejected(world, lambda call: write(call, method, world.account, attributes), 422):
        assert {error["source"]["pointer"] for error in found} <= {"/data/attributes/vat", "/data"}


@pytest.mark.parametrize("method", WRITES)
def test_max_call_duration_truncating_to_zero_is_rejected(world: World, method: str) -> None:
    # contract §3.1 #13: 1.5 is stored as 1, so 0.5 would be stored as 0, which is not > 0
    attributes = {"max-call-duration": 0.5}

    for found in rejected(world, lambda call: write(call, method, world.account, attributes), 422):
        pointers = {error["source"]["pointer"] for error in found}
        assert pointers == {"/data/attributes/max-call-duration"}


# -- members of `data` that are not objects --------------------------------------------------


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("member", ["attributes", "relationships"])
@pytest.mark.parametrize("value", [[], "x", 5, True], ids=["array", "string", "number", "true"])
def test_attributes_or_relationships_not_an_object_is_400(
    world: World, method: str, member: str, value: Any
) -> None:
    if method == "POST":
        body = account_body(int(world.contractor))
    else:
        body = {"data": {"type": "accounts", "id": world.account["id"]}}
    body["data"][member] = value
    path = write_path(method, world.account)

    for [error] in rejected(world, lambda call: call(method, path, body), 400):
        assert error["title"] == "Bad Request"
        assert error["code"] == "400"
        assert error["source"] == {"pointer": f"/data/{member}"}


# -- ids that are not integers: in linkage ---------------------------------------------------


def contractor_linkage(key: Any) -> dict[str, Any]:
    return {"contractor": {"data": {"type": "contractors", "id": key}}}


LINKAGE_CASES: dict[str, tuple[dict[str, Any], int, list[dict[str, Any]]]] = {
    "id-abc": (contractor_linkage("abc"), 400, invalid_id("abc")),
    "id-1.5": (contractor_linkage(1.5), 400, invalid_id("1.5")),
    "id-string-1.5": (contractor_linkage("1.5"), 400, invalid_id("1.5")),
    # the detail is Ruby's `to_s` of the value: `true`, not Python's `True`
    "id-true": (contractor_linkage(True), 400, invalid_id("true")),
    "id-nul": (contractor_linkage("1\x00"), 400, invalid_id("1\x00")),
    "id-2^70": (contractor_linkage(2**70), 422, invalid(("contractor", "must exist"))),
    "id-string-huge": (contractor_linkage(HUGE_ID), 422, invalid(("contractor", "must exist"))),
    "id-negative": (contractor_linkage(-1), 422, invalid(("contractor", "must exist"))),
    # jsonapi-resources skips the key check for a null id: the contractor is simply unset
    "id-null": (contractor_linkage(None), 422, invalid(("contractor", "must exist"))),
    "invoice-template-id-abc": (
        {"invoice-template": {"data": {"type": "invoice-templates", "id": "abc"}}},
        400,
        invalid_id("abc"),
    ),
    "unknown-relationship": (
        {"owner": {"data": {"type": "contractors", "id": "1"}}},
        400,
        bad_request("owner is not allowed.", "105", "Param not allowed"),
    ),
    "underscored-relationship": (
        {"invoice_template": {"data": None}},
        400,
        bad_request("invoice_template is not allowed.", "105", "Param not allowed"),
    ),
}


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    ("relationships", "status", "errors"), LINKAGE_CASES.values(), ids=LINKAGE_CASES.keys()
)
def test_bad_linkage_is_rejected(
    world: World,
    method: str,
    relationships: dict[str, Any],
    status: int,
    errors: list[dict[str, Any]],
) -> None:
    attributes = {"name": "renamed"}

    rejected(
        world,
        lambda call: write(call, method, world.account, attributes, relationships),
        status,
        errors,
    )


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    ("linkage", "code"),
    [
        ({"type": "contractors"}, "115"),
        ({"type": "contractors", "id": "1", "extra": 1}, "115"),
        ([{"type": "contractors", "id": "1"}], "115"),
        ("5", "115"),
        ({"type": "accounts", "id": "1"}, "116"),
        ({"type": ["contractors"], "id": "1"}, "116"),
    ],
    ids=["no-id", "extra-member", "array", "string", "wrong-type", "type-array"],
)
def test_malformed_linkage_is_400(world: World, method: str, linkage: Any, code: str) -> None:
    relationships = {"contractor": {"data": linkage}}

    found = rejected(
        world, lambda call: write(call, method, world.account, {"name": "x"}, relationships), 400
    )

    for [error] in found:
        assert error["code"] == code
        assert error["status"] == "400"


def test_update_key_of_another_json_type_is_reported_as_ruby_prints_it(world: World) -> None:
    path = f"{ACCOUNTS}/{world.account['id']}"
    body = {"data": {"type": "accounts", "id": True, "attributes": {"name": "renamed"}}}
    errors = bad_request(
        "The URL does not support the key true", "110", "Key is not included in URL"
    )

    rejected(world, lambda call: call("PATCH", path, body), 400, errors)


# -- the relationship endpoint ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "status", "errors"),
    [
        (b'{"data": ', 400, None),
        (b"\xff", 400, None),
        (b"[]", 400, NOT_A_HASH),
        (
            b"{}",
            400,
            bad_request("The required parameter, data, is missing.", "106", "Missing Parameter"),
        ),
        (b'{"data": {"type": "contractors", "id": "abc"}}', 400, invalid_id("abc")),
        (b'{"data": {"type": "contractors", "id": true}}', 400, invalid_id("true")),
        (
            encode({"data": {"type": "contractors", "id": 2**70}}),
            422,
            invalid(("contractor", "must exist")),
        ),
        (b'{"data": null}', 422, invalid(("contractor", "must exist"))),
        (b'{"data": "x"}', 400, None),
    ],
    ids=[
        "truncated",
        "non-utf8",
        "array",
        "no-data",
        "id-abc",
        "id-true",
        "id-2^70",
        "null",
        "string",
    ],
)
def test_bad_relationship_update_is_rejected(
    world: World, content: bytes, status: int, errors: list[dict[str, Any]] | None
) -> None:
    path = f"{ACCOUNTS}/{world.account['id']}/relationships/contractor"

    for found in rejected(world, lambda call: call("PATCH", path, content=content), status, errors):
        assert all(error["status"] == str(status) for error in found)


# -- ids that are not integers: in URLs ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "errors"),
    [
        ("GET", f"{ACCOUNTS}/abc", 400, invalid_id("abc")),
        ("GET", f"{ACCOUNTS}/1.5", 400, invalid_id("1.5")),
        ("GET", f"{ACCOUNTS}/1%00", 400, invalid_id("1\x00")),
        ("GET", f"{ACCOUNTS}/{HUGE_ID}", 404, not_found(HUGE_ID)),
        ("DELETE", f"{ACCOUNTS}/abc", 400, invalid_id("abc")),
        ("DELETE", f"{ACCOUNTS}/1.5", 400, invalid_id("1.5")),
        ("DELETE", f"{ACCOUNTS}/{HUGE_ID}", 404, not_found(HUGE_ID)),
        ("GET", f"{ACCOUNTS}/abc/relationships/contractor", 400, invalid_id("abc")),
        ("GET", f"{ACCOUNTS}/{HUGE_ID}/relationships/contractor", 404, not_found(HUGE_ID)),
        ("DELETE", f"{ACCOUNTS}/{HUGE_ID}/relationships/invoice-template", 404, not_found(HUGE_ID)),
        ("GET", f"{CONTRACTORS}/abc", 400, invalid_id("abc")),
        ("GET", f"{CONTRACTORS}/{HUGE_ID}", 404, not_found(HUGE_ID)),
        ("DELETE", f"{CONTRACTORS}/{HUGE_ID}", 404, not_found(HUGE_ID)),
    ],
)
def test_non_integer_ids_in_urls(
    world: World, method: str, path: str, status: int, errors: list[dict[str, Any]]
) -> None:
    rejected(world, lambda call: call(method, path), status, errors)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize(
    ("collection", "key"),
    [
        (ACCOUNTS, "abc"),
        (ACCOUNTS, "1.5"),
        (ACCOUNTS, HUGE_ID),
        (ACCOUNTS, "-1"),
        (CONTRACTORS, "abc"),
        (CONTRACTORS, HUGE_ID),
    ],
)
def test_updates_of_non_integer_or_huge_ids_are_404(
    world: World, method: str, collection: str, key: str
) -> None:
    # contract §2.10: the URL id of an update is not verified; it is simply not found
    body = {"data": {"type": collection.rsplit("/", 1)[-1], "id": key, "attributes": {"name": "x"}}}

    rejected(world, lambda call: call(method, f"{collection}/{key}", body), 404, not_found(key))


@pytest.mark.parametrize("key", ["abc", HUGE_ID])
def test_relationship_updates_of_non_integer_or_huge_ids_are_404(world: World, key: str) -> None:
    body = {"data": world.account["relationships"]["contractor"]["data"]}
    path = f"{ACCOUNTS}/{key}/relationships/contractor"

    rejected(world, lambda call: call("PATCH", path, body), 404, not_found(key))


# -- query parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("name_eq", "a\x00b"),
        ("name", "a\x00b"),
        ("name_cont_any", "a,b\x00"),
        ("contractor.id", "1\x00"),
        ("uuid_eq", "\x00"),
        ("external_id_eq", "1\x00"),
    ],
)
def test_nul_bytes_in_filter_values_are_107(world: World, name: str, value: str) -> None:
    errors = bad_request(f"{value} is not a valid value for {name}.", "107", "Invalid filter value")

    rejected(
        world, lambda call: call("GET", ACCOUNTS, params={f"filter[{name}]": value}), 400, errors
    )


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"sort": "name\x00"}, "114"),
        ({"include": "contractor\x00"}, "112"),
        ({"fields[accounts]": "name\x00"}, "104"),
        ({"filter[name\x00_eq]": "x"}, "102"),
    ],
    ids=["sort", "include", "fields", "filter-name"],
)
def test_nul_bytes_elsewhere_in_the_query_are_400(
    world: World, params: dict[str, str], code: str
) -> None:
    for [error] in rejected(world, lambda call: call("GET", ACCOUNTS, params=params), 400):
        assert error["code"] == code


def test_non_utf8_query_string_is_400(world: World) -> None:
    for [error] in rejected(
        world, lambda call: call("GET", f"{ACCOUNTS}?filter%5Bname_eq%5D=%FF"), 400
    ):
        assert error["status"] == "400"


# -- contractors -----------------------------------------------------------------------------


def contractor_write(
    call: Caller,
    method: str,
    key: str,
    attributes: Any,
    relationships: dict[str, Any] | None = None,
) -> httpx.Response:
    data: dict[str, Any] = {"type": "contractors", "attributes": attributes}
    if method == "POST":
        if isinstance(attributes, dict):
            required = {"name": "new", "enabled": True, "vendor": True, "customer": False}
            data["attributes"] = {**required, **attributes}
        path = CONTRACTORS
    else:
        data["id"] = key
        path = f"{CONTRACTORS}/{key}"
    if relationships is not None:
        data["relationships"] = relationships
    return call(method, path, {"data": data})


def smtp_linkage(key: Any) -> dict[str, Any]:
    return {"smtp-connection": {"data": {"type": "smtp-connections", "id": key}}}


CONTRACTOR_CASES: dict[str, tuple[Any, dict[str, Any] | None, int, Any]] = {
    "name-array": ({"name": ["x"]}, None, 422, invalid(("name", "must be a string"))),
    "name-nul": ({"name": "a\x00b"}, None, 422, invalid(("name", "must not contain null bytes"))),
    "external-id-2^70": (
        {"external-id": 2**70},
        None,
        422,
        invalid(("external-id", "must be less than or equal to 9223372036854775807")),
    ),
    "external-id-1e400": (
        {"external-id": raw("1e400")},
        None,
        422,
        invalid(("external-id", "is out of range")),
    ),
    "smtp-connection-id-abc": ({}, smtp_linkage("abc"), 400, invalid_id("abc")),
    "smtp-connection-id-2^70": (
        {},
        smtp_linkage(2**70),
        422,
        invalid(("smtp-connection", "must exist")),
    ),
    "attributes-string": (
        "x",
        None,
        400,
        [
            {
                "title": "Bad Request",
                "detail": "attributes must be an object.",
                "code": "400",
                "source": {"pointer": "/data/attributes"},
                "status": "400",
            }
        ],
    ),
}


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    ("attributes", "relationships", "status", "errors"),
    CONTRACTOR_CASES.values(),
    ids=CONTRACTOR_CASES.keys(),
)
def test_bad_contractor_writes_are_rejected(
    world: World,
    method: str,
    attributes: Any,
    relationships: dict[str, Any] | None,
    status: int,
    errors: list[dict[str, Any]],
) -> None:
    rejected(
        world,
        lambda call: contractor_write(call, method, world.contractor, attributes, relationships),
        status,
        errors,
    )


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    ("content", "errors"),
    [(b'{"data": ', None), (b"\xff\xfe", None), (b"[]", NOT_A_HASH)],
    ids=["truncated", "non-utf8", "array"],
)
def test_malformed_contractor_bodies_are_400(
    world: World, method: str, content: bytes, errors: list[dict[str, Any]] | None
) -> None:
    path = CONTRACTORS if method == "POST" else f"{CONTRACTORS}/{world.contractor}"

    for [error] in rejected(world, lambda call: call(method, path, content=content), 400, errors):
        assert error["code"] == "400"
