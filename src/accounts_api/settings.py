"""Configuration from the environment, with defaults that run on a bare machine.

`VARIABLES` lists every variable, its default and its meaning: `accounts-api --help` prints
it, and a test checks that README's Configuration table lists the same names.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# contract §1.4: Yeti trusts loopback proxies only (a web server on the same host)
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str


VARIABLES = (
    Variable("DATABASE_URL", "unset: embedded PostgreSQL", "postgresql://user:pass@host:port/db"),
    Variable("ACCOUNTS_API_DATA_DIR", "./var", "the embedded server's data, the key, the password"),
    Variable("ACCOUNTS_API_SECRET_KEY", "generated into <data dir>/secret_key", "JWT HS256 key"),
    Variable("ACCOUNTS_API_TOKEN_LIFETIME", "unset: no exp (as Yeti)", "token lifetime, seconds"),
    Variable("ACCOUNTS_API_DB_POOL_SIZE", "10", "database connections per worker"),
    Variable(
        "ACCOUNTS_API_IDEMPOTENCY_TTL", "86400", "seconds an Idempotency-Key's answer is kept"
    ),
    Variable("ACCOUNTS_API_LOGIN_CONCURRENCY", "2", "password checks at once per worker"),
    Variable("ACCOUNTS_API_LOGIN_QUEUE", "32", "logins waiting for a check; beyond, 503"),
    Variable("ACCOUNTS_API_LOGIN_MAX_FAILURES", "10", "failed logins per window; then 429"),
    Variable("ACCOUNTS_API_LOGIN_FAILURE_WINDOW", "900", "the login throttling window, seconds"),
    Variable("ACCOUNTS_API_TRUSTED_PROXIES", "127.0.0.1/32,::1/128", "proxies whose headers count"),
    Variable("ACCOUNTS_API_MAX_HEADER_BYTES", "32768", "larger request headers: 431"),
    Variable("ACCOUNTS_API_MAX_QUERY_BYTES", "16384", "longer query strings: 414"),
    Variable("ACCOUNTS_API_MAX_FILTER_VALUES", "100", "values one filter takes; more: 400"),
    Variable("ACCOUNTS_API_DB_STATEMENT_TIMEOUT", "30", "seconds a statement may run; then 503"),
    Variable("ACCOUNTS_API_DB_LOCK_TIMEOUT", "5", "seconds a write waits for a row lock; then 409"),
    Variable("ACCOUNTS_API_DB_IDLE_IN_TRANSACTION_TIMEOUT", "60", "seconds idle in a transaction"),
    Variable("ACCOUNTS_API_DB_ACQUIRE_TIMEOUT", "5", "seconds to wait for a pooled connection"),
    Variable("ACCOUNTS_API_DB_CONNECTION_CHECK_INTERVAL", "5", "seconds between client checks"),
    Variable("ACCOUNTS_API_SHUTDOWN_TIMEOUT", "30", "seconds in-flight requests get on SIGTERM"),
    Variable("ACCOUNTS_API_DELIVERY", "on", "serve delivers notifications; off: only worker"),
    Variable("ACCOUNTS_API_DELIVERY_RETRY_BASE", "5", "seconds to a failed delivery's retry"),
    Variable("ACCOUNTS_API_DELIVERY_TIMEOUT", "10", "seconds one webhook or SMTP session may take"),
    Variable("ACCOUNTS_API_NOTIFICATION_LOG_DAYS", "30", "days notifications are kept"),
    Variable("ACCOUNTS_API_LOG_FORMAT", "text", "json: one JSON object per log line"),
    Variable("PROMETHEUS_MULTIPROC_DIR", "a private temporary directory", "metrics' files"),
)


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
    # issue 6: logins and tokens
    login_concurrency: int = 2
    login_queue: int = 32
    login_max_failures: int = 10
    login_failure_window: int = 15 * 60
    trusted_proxies: tuple[Network, ...] = LOOPBACK
    # issue 7: notifications. `from_env` turns delivery on; a Settings built in code (tests,
    # tools) runs no delivery loop unless it says so.
    deliver: bool = False
    delivery_retry_base: float = 5.0
    delivery_timeout: float = 10.0
    notification_log_days: int = 30
    # issue 9: how long SIGTERM lets in-flight requests run before they are cancelled
    shutdown_timeout: float = 30.0
    # issue 9: `text` or `json` (logs.py)
    log_format: str = "text"

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
        max_filter_values = _count(env, "ACCOUNTS_API_MAX_FILTER_VALUES", 100, minimum=1)
        # issue 6: logins and tokens
        login_concurrency = _count(env, "ACCOUNTS_API_LOGIN_CONCURRENCY", 2, minimum=1)
        login_queue = _count(env, "ACCOUNTS_API_LOGIN_QUEUE", 32, minimum=0)
        login_max_failures = _count(env, "ACCOUNTS_API_LOGIN_MAX_FAILURES", 10, minimum=1)
        login_failure_window = _count(env, "ACCOUNTS_API_LOGIN_FAILURE_WINDOW", 900, minimum=1)
        trusted_proxies = _networks(env, "ACCOUNTS_API_TRUSTED_PROXIES", LOOPBACK)
        # issue 7: notifications
        idle_in_transaction_timeout = _positive(
            env, "ACCOUNTS_API_DB_IDLE_IN_TRANSACTION_TIMEOUT", 60
        )
        delivery_timeout = _positive(env, "ACCOUNTS_API_DELIVERY_TIMEOUT", 10)
        # a delivery is sent inside the transaction that holds its claim: the session must
        # outlive the longest send, or PostgreSQL ends it and the delivery is sent twice
        if delivery_timeout > idle_in_transaction_timeout / 2:
            raise ConfigurationError(
                "ACCOUNTS_API_DELIVERY_TIMEOUT must be at most half of"
                " ACCOUNTS_API_DB_IDLE_IN_TRANSACTION_TIMEOUT"
            )
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            data_dir=Path(env.get("ACCOUNTS_API_DATA_DIR") or "var").resolve(),
            token_lifetime=token_lifetime,
            pool_size=max(pool, 1),
            secret_key_env=env.get("ACCOUNTS_API_SECRET_KEY") or None,
            idempotency_ttl=idempotency_ttl,
            max_header_bytes=_count(env, "ACCOUNTS_API_MAX_HEADER_BYTES", 32 * 1024, minimum=1),
            max_query_bytes=_count(env, "ACCOUNTS_API_MAX_QUERY_BYTES", 16 * 1024, minimum=1),
            statement_timeout=_positive(env, "ACCOUNTS_API_DB_STATEMENT_TIMEOUT", 30),
            lock_timeout=_positive(env, "ACCOUNTS_API_DB_LOCK_TIMEOUT", 5),
            idle_in_transaction_timeout=idle_in_transaction_timeout,
            acquire_timeout=_positive(env, "ACCOUNTS_API_DB_ACQUIRE_TIMEOUT", 5),
            connection_check_interval=_positive(
                env, "ACCOUNTS_API_DB_CONNECTION_CHECK_INTERVAL", 5
            ),
            max_filter_values=max_filter_values,
            login_concurrency=login_concurrency,
            login_queue=login_queue,
            login_max_failures=login_max_failures,
            login_failure_window=login_failure_window,
            trusted_proxies=trusted_proxies,
            deliver=_switch(env, "ACCOUNTS_API_DELIVERY", True),
            delivery_retry_base=_positive(env, "ACCOUNTS_API_DELIVERY_RETRY_BASE", 5),
            delivery_timeout=delivery_timeout,
            notification_log_days=_count(env, "ACCOUNTS_API_NOTIFICATION_LOG_DAYS", 30, minimum=1),
            shutdown_timeout=_positive(env, "ACCOUNTS_API_SHUTDOWN_TIMEOUT", 30),
            log_format=_choice(env, "ACCOUNTS_API_LOG_FORMAT", ("text", "json")),
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
    """A positive number of seconds from the environment, else the default."""
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


_ON = ("on", "true", "yes", "1")
_OFF = ("off", "false", "no", "0")


def _switch(env: dict[str, str], name: str, default: bool) -> bool:
    """on/off (or true/false, yes/no, 1/0) from the environment, else the default."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise ConfigurationError(f"{name} must be on or off, got {raw!r}")


def _choice(env: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (case-insensitive), the first when unset."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return choices[0]
    if raw not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _milliseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def _count(env: dict[str, str], name: str, default: int, minimum: int) -> int:
    text = env.get(name, "").strip()
    try:
        value = int(text) if text else default
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, not {text!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}")
    return value


def _networks(env: dict[str, str], name: str, default: tuple[Network, ...]) -> tuple[Network, ...]:
    """Comma-separated CIDRs or addresses; unset means the default, empty means none."""
    if name not in env:
        return default
    networks = []
    for part in env[name].split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ConfigurationError(f"{name}: {part.strip()!r} is not a network") from None
    return tuple(networks)
