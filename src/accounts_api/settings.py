"""Configuration from the environment, with defaults that run on a bare machine.

| variable                      | default                                   |
|-------------------------------|-------------------------------------------|
| DATABASE_URL                  | unset: embedded PostgreSQL under the data dir |
| ACCOUNTS_API_DATA_DIR         | ./var                                     |
| ACCOUNTS_API_SECRET_KEY       | generated once, kept in <data dir>/secret_key |
| ACCOUNTS_API_TOKEN_LIFETIME   | unset: tokens without `exp` (as Yeti)     |
| ACCOUNTS_API_DB_POOL_SIZE     | 10 connections per worker                 |
| ACCOUNTS_API_IDEMPOTENCY_TTL  | 86400: idempotency keys are kept 24 hours |
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
    # issue 6: request bounds
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
            max_filter_values=max_filter_values,
        )

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
