"""Admin JWTs (contract §1.2 format, §1.3 verification): HS256, `sub` an integer, `aud`
always `["admin"]`, `exp` only with a configured lifetime and then checked."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from accounts_api.auth.tokens import InvalidToken, admin_id, issue

SECRET = "test-secret-key-that-is-long-enough-for-hs256-and-hs512-signing-keys!"
LIFETIME = 600


def segment(token: str, index: int) -> Any:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def raw_segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def sign(claims: dict[str, Any], *, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def test_issue_with_lifetime() -> None:
    before = int(time.time())
    token = issue(7, SECRET, LIFETIME)
    after = int(time.time())
    claims = segment(token, 1)
    assert list(claims) == ["sub", "aud", "exp"]
    assert claims["sub"] == 7
    assert type(claims["sub"]) is int
    assert claims["aud"] == ["admin"]
    assert before + LIFETIME <= claims["exp"] <= after + LIFETIME
    assert raw_segment(token, 1) == (
        b'{"sub":7,"aud":["admin"],"exp":' + str(claims["exp"]).encode() + b"}"
    )


def test_issue_permanent() -> None:
    token = issue(1, SECRET, None)
    assert raw_segment(token, 1) == b'{"sub":1,"aud":["admin"]}'


def test_issue_header_is_alg_only() -> None:
    assert segment(issue(1, SECRET, None), 0) == {"alg": "HS256"}


def test_issue_signature_is_hs256() -> None:
    token = issue(3, SECRET, LIFETIME)
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="admin", options={"verify_sub": False}
    )
    assert claims["sub"] == 3
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET + "x", algorithms=["HS256"], audience="admin")


@pytest.mark.parametrize("lifetime", [LIFETIME, None])
def test_round_trip(lifetime: int | None) -> None:
    assert admin_id(issue(42, SECRET, lifetime), SECRET, lifetime) == 42


def test_expired_token_rejected_when_a_lifetime_is_configured() -> None:
    token = sign({"sub": 7, "aud": ["admin"], "exp": int(time.time()) - 10})
    with pytest.raises(InvalidToken):
        admin_id(token, SECRET, LIFETIME)


def test_exp_ignored_without_a_lifetime() -> None:
    token = sign({"sub": 7, "aud": ["admin"], "exp": int(time.time()) - 3600})
    assert admin_id(token, SECRET, None) == 7


def test_token_without_exp_accepted_with_a_lifetime() -> None:
    assert admin_id(sign({"sub": 7, "aud": ["admin"]}), SECRET, LIFETIME) == 7


def test_unexpired_token_accepted() -> None:
    token = sign({"sub": 7, "aud": ["admin"], "exp": int(time.time()) + 60})
    assert admin_id(token, SECRET, LIFETIME) == 7


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"sub": 7, "aud": "admin"}, 7),
        ({"sub": 7, "aud": ["customer-v1", "admin"]}, 7),
        # `sub` is looked up as an id; a numeric string finds the same admin
        ({"sub": "8", "aud": ["admin"]}, 8),
    ],
)
def test_accepted_claims(claims: dict[str, Any], expected: int) -> None:
    assert admin_id(sign(claims), SECRET, LIFETIME) == expected


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 7},
        {"sub": 7, "aud": ["customer-v1"]},
        {"sub": 7, "aud": []},
        {"aud": ["admin"]},
        {"sub": "abc", "aud": ["admin"]},
        {"sub": True, "aud": ["admin"]},
        {"sub": None, "aud": ["admin"]},
        {"sub": [7], "aud": ["admin"]},
    ],
)
def test_rejected_claims(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        admin_id(sign(claims), SECRET, LIFETIME)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "invalid",
        "a.b.c",
        sign({"sub": 7, "aud": ["admin"]}, secret=SECRET[::-1]),
        sign({"sub": 7, "aud": ["admin"]}, algorithm="HS512"),
        sign({"sub": 7, "aud": ["admin"]}, secret="", algorithm="none"),
    ],
)
def test_rejected_tokens(token: str) -> None:
    with pytest.raises(InvalidToken):
        admin_id(token, SECRET, None)


def test_tampered_payload_rejected() -> None:
    header, _, signature = issue(1, SECRET, None).split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":2,"aud":["admin"]}').rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        admin_id(f"{header}.{forged}.{signature}", SECRET, None)
