"""Event subscriptions' own rules: Standard Webhooks secrets (generated, and checked more
strictly than the `standardwebhooks` package reads them) and webhook URLs."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from accounts_api.domain.event_subscriptions import (
    EVENTS,
    check_secret,
    check_url,
    generate_secret,
    secret_key,
)
from accounts_api.domain.thresholds import Event
from accounts_api.domain.validation import Errors


def test_the_events_are_the_threshold_events() -> None:
    assert tuple(event.event_name for event in Event) == EVENTS


def test_a_generated_secret_carries_24_random_bytes() -> None:
    secret = generate_secret()

    key = secret_key(secret)
    assert key is not None and len(key) == 24
    assert secret == "whsec_" + base64.b64encode(key).decode()
    assert generate_secret() != secret


@pytest.mark.parametrize(
    "key",
    [bytes(16), bytes(range(17)), b"\xff" * 32, b"\xfb\xef" * 20],
    ids=["16-bytes", "17-bytes", "32-bytes", "plus-and-slash"],
)
@pytest.mark.parametrize("padded", [True, False])
def test_the_key_is_the_one_standard_webhooks_signs_with(key: bytes, padded: bool) -> None:
    encoded = base64.b64encode(key).decode()
    secret = "whsec_" + (encoded if padded else encoded.rstrip("="))

    assert secret_key(secret) == key
    now = datetime.now(UTC)
    assert Webhook(secret).sign("msg", now, "{}") == Webhook(key).sign("msg", now, "{}")


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        "whsec_" + base64.b64encode(bytes(15)).decode(),
        base64.b64encode(bytes(24)).decode(),
        "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 12).decode(),
        "whsec_" + "A" * 21,
        "whsec_" + "A" * 20 + "===",
        "whsec_ " + "A" * 24,
        "whsec_" + "A" * 24 + "\n",
        "whsec_" + "A" * 12 + "." + "A" * 12,
    ],
)
def test_secrets_that_are_refused(secret: str) -> None:
    errors = Errors()

    assert secret_key(secret) is None
    assert check_secret(errors, "secret", secret) is None
    assert list(errors.grouped()) == [("secret", "is invalid")]


def test_check_secret_leaves_null_to_the_caller() -> None:
    errors = Errors()

    assert check_secret(errors, "secret", None) is None
    assert not errors


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com",
        "https://hooks.example.com:8443/yeti?token=a%20b#frag",
        "https://user:pw@hooks.example.com/",
        "https://[2001:db8::1]:8443/",
        "http://10.0.0.1/",
    ],
)
def test_urls_that_are_taken(url: str) -> None:
    errors = Errors()

    assert check_url(errors, "url", url) == url
    assert not errors


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "is invalid"),
        ("hooks.example.com", "is invalid"),
        ("HTTP://hooks.example.com", "is invalid"),
        ("ftp://hooks.example.com", "is invalid"),
        ("http://", "is invalid"),
        ("http://:80/", "is invalid"),
        ("http://hooks.example.com:0/", "is invalid"),
        ("http://hooks.example.com:65536/", "is invalid"),
        ("http://hooks.example.com:x/", "is invalid"),
        ("http://[zz/", "is invalid"),
        ("http://hooks.example.com/a b", "is invalid"),
        ("http://hooks.example.com/\u00e9", "is invalid"),
        ("http://hooks.example.com/\x00", "must not contain null bytes"),
        (["http://a"], "must be a string"),
        ("http://a/" + "x" * 2048, "is too long (maximum is 2048 characters)"),
    ],
)
def test_urls_that_are_refused(url: Any, message: str) -> None:
    errors = Errors()

    assert check_url(errors, "url", url) is None
    assert list(errors.grouped()) == [("url", message)]
