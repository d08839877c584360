"""Admin JWTs as Yeti issues them (contract §1.2): HS256, `sub` the admin id as an integer,
`aud` always `["admin"]`, `exp` only when a lifetime is configured, nothing else.
"""

from __future__ import annotations

import time

import jwt

AUDIENCE = "admin"


class InvalidToken(Exception):
    pass


def issue(admin_id: int, secret: str, lifetime: int | None) -> str:
    claims: dict[str, object] = {"sub": admin_id, "aud": [AUDIENCE]}
    if lifetime is not None:
        claims["exp"] = int(time.time()) + lifetime
    # contract §1.2: the header is exactly {"alg":"HS256"}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": None})


def admin_id(token: str, secret: str, lifetime: int | None) -> int:
    """The admin id of a valid token. `exp` is checked only when a lifetime is configured
    (contract §1.3: and then a token without `exp` is still accepted)."""
    if not token:
        raise InvalidToken("blank token")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"verify_exp": lifetime is not None, "verify_sub": False, "require": ["aud"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    subject = claims.get("sub")
    if isinstance(subject, bool) or not isinstance(subject, int | str):
        raise InvalidToken("sub is not an admin id")
    try:
        return int(subject)
    except ValueError:
        raise InvalidToken("sub is not an admin id") from None
