"""Configuration from the environment (accounts_api/settings.py): issue 6's logins and tokens."""

from __future__ import annotations

import inspect
import ipaddress
import re
from pathlib import Path

import pytest

from accounts_api.settings import VARIABLES, ConfigurationError, Settings, Variable


def test_login_and_proxy_defaults() -> None:
    settings = Settings.from_env({})

    assert settings.login_concurrency == 2
    assert settings.login_queue == 32
    assert settings.login_max_failures == 10
    assert settings.login_failure_window == 15 * 60
    assert settings.trusted_proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_login_and_proxy_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ACCOUNTS_API_LOGIN_CONCURRENCY": "4",
            "ACCOUNTS_API_LOGIN_QUEUE": "0",
            "ACCOUNTS_API_LOGIN_MAX_FAILURES": "5",
            "ACCOUNTS_API_LOGIN_FAILURE_WINDOW": "60",
            "ACCOUNTS_API_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,fd00::/8",
        }
    )

    assert settings.login_concurrency == 4
    assert settings.login_queue == 0
    assert settings.login_max_failures == 5
    assert settings.login_failure_window == 60
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("fd00::/8"),
    )


def test_empty_trusted_proxies_trusts_nobody() -> None:
    assert Settings.from_env({"ACCOUNTS_API_TRUSTED_PROXIES": ""}).trusted_proxies == ()
    assert Settings.from_env({"ACCOUNTS_API_TRUSTED_PROXIES": " , "}).trusted_proxies == ()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ACCOUNTS_API_LOGIN_CONCURRENCY", "0", "ACCOUNTS_API_LOGIN_CONCURRENCY"),
        ("ACCOUNTS_API_LOGIN_CONCURRENCY", "two", "ACCOUNTS_API_LOGIN_CONCURRENCY"),
        ("ACCOUNTS_API_LOGIN_QUEUE", "-1", "ACCOUNTS_API_LOGIN_QUEUE"),
        ("ACCOUNTS_API_LOGIN_MAX_FAILURES", "0", "ACCOUNTS_API_LOGIN_MAX_FAILURES"),
        ("ACCOUNTS_API_LOGIN_FAILURE_WINDOW", "0", "ACCOUNTS_API_LOGIN_FAILURE_WINDOW"),
        ("ACCOUNTS_API_LOGIN_FAILURE_WINDOW", "1.5", "ACCOUNTS_API_LOGIN_FAILURE_WINDOW"),
        ("ACCOUNTS_API_TRUSTED_PROXIES", "10.0.0.0/8,nginx", "nginx"),
        ("ACCOUNTS_API_TRUSTED_PROXIES", "10.0.0.0/33", "10.0.0.0/33"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({variable: value})


# -- issue 7: notifications ----------------------------------------------------------------


def test_delivery_defaults() -> None:
    settings = Settings.from_env({})

    assert settings.deliver is True
    assert settings.delivery_retry_base == 5.0
    assert settings.delivery_timeout == 10.0
    assert settings.notification_log_days == 30


def test_settings_built_in_code_run_no_delivery() -> None:
    # the test apps build theirs so; only the service's own (from_env) delivers by default
    settings = Settings(
        database_url=None,
        data_dir=Path("var"),
        token_lifetime=None,
        pool_size=1,
        secret_key_env=None,
    )
    assert settings.deliver is False


def test_delivery_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ACCOUNTS_API_DELIVERY": "Off",
            "ACCOUNTS_API_DELIVERY_RETRY_BASE": "0.5",
            "ACCOUNTS_API_DELIVERY_TIMEOUT": "3",
            "ACCOUNTS_API_NOTIFICATION_LOG_DAYS": "90",
        }
    )

    assert settings.deliver is False
    assert settings.delivery_retry_base == 0.5
    assert settings.delivery_timeout == 3.0
    assert settings.notification_log_days == 90
    assert Settings.from_env({"ACCOUNTS_API_DELIVERY": "on"}).deliver is True


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ACCOUNTS_API_DELIVERY", "sometimes"),
        ("ACCOUNTS_API_DELIVERY_RETRY_BASE", "0"),
        ("ACCOUNTS_API_DELIVERY_TIMEOUT", "-1"),
        ("ACCOUNTS_API_NOTIFICATION_LOG_DAYS", "0"),
        ("ACCOUNTS_API_NOTIFICATION_LOG_DAYS", "1.5"),
    ],
)
def test_bad_delivery_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: value})


def test_a_delivery_timeout_must_leave_room_within_the_idle_in_transaction_timeout() -> None:
    # a send happens inside the transaction holding its claim
    assert Settings.from_env({"ACCOUNTS_API_DELIVERY_TIMEOUT": "30"}).delivery_timeout == 30
    with pytest.raises(ConfigurationError, match="ACCOUNTS_API_DELIVERY_TIMEOUT"):
        Settings.from_env({"ACCOUNTS_API_DELIVERY_TIMEOUT": "31"})
    with pytest.raises(ConfigurationError, match="ACCOUNTS_API_DELIVERY_TIMEOUT"):
        Settings.from_env({"ACCOUNTS_API_DB_IDLE_IN_TRANSACTION_TIMEOUT": "15"})


# --- one list of variables (issue 9) ------------------------------------------------------

SRC = Path(__file__).resolve().parent.parent / "src" / "accounts_api"
README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_variable_the_code_reads_is_listed() -> None:
    """`accounts-api --help` and README's table show VARIABLES: a variable read anywhere in
    the code must be in it, and nothing listed may be unread."""
    read = set()
    for module in SRC.rglob("*.py"):
        read |= set(
            re.findall(
                r'"(ACCOUNTS_API_[A-Z_]+|DATABASE_URL|PROMETHEUS_MULTIPROC_DIR)"',
                module.read_text(),
            )
        )
    assert read == {variable.name for variable in VARIABLES}


def test_readme_configuration_table_lists_the_same_variables() -> None:
    text = README.read_text()
    section = text[text.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE)
    assert rows == [variable.name for variable in VARIABLES]


def test_shutdown_timeout() -> None:
    assert Settings.from_env({}).shutdown_timeout == 30
    assert Settings.from_env({"ACCOUNTS_API_SHUTDOWN_TIMEOUT": "2.5"}).shutdown_timeout == 2.5
    with pytest.raises(ConfigurationError, match="ACCOUNTS_API_SHUTDOWN_TIMEOUT"):
        Settings.from_env({"ACCOUNTS_API_SHUTDOWN_TIMEOUT": "0"})


# what Settings.from_env reads (the rest: serve's own, or the metrics library's)
READ_BY_SETTINGS = set(
    re.findall(r'"((?:ACCOUNTS_API_[A-Z_]+)|DATABASE_URL)"', inspect.getsource(Settings.from_env))
)
# the defaults VARIABLES states as a value (the others describe what happens when unset)
LITERAL_DEFAULT = re.compile(r"[\w./:,-]+")


@pytest.mark.parametrize(
    "variable",
    [v for v in VARIABLES if LITERAL_DEFAULT.fullmatch(v.default) and v.name in READ_BY_SETTINGS],
    ids=lambda variable: variable.name,
)
def test_the_stated_default_is_the_default(variable: Variable) -> None:
    """`--help` and README state each default as text, apart from the code that applies it:
    setting a variable to its stated default changes nothing."""
    assert Settings.from_env({variable.name: variable.default}) == Settings.from_env({})
