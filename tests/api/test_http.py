"""HTTP-level behaviour (contract §6): response headers, ETag and conditional GET, HEAD,
content negotiation, forwarded-host links, unrouted paths and error-body escaping."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.api.conftest import account_body
from tests.conftest import BASE_URL, JSONAPI, Api, Db, validate_document

ACCOUNTS = "/api/rest/admin/accounts"
SECURITY_HEADERS = {
    "x-frame-options": "SAMEORIGIN",
    "x-xss-protection": "0",
    "x-content-type-options": "nosniff",
    "x-permitted-cross-domain-policies": "none",
    "referrer-policy": "strict-origin-when-cross-origin",
}
CACHEABLE = "max-age=0, private, must-revalidate"
ETAG = re.compile(r'^W/"[0-9a-f]{32}"$')
RUNTIME = re.compile(r"^\d+\.\d{6}$")


def not_acceptable(accept: str) -> dict[str, Any]:
    detail = (
        "All requests must use the 'application/vnd.api+json' Accept without media type "
        f"parameters. This request specified '{accept}'."
    )
    return {
        "errors": [{"title": "Not acceptable", "detail": detail, "code": "406", "status": "406"}]
    }


def unsupported(media_type: str) -> dict[str, Any]:
    detail = (
        "All requests that create or update must use the 'application/vnd.api+json' "
        f"Content-Type. This request specified '{media_type}'."
    )
    error = {"title": "Unsupported media type", "detail": detail, "code": "415", "status": "415"}
    return {"errors": [error]}


def weak_etag(body: bytes) -> str:
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


# Issue 3: accounts carry a strong ETag of the stored row instead of Rack's weak body hash.
STRONG_ETAG = re.compile(r'^"[0-9a-f]{32}"$')
CONTRACTORS = "/api/rest/admin/contractors"


def send_without(
    client: TestClient,
    method: str,
    path: str,
    header: str,
    headers: dict[str, str],
    content: bytes | None = None,
) -> httpx.Response:
    """A request with `header` truly absent (the test client adds `Accept: */*` by default)."""
    request = client.build_request(method, path, headers=headers, content=content)
    del request.headers[header]
    response = client.send(request)
    validate_document(response)
    return response


def assert_common_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert RUNTIME.match(response.headers["x-runtime"])
    uuid.UUID(response.headers["x-request-id"])


@pytest.fixture
def account(make_account: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_account(name="acme")


def account_snapshot(db: Db) -> list[dict[str, Any]]:
    rows = db.fetch("SELECT * FROM accounts ORDER BY id")
    return [dict(row) for row in rows]


# -- §6.1 response headers ------------------------------------------------------------------


def test_success_headers(api: Api, account: dict[str, Any]) -> None:
    response = api.get(f"{ACCOUNTS}/{account['id']}")

    assert response.status_code == 200
    assert_common_headers(response)
    assert response.headers["content-type"] == JSONAPI
    assert STRONG_ETAG.match(response.headers["etag"])
    assert response.headers["cache-control"] == CACHEABLE

    contractor = account["relationships"]["contractor"]["data"]["id"]
    response = api.get(f"{CONTRACTORS}/{contractor}")
    assert response.headers["etag"] == weak_etag(response.content)
    assert ETAG.match(response.headers["etag"])
    assert response.headers["vary"] == "Accept"
    assert "location" not in response.headers


def test_request_ids_are_fresh_uuids(api: Api) -> None:
    first = api.get(ACCOUNTS).headers["x-request-id"]
    second = api.get(ACCOUNTS).headers["x-request-id"]

    assert str(uuid.UUID(first)) == first
    assert first != second


@pytest.mark.parametrize(
    ("incoming", "echoed"),
    [
        ("abc-123_@XYZ", "abc-123_@XYZ"),
        ("req.id 42/!#$%^&*()+=~;:'\"<>?", "reqid42"),
        ("a" * 300, "a" * 255),
        ("." * 10 + "b" * 260, "b" * 255),
    ],
    ids=["kept", "sanitized", "truncated", "sanitized-then-truncated"],
)
def test_incoming_request_id_is_sanitized_and_echoed(api: Api, incoming: str, echoed: str) -> None:
    response = api.get(ACCOUNTS, headers={"X-Request-Id": incoming})

    assert response.headers["x-request-id"] == echoed


def test_created_headers(api: Api, contractor_id: int) -> None:
    response = api.post(ACCOUNTS, account_body(contractor_id))

    assert response.status_code == 201, response.text
    assert_common_headers(response)
    assert response.headers["content-type"] == JSONAPI
    new_id = response.json()["data"]["id"]
    assert response.headers["location"] == f"{BASE_URL}{ACCOUNTS}/{new_id}"
    assert response.headers["location"] == response.json()["data"]["links"]["self"]
    assert STRONG_ETAG.match(response.headers["etag"])
    assert response.headers["etag"] == api.get(f"{ACCOUNTS}/{new_id}").headers["etag"]
    assert response.headers["cache-control"] == CACHEABLE


def test_no_content_headers(api: Api, db: Db, account: dict[str, Any]) -> None:
    response = api.delete(f"{ACCOUNTS}/{account['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert_common_headers(response)
    assert "content-type" not in response.headers
    assert "etag" not in response.headers
    assert response.headers["cache-control"] == "no-cache"
    assert db.fetchval("SELECT count(*) FROM accounts") == 0


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{ACCOUNTS}/999999", 404),
        (f"{ACCOUNTS}/abc", 400),
    ],
)
def test_error_headers(api: Api, path: str, status: int) -> None:
    response = api.get(path)

    assert response.status_code == status
    assert_common_headers(response)
    assert response.headers["content-type"] == JSONAPI
    assert "etag" not in response.headers
    assert response.headers["cache-control"] == "no-cache"


def test_validation_error_headers(api: Api, contractor_id: int) -> None:
    response = api.post(ACCOUNTS, account_body(contractor_id, vat=101))

    assert response.status_code == 422
    assert_common_headers(response)
    assert response.headers["content-type"] == JSONAPI
    assert "etag" not in response.headers
    assert "location" not in response.headers
    assert response.headers["cache-control"] == "no-cache"


def test_unauthenticated_headers(api: Api) -> None:
    response = api.get(ACCOUNTS, auth=False)

    assert response.status_code == 401
    assert_common_headers(response)
    assert "etag" not in response.headers
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("accept", "varies"),
    [(JSONAPI, True), ("*/*", True), ("application/json, */*", False)],
    ids=["jsonapi", "any", "browser-like"],
)
def test_vary_accept_only_for_non_browser_accept_headers(
    api: Api, accept: str, varies: bool
) -> None:
    # contract §6.1: Rails' _set_vary_header skips browser-like `..., */*` Accept headers
    response = api.get(ACCOUNTS, headers={"Accept": accept})

    assert response.status_code == 200
    assert (response.headers.get("vary") == "Accept") is varies


def test_no_vary_without_an_accept_header(api: Api, app_client: TestClient) -> None:
    response = send_without(app_client, "GET", ACCOUNTS, "accept", {"Authorization": api.token})

    assert response.status_code == 200
    assert "vary" not in response.headers


# -- §6.2 conditional GET and HEAD ----------------------------------------------------------


def test_if_none_match_with_the_current_etag_is_304(api: Api, account: dict[str, Any]) -> None:
    path = f"{ACCOUNTS}/{account['id']}"
    etag = api.get(path).headers["etag"]

    response = api.get(path, headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert_common_headers(response)


def test_if_none_match_with_a_stale_etag_is_200(api: Api, account: dict[str, Any]) -> None:
    path = f"{ACCOUNTS}/{account['id']}"
    stale = api.get(path).headers["etag"]
    patch = {"data": {"type": "accounts", "id": account["id"], "attributes": {"name": "renamed"}}}
    assert api.patch(path, patch).status_code == 200

    response = api.get(path, headers={"If-None-Match": stale})

    assert response.status_code == 200
    assert response.json()["data"]["attributes"]["name"] == "renamed"
    assert response.headers["etag"] != stale
    assert STRONG_ETAG.match(response.headers["etag"])


def test_weak_etag_depends_on_the_host(api: Api, account: dict[str, Any]) -> None:
    path = f"{CONTRACTORS}/{account['relationships']['contractor']['data']['id']}"
    etag = api.get(path).headers["etag"]

    response = api.get(path, headers={"If-None-Match": etag, "Host": "other.example.com"})

    assert response.status_code == 200
    assert response.headers["etag"] != etag


def test_head_answers_a_get_route_without_a_body(api: Api, account: dict[str, Any]) -> None:
    path = f"{ACCOUNTS}/{account['id']}"
    get = api.get(path)

    head = api.request("HEAD", path)

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == JSONAPI
    assert head.headers["etag"] == get.headers["etag"]
    assert_common_headers(head)
    conditional = api.request("HEAD", path, headers={"If-None-Match": get.headers["etag"]})
    assert conditional.status_code == 304


def test_head_on_the_collection(api: Api) -> None:
    response = api.request("HEAD", ACCOUNTS)

    assert response.status_code == 200
    assert response.content == b""


# -- §6.3 Accept ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        JSONAPI,
        "*/*",
        "application/json, */*",
        "text/html, application/vnd.api+json",
        "*/*;q=0.8",
        " application/vnd.api+json ",
        "",
    ],
)
def test_acceptable_accept_headers(api: Api, accept: str) -> None:
    response = api.get(ACCOUNTS, headers={"Accept": accept})

    assert response.status_code == 200, response.text


def test_absent_accept_header_is_acceptable(api: Api, app_client: TestClient) -> None:
    response = send_without(app_client, "GET", ACCOUNTS, "accept", {"Authorization": api.token})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/*",
        "application/vnd.api+json; charset=utf-8",
        "text/html",
        "text/html, application/xml;q=0.9",
        'application/vnd.api+json; ext="a,b"',
    ],
)
def test_unacceptable_accept_headers_are_406(
    api: Api, account: dict[str, Any], accept: str
) -> None:
    for path in (ACCOUNTS, f"{ACCOUNTS}/{account['id']}"):
        response = api.get(path, headers={"Accept": accept})

        assert response.status_code == 406
        assert response.headers["content-type"] == JSONAPI
        assert response.json() == not_acceptable(accept)


def test_accept_is_checked_on_writes(api: Api, db: Db, account: dict[str, Any]) -> None:
    before = account_snapshot(db)
    path = f"{ACCOUNTS}/{account['id']}"
    patch = {"data": {"type": "accounts", "id": account["id"], "attributes": {"name": "x"}}}
    create = account_body(int(account["relationships"]["contractor"]["data"]["id"]), name="y")
    headers = {"Accept": "application/json"}

    responses = [
        api.post(ACCOUNTS, create, headers=headers),
        api.patch(path, patch, headers=headers),
        api.put(path, patch, headers=headers),
        api.delete(path, headers=headers),
        api.delete(f"{path}/relationships/invoice-template", headers=headers),
    ]

    for response in responses:
        assert response.status_code == 406
        assert response.json() == not_acceptable("application/json")
    assert account_snapshot(db) == before


# -- §6.3 Content-Type ---------------------------------------------------------------------


def write_requests(account: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], int]]:
    """(method, path, body, success status) for every JSON:API write that checks Content-Type."""
    key = account["id"]
    contractor = int(account["relationships"]["contractor"]["data"]["id"])
    update = {"data": {"type": "accounts", "id": key, "attributes": {"name": "changed"}}}
    linkage = {"data": {"type": "contractors", "id": str(contractor)}}
    return [
        ("POST", ACCOUNTS, account_body(contractor, name="created"), 201),
        ("PATCH", f"{ACCOUNTS}/{key}", update, 200),
        ("PUT", f"{ACCOUNTS}/{key}", update, 200),
        ("PATCH", f"{ACCOUNTS}/{key}/relationships/contractor", linkage, 204),
        ("PUT", f"{ACCOUNTS}/{key}/relationships/contractor", linkage, 204),
    ]


WRITES = ["post", "patch", "put", "patch-relationship", "put-relationship"]


@pytest.mark.parametrize("write", range(len(WRITES)), ids=WRITES)
@pytest.mark.parametrize(
    ("content_type", "quoted"),
    [
        ("application/json", "application/json"),
        ("application/json; charset=utf-8", "application/json"),
        ("text/plain", "text/plain"),
        ("Text/Plain; charset=utf-8", "text/plain"),
        ("application/vnd.api+json-patch", "application/vnd.api+json-patch"),
    ],
)
def test_wrong_content_type_on_writes_is_415(
    api: Api, db: Db, account: dict[str, Any], write: int, content_type: str, quoted: str
) -> None:
    method, path, body, _ = write_requests(account)[write]
    before = account_snapshot(db)

    response = api.request(method, path, json_body=body, headers={"Content-Type": content_type})

    assert response.status_code == 415
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == unsupported(quoted)
    assert account_snapshot(db) == before


@pytest.mark.parametrize("write", range(len(WRITES)), ids=WRITES)
def test_missing_content_type_on_writes_is_415_quoting_nothing(
    api: Api, app_client: TestClient, db: Db, account: dict[str, Any], write: int
) -> None:
    method, path, body, _ = write_requests(account)[write]
    before = account_snapshot(db)
    headers = {"Authorization": api.token, "Accept": JSONAPI, "Content-Type": JSONAPI}

    response = send_without(
        app_client, method, path, "content-type", headers, json.dumps(body).encode()
    )

    assert response.status_code == 415
    assert response.json() == unsupported("")
    assert account_snapshot(db) == before


@pytest.mark.parametrize("write", range(len(WRITES)), ids=WRITES)
@pytest.mark.parametrize(
    "content_type",
    [JSONAPI, "application/vnd.api+json; charset=utf-8", "APPLICATION/VND.API+JSON"],
)
def test_jsonapi_media_type_with_parameters_is_accepted(
    api: Api, account: dict[str, Any], write: int, content_type: str
) -> None:
    method, path, body, status = write_requests(account)[write]

    response = api.request(method, path, json_body=body, headers={"Content-Type": content_type})

    assert response.status_code == status, response.text


def test_delete_does_not_check_content_type(api: Api, db: Db, account: dict[str, Any]) -> None:
    path = f"{ACCOUNTS}/{account['id']}"
    headers = {"Content-Type": "text/plain"}

    relationship = api.delete(f"{path}/relationships/invoice-template", headers=headers)
    member = api.delete(path, headers=headers)

    assert relationship.status_code == 204, relationship.text
    assert member.status_code == 204, member.text
    assert db.fetchval("SELECT count(*) FROM accounts") == 0


def test_content_type_is_checked_before_accept(api: Api, account: dict[str, Any]) -> None:
    path = f"{ACCOUNTS}/{account['id']}"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    response = api.request("PATCH", path, content=b"{not json", headers=headers)

    assert response.status_code == 415
    assert response.json() == unsupported("application/json")


def test_accept_is_checked_before_the_body(api: Api, account: dict[str, Any]) -> None:
    path = f"{ACCOUNTS}/{account['id']}"

    response = api.request("PATCH", path, content=b"{not json", headers={"Accept": "text/html"})

    assert response.status_code == 406
    assert response.json() == not_acceptable("text/html")


# -- base URL from forwarded headers (§2.3) -------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "base"),
    [
        ({}, BASE_URL),
        ({"X-Forwarded-Host": "public.example.org"}, "http://public.example.org"),
        ({"X-Forwarded-Proto": "https"}, "https://api.example.com"),
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.org"},
            "https://public.example.org",
        ),
        (
            {
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "public.example.org",
                "X-Forwarded-Port": "8443",
            },
            "https://public.example.org:8443",
        ),
        (
            {
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "public.example.org",
                "X-Forwarded-Port": "443",
            },
            "https://public.example.org",
        ),
        ({"X-Forwarded-Host": "public.example.org:8080"}, "http://public.example.org:8080"),
        ({"Host": "api.example.com:8000"}, "http://api.example.com:8000"),
    ],
)
def test_links_follow_forwarded_headers(
    api: Api, account: dict[str, Any], headers: dict[str, str], base: str
) -> None:
    response = api.get(f"{ACCOUNTS}/{account['id']}", headers=headers)

    assert response.status_code == 200
    data = response.json()["data"]
    own = f"{base}{ACCOUNTS}/{account['id']}"
    assert data["links"]["self"] == own
    assert data["relationships"]["contractor"]["links"]["self"] == (
        f"{own}/relationships/contractor"
    )


def test_location_follows_forwarded_headers(api: Api, contractor_id: int) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.org"}

    response = api.post(ACCOUNTS, account_body(contractor_id), headers=headers)

    assert response.status_code == 201
    new_id = response.json()["data"]["id"]
    assert response.headers["location"] == f"https://public.example.org{ACCOUNTS}/{new_id}"


# -- unrouted paths and verbs ----------------------------------------------------------------

ROUTE_NOT_FOUND = {
    "errors": [
        {
            "title": "Not Found",
            "detail": "The requested path does not exist.",
            "code": "404",
            "status": "404",
        }
    ]
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/rest/admin/no-such-resource"),
        ("GET", "/nowhere"),
        ("POST", "/api/rest/admin/no-such-resource"),
        ("DELETE", "/api/rest/admin/no-such-resource/1"),
        ("GET", f"{ACCOUNTS}/1/no-such-relationship"),
        ("GET", f"{ACCOUNTS}/1/relationships/no-such-relationship"),
        ("OPTIONS", "/api/rest/admin/no-such-resource"),
    ],
)
def test_unrouted_paths_are_404_jsonapi(api: Api, method: str, path: str) -> None:
    response = api.request(method, path)

    assert response.status_code == 404
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == ROUTE_NOT_FOUND
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", ACCOUNTS, {"GET", "HEAD", "POST"}),
        ("PATCH", ACCOUNTS, {"GET", "HEAD", "POST"}),
        ("POST", f"{ACCOUNTS}/1", {"GET", "HEAD", "PATCH", "PUT", "DELETE"}),
        # contract §2.1: to-one relationships have no create
        (
            "POST",
            f"{ACCOUNTS}/1/relationships/contractor",
            {"GET", "HEAD", "PATCH", "PUT", "DELETE"},
        ),
        ("POST", "/api/rest/admin/timezones", {"GET", "HEAD"}),
        ("GET", "/api/rest/admin/auth", {"POST"}),
    ],
)
def test_wrong_verbs_are_405_with_allow(
    api: Api, method: str, path: str, allowed: set[str]
) -> None:
    response = api.request(method, path)

    assert response.status_code == 405
    assert response.headers["content-type"] == JSONAPI
    assert {verb.strip() for verb in response.headers["allow"].split(",")} == allowed
    [error] = response.json()["errors"]
    assert error["code"] == "405"
    assert error["status"] == "405"


# -- §0.3 escaping of <, > and & ---------------------------------------------------------------


def test_error_bodies_escape_html_characters(api: Api, contractor_id: int) -> None:
    body = account_body(contractor_id)
    body["data"]["type"] = "<b>&"

    response = api.post(ACCOUNTS, body)

    assert response.status_code == 400
    assert b"<" not in response.content
    assert b">" not in response.content
    assert b"&" not in response.content
    assert b'"detail":"\\u003cb\\u003e\\u0026 is not a valid resource."' in response.content
    assert response.json()["errors"] == [
        {
            "title": "Invalid resource",
            "detail": "<b>& is not a valid resource.",
            "code": "101",
            "status": "400",
        }
    ]


def test_406_body_escapes_the_quoted_accept_header(api: Api) -> None:
    response = api.get(ACCOUNTS, headers={"Accept": "text/<x>&y"})

    assert response.status_code == 406
    assert b"'text/\\u003cx\\u003e\\u0026y'" in response.content
    assert response.json() == not_acceptable("text/<x>&y")


def test_success_bodies_do_not_escape_html_characters(api: Api, contractor_id: int) -> None:
    created = api.post(ACCOUNTS, account_body(contractor_id, name="<b>&"))
    assert created.status_code == 201, created.text
    assert b'"name":"<b>&"' in created.content

    response = api.get(f"{ACCOUNTS}/{created.json()['data']['id']}")

    assert b'"name":"<b>&"' in response.content
    assert b"\\u003c" not in response.content
