"""Admin JWTs (contract §1.2 format, §1.3 verification): HS256, `sub` an integer, `aud`
always `["admin"]`, `exp` only with a configured lifetime; issue 6: `exp` always checked when
present, required with a lifetime, and per-admin signing keys for revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from accounts_api.auth.tokens import InvalidToken, issue, signing_key, subject, verify

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
    token = issue(42, SECRET, lifetime)
    assert subject(token) == 42
    verify(token, SECRET, lifetime)


def test_expired_token_rejected_when_a_lifetime_is_configured() -> None:
    token = sign({"sub": 7, "aud": ["admin"], "exp": int(time.time()) - 10})
    with pytest.raises(InvalidToken):
        verify(token, SECRET, LIFETIME)


def test_expired_token_rejected_without_a_lifetime() -> None:
    # contract §1.3 describes Yeti ignoring exp without a lifetime: fixed (docs/compatibility.md)
    token = sign({"sub": 7, "aud": ["admin"], "exp": int(time.time()) - 3600})
    with pytest.raises(InvalidToken):
        verify(token, SECRET, None)


def test_token_without_exp_rejected_with_a_lifetime() -> None:
    with pytest.raises(InvalidToken):
        verify(sign({"sub": 7, "aud": ["admin"]}), SECRET, LIFETIME)


def test_token_without_exp_accepted_without_a_lifetime() -> None:
    verify(sign({"sub": 7, "aud": ["admin"]}), SECRET, None)


def test_unexpired_token_accepted() -> None:
    token = sign({"sub": 7, "aud": ["admin"], "exp": int(time.time()) + 60})
    verify(token, SECRET, LIFETIME)
    verify(token, SECRET, None)


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
    token = sign({**claims, "exp": int(time.time()) + 60})
    assert subject(token) == expected
    verify(token, SECRET, LIFETIME)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 7},
        {"sub": 7, "aud": ["customer-v1"]},
        {"sub": 7, "aud": []},
    ],
)
def test_rejected_audiences(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        verify(sign(claims), SECRET, None)


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": ["admin"]},
        {"sub": "abc", "aud": ["admin"]},
        {"sub": True, "aud": ["admin"]},
        {"sub": None, "aud": ["admin"]},
        {"sub": [7], "aud": ["admin"]},
        {"sub": 7.5, "aud": ["admin"]},
    ],
)
def test_subject_that_is_not_an_admin_id(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        subject(sign(claims))


def test_subject_is_read_without_the_key() -> None:
    # the admin's own key is known only once `sub` found the admin
    other_key = "some other key, long enough for HS256 signing"
    assert subject(sign({"sub": 7, "aud": ["admin"]}, secret=other_key)) == 7


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
        verify(token, SECRET, None)


@pytest.mark.parametrize("token", ["", "invalid", "a.b.c", "e30.e30.e30"])
def test_malformed_tokens_have_no_subject(token: str) -> None:
    with pytest.raises(InvalidToken):
        subject(token)


def test_tampered_payload_rejected() -> None:
    header, _, signature = issue(1, SECRET, None).split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":2,"aud":["admin"]}').rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        verify(f"{header}.{forged}.{signature}", SECRET, None)


# -- per-admin keys (issue 6: revocation) ----------------------------------------------------


def test_an_admin_without_a_token_key_signs_with_the_service_secret() -> None:
    # as Yeti signs: tokens Yeti issued keep working
    assert signing_key(SECRET, None) == SECRET


def test_a_token_key_derives_a_key_of_its_own() -> None:
    first, second = signing_key(SECRET, "one"), signing_key(SECRET, "two")

    assert first == hmac.new(SECRET.encode(), b"one", hashlib.sha256).digest()
    assert len({first, second, SECRET}) == 3
    token = issue(7, first, None)
    verify(token, first, None)
    for other in (second, SECRET):
        with pytest.raises(InvalidToken):
            verify(token, other, None)
    # the format stays Yeti's whatever the key
    assert segment(token, 0) == {"alg": "HS256"}
    assert raw_segment(token, 1) == b'{"sub":7,"aud":["admin"]}'
