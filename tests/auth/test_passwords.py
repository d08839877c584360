"""Password hashing: argon2id, verified in constant work whether or not the user exists."""

from __future__ import annotations

import pytest

from accounts_api.auth.passwords import hash_password, verify_password

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_hash() -> str:
    # argon2 is slow on purpose: hash once for the module
    return hash_password(PASSWORD)


def test_hash_is_argon2id(password_hash: str) -> None:
    assert password_hash.startswith("$argon2id$v=19$")
    assert PASSWORD not in password_hash


def test_verify(password_hash: str) -> None:
    assert verify_password(password_hash, PASSWORD) is True


@pytest.mark.parametrize("attempt", ["wrong", PASSWORD.upper()])
def test_wrong_password(password_hash: str, attempt: str) -> None:
    assert verify_password(password_hash, attempt) is False


@pytest.mark.parametrize(
    "stored",
    ["garbage", "", "$argon2id$v=19$m=65536,t=3,p=4$broken", "$2b$12$abcdefghijklmnopqrstuv"],
)
def test_garbage_hash_never_verifies(stored: str) -> None:
    assert verify_password(stored, PASSWORD) is False


def test_missing_user_never_verifies() -> None:
    # the dummy hash's own password must not log anyone in
    assert verify_password(None, "not a password of anyone") is False
