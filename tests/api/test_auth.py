"""Authentication (contract §1): POST /auth, the JWT, where the token is read from, how it is
verified, and the admin IP allow-list."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from accounts_api.app import create_app
from accounts_api.auth import passwords
from accounts_api.settings import Settings
from tests.api.conftest import account_body
from tests.conftest import (
    ADMIN_PASSWORD,
    BASE_URL,
    JSONAPI,
    RESTRICTED,
    RESTRICTED_PASSWORD,
    ROOT,
    SECRET,
    Api,
    Db,
    client_for,
    settings_for,
    wait_until,
)

AUTH = "/api/rest/admin/auth"
ACCOUNTS = "/api/rest/admin/accounts"
LOGIN_JSON = "application/json; charset=utf-8"

TOKEN_REJECTED = {
    "errors": [
        {
            "title": "Authentication failed",
            "detail": "Authentication token is missing, invalid or expired.",
            "code": "401",
            "status": "401",
        }
    ]
}


def login_failure(detail: str) -> dict[str, Any]:
    error = {"title": "Authentication failed", "detail": detail, "code": "401", "status": "401"}
    return {"errors": [error]}


INCORRECT = login_failure("Incorrect login or password.")
IP_NOT_ALLOWED = login_failure("Your IP address is not allowed.")


def login(
    api: Api,
    body: dict[str, Any],
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Any:
    return api.post(
        AUTH,
        body,
        auth=False,
        headers={"Content-Type": content_type, "Accept": "application/json", **(headers or {})},
    )


def sign(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():
        # the HS512 case: PyJWT warns that the test secret is short for SHA-512
        warnings.simplefilter("ignore")
        return jwt.encode(claims, secret, algorithm=algorithm)


def claims_of(token: str) -> dict[str, Any]:
    """The verified claims; `sub` is an integer in Yeti's tokens, which PyJWT would refuse."""
    claims: dict[str, Any] = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="admin", options={"verify_sub": False}
    )
    return claims


def assert_token_rejected(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == TOKEN_REJECTED


# -- §1.1 POST /auth ------------------------------------------------------------------------


def test_login_answers_201_with_a_jwt_for_the_admin(api: Api, admin_id: int) -> None:
    response = login(api, {"auth": {"username": "test-admin", "password": ADMIN_PASSWORD}})

    assert response.status_code == 201
    assert response.headers["content-type"] == LOGIN_JSON
    document = response.json()
    assert list(document) == ["jwt"]
    token = document["jwt"]
    # contract §1.2: header {"alg":"HS256"}; claims sub (integer) and aud, no exp without lifetime
    assert jwt.get_unverified_header(token) == {"alg": "HS256"}
    claims = claims_of(token)
    assert claims == {"sub": admin_id, "aud": ["admin"]}
    assert type(claims["sub"]) is int
    # the token it returns is usable
    assert api.get(ACCOUNTS, headers={"Authorization": token}).status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/vnd.api+json", {"auth": {"username": "test-admin", "password": "password"}}),
        ("application/json", {"username": "test-admin", "password": "password"}),
        ("application/json; charset=utf-8", {"username": "test-admin", "password": "password"}),
    ],
    ids=["jsonapi-wrapped", "json-unwrapped", "json-charset-unwrapped"],
)
def test_login_accepts_the_other_json_encodings(
    api: Api, admin_id: int, content_type: str, body: dict[str, Any]
) -> None:
    response = login(api, body, content_type)

    assert response.status_code == 201, response.text
    claims = claims_of(response.json()["jwt"])
    assert claims["sub"] == admin_id


def test_login_accepts_form_encoding(api: Api, admin_id: int) -> None:
    response = api.request(
        "POST",
        AUTH,
        content=b"auth%5Busername%5D=test-admin&auth%5Bpassword%5D=password",
        auth=False,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "*/*"},
    )

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == LOGIN_JSON
    claims = claims_of(response.json()["jwt"])
    assert claims["sub"] == admin_id


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "test-admin", "password": "wrong"},
        {"username": "test-admin", "password": ""},
        {"username": "nobody", "password": "password"},
        {"username": "TEST-ADMIN", "password": "password"},
    ],
    ids=["wrong-password", "empty-password", "unknown-user", "username-is-case-sensitive"],
)
def test_login_with_wrong_credentials_is_401(
    api: Api, admin_id: int, credentials: dict[str, str]
) -> None:
    response = login(api, {"auth": credentials})

    assert response.status_code == 401
    assert response.headers["content-type"] == LOGIN_JSON
    assert response.json() == INCORRECT


def test_unwrapped_json_without_credentials_is_401(api: Api, admin_id: int) -> None:
    # contract §1.1: wrap_parameters puts every top-level key under `auth`, which is then
    # present but holds no username
    body = {"user": {"username": "test-admin", "password": ADMIN_PASSWORD}}

    response = login(api, body)

    assert response.status_code == 401
    assert response.json() == INCORRECT


def test_login_from_a_disallowed_ip_is_401_only_after_a_correct_password(
    api: Api, restricted_admin: int
) -> None:
    right = {"auth": {"username": RESTRICTED, "password": RESTRICTED_PASSWORD}}
    wrong = {"auth": {"username": RESTRICTED, "password": "wrong"}}
    outside = {"X-Forwarded-For": "192.168.1.1"}

    # the peer is 127.0.0.1, a trusted proxy: without X-Forwarded-For it is the client
    assert login(api, right).json() == IP_NOT_ALLOWED
    response = login(api, right, headers=outside)
    assert response.status_code == 401
    assert response.headers["content-type"] == LOGIN_JSON
    assert response.json() == IP_NOT_ALLOWED
    # contract §1.1: user -> password -> IP, so a wrong password never reveals the IP rule
    assert login(api, wrong, headers=outside).json() == INCORRECT


def test_login_from_an_allowed_ip_answers_the_restricted_admins_token(
    api: Api, restricted_admin: int
) -> None:
    body = {"auth": {"username": RESTRICTED, "password": RESTRICTED_PASSWORD}}

    response = login(api, body, headers={"X-Forwarded-For": "10.1.2.3"})

    assert response.status_code == 201, response.text
    claims = claims_of(response.json()["jwt"])
    assert claims == {"sub": restricted_admin, "aud": ["admin"]}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/vnd.api+json", {}),
        ("application/json", {}),
        ("application/json", {"auth": {}}),
        ("application/vnd.api+json", {"auth": {}}),
        # wrap_parameters wraps JSON only: the JSON:API media type needs the `auth` key
        ("application/vnd.api+json", {"username": "test-admin", "password": "password"}),
    ],
    ids=[
        "jsonapi-empty",
        "json-empty",
        "json-empty-auth",
        "jsonapi-empty-auth",
        "jsonapi-unwrapped",
    ],
)
def test_login_without_the_auth_parameter_is_400(
    api: Api, admin_id: int, content_type: str, body: dict[str, Any]
) -> None:
    response = login(api, body, content_type)

    assert response.status_code == 400
    assert "jwt" not in response.text


def test_login_with_an_empty_form_is_400(api: Api, admin_id: int) -> None:
    response = api.request(
        "POST",
        AUTH,
        content=b"",
        auth=False,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400


DEEP = b"[" * 50_000 + b"]" * 50_000


@pytest.mark.parametrize(
    "content",
    [
        b'{"auth": ',
        b"\xff\xfe{}",
        b'{"auth": {"username": "\xff", "password": "x"}}',
        b'{"auth": ' + DEEP + b"}",
    ],
    ids=["truncated", "non-utf8", "non-utf8-in-a-string", "deeply-nested"],
)
def test_login_with_a_malformed_body_is_400(api: Api, admin_id: int, content: bytes) -> None:
    response = api.request(
        "POST",
        AUTH,
        content=content,
        auth=False,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )

    assert response.status_code == 400
    assert "jwt" not in response.text


def test_login_body_over_one_mebibyte_is_413(api: Api, admin_id: int) -> None:
    credentials = {"username": "test-admin", "password": "x" * (1024 * 1024)}

    response = login(api, {"auth": credentials})

    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "413"


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": 5, "password": 5},
        {"username": ["test-admin"], "password": "password"},
        {"username": "test-admin\u0000", "password": "password"},
        {"username": "test-admin", "password": None},
        {"username": "test-admin"},
    ],
    ids=["numbers", "array", "nul", "null-password", "no-password"],
)
def test_login_with_credentials_of_the_wrong_shape_is_401(
    api: Api, admin_id: int, credentials: dict[str, Any]
) -> None:
    response = login(api, {"auth": credentials})

    assert response.status_code == 401
    assert response.json() == INCORRECT


# -- §1.3 where the token is read from ------------------------------------------------------


@pytest.mark.parametrize("scheme", ["", "Bearer ", "Token ", "Anything "])
def test_authorization_header_scheme_word_is_ignored(api: Api, token: str, scheme: str) -> None:
    response = api.get(ACCOUNTS, headers={"Authorization": f"{scheme}{token}"})

    assert response.status_code == 200, response.text


def test_missing_token_is_401_with_the_jsonapi_body(api: Api) -> None:
    assert_token_rejected(api.get(ACCOUNTS, auth=False))


def test_query_token_authenticates_without_a_header(api: Api, token: str) -> None:
    response = api.get(ACCOUNTS, auth=False, params={"token": token})

    assert response.status_code == 200, response.text


def test_query_token_wins_over_the_header(api: Api, token: str) -> None:
    valid_query = api.get(ACCOUNTS, headers={"Authorization": "invalid"}, params={"token": token})
    invalid_query = api.get(ACCOUNTS, params={"token": "invalid"})

    assert valid_query.status_code == 200, valid_query.text
    assert_token_rejected(invalid_query)


def test_empty_query_token_wins_over_a_valid_header(api: Api) -> None:
    # contract §1.3: an empty ?token= is a non-nil empty string
    assert_token_rejected(api.get(f"{ACCOUNTS}?token="))


def test_body_token_authenticates_a_write(api: Api, db: Db, token: str, contractor_id: int) -> None:
    body = {"token": token, **account_body(contractor_id, name="via-body-token")}

    response = api.post(ACCOUNTS, body, auth=False)

    assert response.status_code == 201, response.text
    assert db.fetchval("SELECT count(*) FROM accounts WHERE name = 'via-body-token'") == 1


def test_invalid_body_token_wins_over_a_valid_header(api: Api, db: Db, contractor_id: int) -> None:
    body = {"token": "invalid", **account_body(contractor_id)}

    assert_token_rejected(api.post(ACCOUNTS, body))
    assert db.fetchval("SELECT count(*) FROM accounts") == 0


def test_query_token_wins_over_a_body_token(
    api: Api, db: Db, token: str, contractor_id: int
) -> None:
    body = {"token": token, **account_body(contractor_id)}

    assert_token_rejected(api.post(ACCOUNTS, body, auth=False, params={"token": "invalid"}))
    assert db.fetchval("SELECT count(*) FROM accounts") == 0


# -- §1.3 verification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda admin: "invalid", id="garbage"),
        pytest.param(
            lambda admin: sign(
                {"sub": admin, "aud": ["admin"]}, "another-secret-of-32-bytes-length!"
            ),
            id="wrong-signature",
        ),
        pytest.param(
            lambda admin: sign({"sub": admin, "aud": ["admin"]}, algorithm="HS512"), id="hs512"
        ),
        pytest.param(
            lambda admin: jwt.encode({"sub": admin, "aud": ["admin"]}, None, algorithm="none"),
            id="alg-none",
        ),
        pytest.param(lambda admin: sign({"sub": admin, "aud": ["customer-v1"]}), id="customer-aud"),
        pytest.param(lambda admin: sign({"sub": admin}), id="missing-aud"),
        pytest.param(lambda admin: sign({"sub": 987654321, "aud": ["admin"]}), id="unknown-admin"),
        pytest.param(lambda admin: sign({"aud": ["admin"]}), id="missing-sub"),
        pytest.param(
            lambda admin: sign({"sub": admin, "aud": ["admin"]})[:-2] + "xx", id="tampered"
        ),
    ],
)
def test_rejected_tokens_are_401_with_the_jsonapi_body(
    api: Api, admin_id: int, make_token: Any
) -> None:
    assert_token_rejected(api.get(ACCOUNTS, headers={"Authorization": make_token(admin_id)}))


def test_rejected_token_on_a_write_changes_nothing(api: Api, db: Db, contractor_id: int) -> None:
    customer = sign({"sub": 1, "aud": ["customer-v1"]})

    response = api.post(ACCOUNTS, account_body(contractor_id), headers={"Authorization": customer})

    assert_token_rejected(response)
    assert db.fetchval("SELECT count(*) FROM accounts") == 0


def test_aud_may_be_a_string_or_contain_admin(api: Api, admin_id: int) -> None:
    as_string = sign({"sub": admin_id, "aud": "admin"})
    among_others = sign({"sub": admin_id, "aud": ["customer-v1", "admin"]})

    assert api.get(ACCOUNTS, headers={"Authorization": as_string}).status_code == 200
    assert api.get(ACCOUNTS, headers={"Authorization": among_others}).status_code == 200


def test_expired_token_is_401_without_a_configured_lifetime(api: Api, admin_id: int) -> None:
    # contract §1.3: Yeti ignores exp without a lifetime; fixed (docs/compatibility.md)
    expired = sign({"sub": admin_id, "aud": ["admin"], "exp": int(time.time()) - 3600})
    current = sign({"sub": admin_id, "aud": ["admin"], "exp": int(time.time()) + 3600})

    assert_token_rejected(api.get(ACCOUNTS, headers={"Authorization": expired}))
    assert api.get(ACCOUNTS, headers={"Authorization": current}).status_code == 200


def test_authentication_precedes_content_negotiation(api: Api, contractor_id: int) -> None:
    body = json.dumps(account_body(contractor_id)).encode()
    wrong_media = {"Content-Type": "text/plain", "Accept": "text/html"}

    assert_token_rejected(
        api.request("POST", ACCOUNTS, content=body, auth=False, headers=wrong_media)
    )
    rejected_get = api.get(ACCOUNTS, auth=False, headers={"Accept": "text/html"})
    assert rejected_get.status_code == 401
    assert rejected_get.json() == TOKEN_REJECTED


# -- §1.4 the allow-list is checked on every request ----------------------------------------


@pytest.mark.parametrize(
    ("forwarded_for", "status"),
    [
        ("10.1.2.3", 200),
        ("192.168.1.1", 401),
        (None, 401),  # the loopback peer itself is not in 10.0.0.0/8
        ("10.1.2.3, 127.0.0.1", 200),  # trusted proxies are skipped from the right
        ("192.168.1.1, 10.1.2.3", 200),  # the first untrusted from the right is the client
        ("10.1.2.3, 192.168.1.1", 401),
    ],
)
def test_restricted_admins_token_is_checked_against_the_allow_list(
    api: Api, restricted_admin: int, forwarded_for: str | None, status: int
) -> None:
    token = sign({"sub": restricted_admin, "aud": ["admin"]})
    headers = {"Authorization": token}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for

    response = api.get(ACCOUNTS, headers=headers)

    assert response.status_code == status, response.text
    if status == 401:
        assert response.json() == TOKEN_REJECTED


def test_allow_list_change_applies_to_tokens_already_issued(
    api: Api, db: Db, restricted_admin: int
) -> None:
    token = sign({"sub": restricted_admin, "aud": ["admin"]})
    headers = {"Authorization": token, "X-Forwarded-For": "10.1.2.3"}
    assert api.get(ACCOUNTS, headers=headers).status_code == 200

    db.execute(
        "UPDATE admin_users SET allowed_ips = '{172.16.0.1}'::cidr[] WHERE id = $1",
        restricted_admin,
    )
    # issue 10: the app's cache of admins drops it when PostgreSQL's notice of the change
    # arrives, a millisecond or so after the commit (tests/auth/test_admin_cache.py)
    cache = api.client.app.state.admin_cache  # type: ignore[attr-defined]
    assert wait_until(lambda: not cache.held(restricted_admin))

    assert_token_rejected(api.get(ACCOUNTS, headers=headers))
    allowed = api.get(ACCOUNTS, headers={**headers, "X-Forwarded-For": "172.16.0.1"})
    assert allowed.status_code == 200


def test_unrestricted_admin_is_allowed_from_any_address(api: Api) -> None:
    response = api.get(ACCOUNTS, headers={"X-Forwarded-For": "203.0.113.9"})

    assert response.status_code == 200


# -- §1.3 with a configured token lifetime -------------------------------------------------


@pytest.fixture
def expiring_client(database_url: str, admin_id: int) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        data_dir=ROOT / "var" / "test-data",
        token_lifetime=600,
        pool_size=1,
        secret_key_env=SECRET,
    )
    with TestClient(create_app(settings), base_url=BASE_URL, client=("127.0.0.1", 50000)) as client:
        yield client


def test_configured_lifetime_requires_an_unexpired_exp(
    expiring_client: TestClient, admin_id: int
) -> None:
    api = Api(expiring_client, "")
    now = int(time.time())
    expired = sign({"sub": admin_id, "aud": ["admin"], "exp": now - 10})
    current = sign({"sub": admin_id, "aud": ["admin"], "exp": now + 60})
    permanent = sign({"sub": admin_id, "aud": ["admin"]})

    assert_token_rejected(api.get(ACCOUNTS, headers={"Authorization": expired}))
    assert api.get(ACCOUNTS, headers={"Authorization": current}).status_code == 200
    # contract §1.3: Yeti accepts a token without exp here; with a lifetime we require one
    assert_token_rejected(api.get(ACCOUNTS, headers={"Authorization": permanent}))


def test_configured_lifetime_puts_exp_in_issued_tokens(
    expiring_client: TestClient, admin_id: int
) -> None:
    api = Api(expiring_client, "")
    before = int(time.time())

    response = login(api, {"auth": {"username": "test-admin", "password": ADMIN_PASSWORD}})

    assert response.status_code == 201, response.text
    claims = claims_of(response.json()["jwt"])
    assert list(claims) == ["sub", "aud", "exp"]
    assert claims["sub"] == admin_id
    assert before + 600 <= claims["exp"] <= int(time.time()) + 600


# -- issue 6: every /auth answer is kept out of caches ---------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"auth": {"username": "test-admin", "password": ADMIN_PASSWORD}}, 201),
        ({"auth": {"username": "test-admin", "password": "wrong"}}, 401),
        ({}, 400),
        ({"auth": {"username": "test-admin", "password": "x" * (1024 * 1024)}}, 413),
    ],
    ids=["201", "401", "400", "413"],
)
def test_auth_answers_are_not_stored(
    api: Api, admin_id: int, body: dict[str, Any], status: int
) -> None:
    response = login(api, body)

    assert response.status_code == status
    assert response.headers["cache-control"] == "no-store"


# -- issue 6: login throttling -----------------------------------------------------------------

MAX_FAILURES = 10
WINDOW = 15 * 60
THROTTLED = {
    "errors": [
        {
            "title": "Too Many Requests",
            "detail": "Too many failed login attempts. Try again later.",
            "code": "429",
            "status": "429",
        }
    ]
}


def attempt(client: Any, username: str, password: str, forwarded_for: str | None = None) -> Any:
    """A login through the session's client (peer 127.0.0.1, a trusted proxy), from
    `forwarded_for` when given."""
    api = client if isinstance(client, Api) else Api(client, "")
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return login(api, {"auth": {"username": username, "password": password}}, headers=headers)


def fail(
    client: Any, times: int, username: str = "test-admin", forwarded_for: str | None = None
) -> None:
    for _ in range(times):
        response = attempt(client, username, "wrong", forwarded_for)
        assert response.status_code == 401, response.text


def assert_throttled(response: Any, window: int = WINDOW) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == LOGIN_JSON
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == THROTTLED
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= window
    return retry_after


def throttle_rows(db: Db) -> dict[tuple[str, str], int]:
    rows = db.fetch("SELECT scope, key, failures FROM login_throttle")
    return {(row["scope"], row["key"]): row["failures"] for row in rows}


@pytest.fixture
def counted_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords argon2 was asked to check, in order."""
    checked: list[str] = []
    original = passwords.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        checked.append(password)
        return original(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return checked


def test_ten_failures_then_429_with_retry_after(
    api: Api, db: Db, admin_id: int, counted_checks: list[str]
) -> None:
    fail(api, MAX_FAILURES)

    assert_throttled(attempt(api, "test-admin", "wrong"))
    # checked before hashing: a throttled attempt costs no argon2
    assert len(counted_checks) == MAX_FAILURES
    assert throttle_rows(db)[("username", "test-admin")] >= MAX_FAILURES


def test_a_correct_password_while_throttled_is_still_429(
    api: Api, admin_id: int, counted_checks: list[str]
) -> None:
    fail(api, MAX_FAILURES)

    response = attempt(api, "test-admin", ADMIN_PASSWORD)

    assert_throttled(response)
    assert "jwt" not in response.text
    assert ADMIN_PASSWORD not in counted_checks


def test_addresses_are_throttled_across_usernames(api: Api, admin_id: int) -> None:
    for number in range(MAX_FAILURES):
        fail(api, 1, username=f"nobody{number}", forwarded_for="198.51.100.7")

    assert_throttled(attempt(api, "someone-else", "wrong", "198.51.100.7"))
    assert_throttled(attempt(api, "test-admin", ADMIN_PASSWORD, "198.51.100.7"))
    # another address is not concerned
    assert attempt(api, "test-admin", ADMIN_PASSWORD, "198.51.100.8").status_code == 201


def test_usernames_are_throttled_across_addresses(api: Api, admin_id: int) -> None:
    for number in range(MAX_FAILURES):
        fail(api, 1, forwarded_for=f"198.51.100.{number + 1}")

    assert_throttled(attempt(api, "test-admin", ADMIN_PASSWORD, "203.0.113.50"))
    # another username from the same addresses is not concerned
    assert attempt(api, "nobody", "wrong", "198.51.100.1").status_code == 401


def test_unknown_usernames_are_throttled_like_known_ones(api: Api, admin_id: int) -> None:
    for number in range(MAX_FAILURES):
        fail(api, 1, username="nobody", forwarded_for=f"198.51.100.{number + 1}")

    # the same answer as for an admin that exists: throttling tells nobody who exists
    assert_throttled(attempt(api, "nobody", "wrong", "203.0.113.50"))


def test_ipv6_clients_are_counted_per_64_block(api: Api, admin_id: int) -> None:
    for number in range(MAX_FAILURES):
        fail(api, 1, username=f"nobody{number}", forwarded_for=f"2001:db8:0:1::{number + 1:x}")

    assert_throttled(attempt(api, "nobody", "wrong", "2001:db8:0:1:ffff::1"))
    assert attempt(api, "nobody", "wrong", "2001:db8:0:2::1").status_code == 401


def test_a_success_resets_the_usernames_count(api: Api, db: Db, admin_id: int) -> None:
    fail(api, MAX_FAILURES - 1, forwarded_for="198.51.100.1")
    assert attempt(api, "test-admin", ADMIN_PASSWORD, "198.51.100.2").status_code == 201
    assert ("username", "test-admin") not in throttle_rows(db)

    # a fresh count: ten more failures, from other addresses, before the username is throttled
    for number in range(MAX_FAILURES):
        fail(api, 1, forwarded_for=f"198.51.100.{number + 10}")
    assert_throttled(attempt(api, "test-admin", "wrong", "198.51.100.100"))


def test_a_success_does_not_reset_the_addresss_count(api: Api, db: Db, admin_id: int) -> None:
    fail(api, MAX_FAILURES - 1, username="nobody", forwarded_for="198.51.100.1")

    assert attempt(api, "test-admin", ADMIN_PASSWORD, "198.51.100.1").status_code == 201

    # the success is not a failure, and does not forgive the nine before it
    assert throttle_rows(db)[("address", "198.51.100.1")] == MAX_FAILURES - 1
    fail(api, 1, username="nobody", forwarded_for="198.51.100.1")
    assert_throttled(attempt(api, "test-admin", ADMIN_PASSWORD, "198.51.100.1"))


def test_logins_that_succeed_are_never_throttled(api: Api, db: Db, admin_id: int) -> None:
    for _ in range(MAX_FAILURES + 2):
        assert attempt(api, "test-admin", ADMIN_PASSWORD).status_code == 201

    assert throttle_rows(db) == {}


def test_a_correct_password_from_a_disallowed_address_is_not_a_failure(
    api: Api, db: Db, restricted_admin: int
) -> None:
    for _ in range(MAX_FAILURES + 1):
        response = attempt(api, RESTRICTED, RESTRICTED_PASSWORD, "192.168.1.1")
        assert response.json() == IP_NOT_ALLOWED

    assert throttle_rows(db) == {}


def test_retry_after_counts_down_to_the_end_of_the_window(api: Api, db: Db, admin_id: int) -> None:
    fail(api, MAX_FAILURES, username="nobody")
    db.execute("UPDATE login_throttle SET window_started_at = now() - interval '800 seconds'")

    retry_after = assert_throttled(attempt(api, "nobody", "wrong"))

    assert WINDOW - 800 - 5 <= retry_after <= WINDOW - 800


def test_a_new_window_starts_when_the_last_one_ended(api: Api, db: Db, admin_id: int) -> None:
    fail(api, MAX_FAILURES)
    assert_throttled(attempt(api, "test-admin", ADMIN_PASSWORD))

    db.execute(
        "UPDATE login_throttle SET window_started_at = now() - make_interval(secs => $1)",
        float(WINDOW),
    )

    assert attempt(api, "test-admin", "wrong").status_code == 401
    assert throttle_rows(db) == {("username", "test-admin"): 1, ("address", "127.0.0.1"): 1}
    assert attempt(api, "test-admin", ADMIN_PASSWORD).status_code == 201


def test_counts_are_shared_by_every_instance(api: Api, database_url: str, admin_id: int) -> None:
    with client_for(settings_for(database_url)) as other:
        fail(api, MAX_FAILURES // 2)
        fail(other, MAX_FAILURES - MAX_FAILURES // 2)

        assert_throttled(attempt(api, "test-admin", ADMIN_PASSWORD))
        assert_throttled(attempt(other, "test-admin", ADMIN_PASSWORD))


def test_the_limits_come_from_the_settings(api: Api, database_url: str, admin_id: int) -> None:
    settings = settings_for(database_url, login_max_failures=3, login_failure_window=60)
    with client_for(settings) as strict:
        fail(strict, 3)

        assert_throttled(attempt(strict, "test-admin", ADMIN_PASSWORD), window=60)


def test_ended_windows_are_purged_a_bounded_batch_at_a_time(
    api: Api, db: Db, admin_id: int
) -> None:
    db.execute(
        "INSERT INTO login_throttle (scope, key, failures, window_started_at)"
        " SELECT 'username', 'stale' || n, 3, now() - interval '1 hour'"
        " FROM generate_series(1, 50) n"
    )
    db.execute(
        "INSERT INTO login_throttle VALUES ('username', 'recent', 3, now() - interval '1 minute')"
    )

    fail(api, 1, username="nobody")

    rows = throttle_rows(db)
    assert len([key for key in rows if key[1].startswith("stale")]) == 30
    assert rows[("username", "recent")] == 3
    assert rows[("username", "nobody")] == 1

    fail(api, 2, username="nobody")
    assert not [key for key in throttle_rows(db) if key[1].startswith("stale")]


def test_a_username_longer_than_any_admins_is_counted(api: Api, db: Db, admin_id: int) -> None:
    # no index entry may outgrow PostgreSQL's limit: the key is cut to the column's length
    fail(api, 1, username="x" * 100_000)

    assert throttle_rows(db)[("username", "x" * 255)] == 1


# -- issue 6: password checks are capped per worker -------------------------------------------


class BlockedChecks:
    """verify_password held until released, so a test can fill the cap without timing."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, password_hash: str | None, password: str) -> bool:
        self.entered.set()
        assert self.release.wait(timeout=60), "never released"
        return False


def test_logins_beyond_the_cap_and_its_queue_are_503(
    api: Api, db: Db, database_url: str, admin_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = BlockedChecks()
    monkeypatch.setattr(passwords, "verify_password", blocked)
    settings = settings_for(database_url, login_concurrency=1, login_queue=0)
    with client_for(settings) as capped, ThreadPoolExecutor(1) as pool:
        first = pool.submit(attempt, capped, "test-admin", "wrong")
        try:
            assert blocked.entered.wait(timeout=60), "the first login never reached its check"

            response = attempt(capped, "test-admin", ADMIN_PASSWORD)
        finally:
            blocked.release.set()

        assert response.status_code == 503
        assert response.headers["content-type"] == LOGIN_JSON
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["retry-after"] == "1"
        assert response.json() == {
            "errors": [
                {
                    "title": "Service Unavailable",
                    "detail": "Too many logins are being checked. Try again shortly.",
                    "code": "503",
                    "status": "503",
                }
            ]
        }
        assert first.result(timeout=60).status_code == 401
    # refused before anything was counted: only the first attempt's failure is
    assert throttle_rows(db) == {("username", "test-admin"): 1, ("address", "127.0.0.1"): 1}
