"""Configuration from the environment, with defaults that run on a bare machine.

| variable                      | default                                   |
|-------------------------------|-------------------------------------------|
| DATABASE_URL                  | unset: embedded PostgreSQL under the data dir |
| ACCOUNTS_API_DATA_DIR         | ./var                                     |
| ACCOUNTS_API_SECRET_KEY       | generated once, kept in <data dir>/secret_key |
| ACCOUNTS_API_TOKEN_LIFETIME   | unset: tokens without `exp` (as Yeti)     |
| ACCOUNTS_API_DB_POOL_SIZE     | 10 connections per worker                 |
| ACCOUNTS_API_IDEMPOTENCY_TTL  | 86400: idempotency keys are kept 24 hours |
| ACCOUNTS_API_MAX_HEADER_BYTES | 32768: larger request headers are refused (431) |
| ACCOUNTS_API_MAX_QUERY_BYTES  | 16384: longer query strings are refused (414) |
| ACCOUNTS_API_DB_STATEMENT_TIMEOUT | 30 seconds: a longer statement is cancelled (503) |
| ACCOUNTS_API_DB_LOCK_TIMEOUT  | 5 seconds: a longer wait for a row lock gives up (409) |
| ACCOUNTS_API_DB_IDLE_IN_TRANSACTION_TIMEOUT | 60 seconds: PostgreSQL ends such sessions |
| ACCOUNTS_API_DB_ACQUIRE_TIMEOUT | 5 seconds: the longest wait for a pooled connection (503) |
| ACCOUNTS_API_DB_CONNECTION_CHECK_INTERVAL | 5 seconds: a query whose client left stops |
| ACCOUNTS_API_MAX_FILTER_VALUES | 100: values one filter takes (`in`, `cont_any`, `id=1,2`) |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


class ConfigurationError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    token_lifetime: int | None
    pool_size: int
    secret_key_env: str | None
    idempotency_ttl: int = 24 * 60 * 60
    # issue 6: request bounds and database time bounds (seconds)
    max_header_bytes: int = 32 * 1024
    max_query_bytes: int = 16 * 1024
    statement_timeout: float = 30.0
    lock_timeout: float = 5.0
    idle_in_transaction_timeout: float = 60.0
    acquire_timeout: float = 5.0
    connection_check_interval: float = 5.0
    max_filter_values: int = 100

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        lifetime = env.get("ACCOUNTS_API_TOKEN_LIFETIME", "").strip()
        pool_size = env.get("ACCOUNTS_API_DB_POOL_SIZE", "10").strip()
        ttl = env.get("ACCOUNTS_API_IDEMPOTENCY_TTL", "").strip()
        try:
            token_lifetime = int(lifetime) if lifetime else None
            pool = int(pool_size)
            idempotency_ttl = int(ttl) if ttl else 24 * 60 * 60
        except ValueError as exc:
            raise ConfigurationError(f"not an integer: {exc}") from None
        if idempotency_ttl <= 0:
            raise ConfigurationError(
                "ACCOUNTS_API_IDEMPOTENCY_TTL must be a positive number of seconds"
            )
        if token_lifetime is not None and token_lifetime <= 0:
            raise ConfigurationError(
                "ACCOUNTS_API_TOKEN_LIFETIME must be a positive number of seconds"
            )
        # issue 6: request bounds
        filter_values = env.get("ACCOUNTS_API_MAX_FILTER_VALUES", "").strip()
        try:
            max_filter_values = int(filter_values) if filter_values else 100
        except ValueError:
            max_filter_values = 0
        if max_filter_values <= 0:
            raise ConfigurationError("ACCOUNTS_API_MAX_FILTER_VALUES must be a positive integer")
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            data_dir=Path(env.get("ACCOUNTS_API_DATA_DIR") or "var").resolve(),
            token_lifetime=token_lifetime,
            pool_size=max(pool, 1),
            secret_key_env=env.get("ACCOUNTS_API_SECRET_KEY") or None,
            idempotency_ttl=idempotency_ttl,
            max_header_bytes=int(_positive(env, "ACCOUNTS_API_MAX_HEADER_BYTES", 32 * 1024)),
            max_query_bytes=int(_positive(env, "ACCOUNTS_API_MAX_QUERY_BYTES", 16 * 1024)),
            statement_timeout=_positive(env, "ACCOUNTS_API_DB_STATEMENT_TIMEOUT", 30),
            lock_timeout=_positive(env, "ACCOUNTS_API_DB_LOCK_TIMEOUT", 5),
            idle_in_transaction_timeout=_positive(
                env, "ACCOUNTS_API_DB_IDLE_IN_TRANSACTION_TIMEOUT", 60
            ),
            acquire_timeout=_positive(env, "ACCOUNTS_API_DB_ACQUIRE_TIMEOUT", 5),
            connection_check_interval=_positive(
                env, "ACCOUNTS_API_DB_CONNECTION_CHECK_INTERVAL", 5
            ),
            max_filter_values=max_filter_values,
        )

    def database_session_settings(self) -> dict[str, str]:
        """PostgreSQL settings of every pooled session, in milliseconds."""
        return {
            "statement_timeout": _milliseconds(self.statement_timeout),
            "lock_timeout": _milliseconds(self.lock_timeout),
            "idle_in_transaction_session_timeout": _milliseconds(self.idle_in_transaction_timeout),
            # PostgreSQL >= 14: a query whose client went away stops at the next check
            "client_connection_check_interval": _milliseconds(self.connection_check_interval),
        }

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def secret_key(self) -> str:
        """The JWT signing key: from the environment, else generated once and kept on disk."""
        if self.secret_key_env:
            return self.secret_key_env
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(64)
        # O_EXCL: two workers starting together must end up with one key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def _positive(env: dict[str, str], name: str, default: float) -> float:
    """A positive number from the environment (seconds or bytes), else the default."""
    raw = env.get(name, "").strip()
    if not raw:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not 0 < value < 10**9:
        raise ConfigurationError(f"{name} must be a positive number, got {raw!r}")
    return value


def _milliseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))
