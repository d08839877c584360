"""Admin JWTs as Yeti issues them (contract §1.2): HS256, `sub` the admin id as an integer,
`aud` always `["admin"]`, `exp` only when a lifetime is configured, nothing else.

Each admin's tokens are signed with that admin's key (issue 6): the service secret while the
admin has no `token_key` (so tokens Yeti issued keep working), else a key derived from the
secret and the `token_key`, which revoking the admin's tokens replaces. Verification therefore
reads `sub` first, without the signature, to find the admin and its key.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import jwt

AUDIENCE = "admin"

SigningKey = str | bytes


class InvalidToken(Exception):
    pass


def signing_key(secret: str, token_key: str | None) -> SigningKey:
    if token_key is None:
        return secret
    return hmac.new(secret.encode(), token_key.encode(), hashlib.sha256).digest()


def issue(admin_id: int, key: SigningKey, lifetime: int | None) -> str:
    claims: dict[str, object] = {"sub": admin_id, "aud": [AUDIENCE]}
    if lifetime is not None:
        claims["exp"] = int(time.time()) + lifetime
    # contract §1.2: the header is exactly {"alg":"HS256"}
    return jwt.encode(claims, key, algorithm="HS256", headers={"typ": None})


def subject(token: str) -> int:
    """The admin id a token claims to be for, read without verifying anything else."""
    if not token:
        raise InvalidToken("blank token")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    value = claims.get("sub")
    # `sub` is looked up as an id (contract §1.3): an integer, or a string of one
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidToken("sub is not an admin id")
    try:
        return int(value)
    except ValueError:
        raise InvalidToken("sub is not an admin id") from None


def verify(token: str, key: SigningKey, lifetime: int | None) -> float | None:
    """The signature, the audience and `exp`. `exp` is checked whenever present (contract §1.3:
    Yeti ignores it without a lifetime) and required when a lifetime is configured (Yeti accepts
    a token without one); docs/compatibility.md. Returns `exp` (None: the token never expires)."""
    required = ["aud", "exp"] if lifetime is not None else ["aud"]
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"verify_exp": True, "verify_sub": False, "require": required},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    exp = claims.get("exp")
    # PyJWT checked it is a number
    return None if exp is None else float(exp)


def expired(exp: float | None) -> bool:
    """`exp` as PyJWT reads it (no leeway): a token is valid strictly before it."""
    return exp is not None and exp <= time.time()
