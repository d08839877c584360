"""Configuration from the environment (accounts_api/settings.py): issue 6's logins and tokens."""

from __future__ import annotations

import ipaddress

import pytest

from accounts_api.settings import ConfigurationError, Settings


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
