"""Admin users: creation, password resets and token revocation (the CLI) and the lookups
authentication needs."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from accounts_api.auth.addresses import parse_network
from accounts_api.auth.passwords import hash_password
from accounts_api.db.pool import Connection
from accounts_api.settings import Network


@dataclass(frozen=True)
class AdminUser:
    id: int
    username: str
    password_hash: str
    allowed_ips: list[Network] | None
    # NULL: tokens signed with the service secret (auth/tokens.py)
    token_key: str | None


class AdminExists(Exception):
    pass


class UnknownAdmin(Exception):
    pass


_COLUMNS = "id, username, password_hash, allowed_ips, token_key"


def _from_row(row: asyncpg.Record) -> AdminUser:
    return AdminUser(
        row["id"], row["username"], row["password_hash"], row["allowed_ips"], row["token_key"]
    )


async def by_username(connection: Connection, username: str) -> AdminUser | None:
    row = await connection.fetchrow(
        f"SELECT {_COLUMNS} FROM admin_users WHERE username = $1", username
    )
    return _from_row(row) if row else None


async def by_id(connection: Connection, admin_id: int) -> AdminUser | None:
    if not 0 < admin_id < 2**63:
        return None
    row = await connection.fetchrow(f"SELECT {_COLUMNS} FROM admin_users WHERE id = $1", admin_id)
    return _from_row(row) if row else None


async def create(
    connection: Connection, username: str, password: str, allowed_ips: Sequence[str] = ()
) -> int:
    networks = [parse_network(ip) for ip in allowed_ips]
    if len(set(networks)) != len(networks):
        raise ValueError("allowed IPs must be unique")
    try:
        admin_id: int = await connection.fetchval(
            "INSERT INTO admin_users (username, password_hash, allowed_ips)"
            " VALUES ($1, $2, $3) RETURNING id",
            username,
            hash_password(password),
            networks or None,
        )
    except asyncpg.UniqueViolationError:
        raise AdminExists(username) from None
    return admin_id


def _new_token_key() -> str:
    return secrets.token_urlsafe(32)


async def revoke_tokens(connection: Connection, username: str) -> None:
    """Every token issued to the admin so far stops verifying: its signing key changes."""
    found = await connection.fetchval(
        "UPDATE admin_users SET token_key = $2 WHERE username = $1 RETURNING true",
        username,
        _new_token_key(),
    )
    if not found:
        raise UnknownAdmin(username)


async def set_password(connection: Connection, username: str, password: str) -> None:
    """A new password, and the tokens issued with the old one revoked with it."""
    found = await connection.fetchval(
        "UPDATE admin_users SET password_hash = $2, token_key = $3 WHERE username = $1"
        " RETURNING true",
        username,
        hash_password(password),
        _new_token_key(),
    )
    if not found:
        raise UnknownAdmin(username)
