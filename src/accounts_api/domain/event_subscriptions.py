"""Event subscriptions (contract §7, Yeti's notifications.event_subscriptions): who hears of an
event, by e-mail (`send_to` contacts) and by webhook (`url`, signed with `secret`).

A secret is a Standard Webhooks signing secret: `whsec_` and the base64 of the key. Its check
is strict where the `standardwebhooks` package is lenient: that package's base64 decoder skips
characters outside the alphabet, so `whsec_abc-def` would sign with another key than the one
the subscriber was given.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from accounts_api.domain.thresholds import EVENT_NAMES
from accounts_api.domain.validation import INVALID, Errors, check_string

EVENTS = tuple(EVENT_NAMES.values())
SECRET_PREFIX = "whsec_"
# the key a generated secret carries; a given one must carry at least MIN_SECRET_BYTES
SECRET_BYTES = 24
MIN_SECRET_BYTES = 16
MAX_URL_LENGTH = 2048

_BASE64 = re.compile(r"\A[A-Za-z0-9+/]+={0,2}\Z")
# no blanks or control characters anywhere in a URL a webhook is posted to
_URL_CHARACTERS = re.compile(r"\A[\x21-\x7e]+\Z")


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes | None:
    """The signing key a secret carries, None when it is not `whsec_` and the strict base64
    (padded or not) of at least MIN_SECRET_BYTES bytes."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    encoded = secret.removeprefix(SECRET_PREFIX)
    if not _BASE64.match(encoded):
        return None
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        return None
    return key if len(key) >= MIN_SECRET_BYTES else None


def check_secret(errors: Errors, key: str, raw: Any) -> str | None:
    secret = check_string(errors, key, raw)
    if secret is not None and secret_key(secret) is None:
        errors.add(key, INVALID)
        return None
    return secret


def check_url(errors: Errors, key: str, raw: Any) -> str | None:
    """An absolute http or https URL with a host, or None. The scheme is lower case, as the
    table's CHECK (`^https?://`) wants it."""
    url = check_string(errors, key, raw, max_length=MAX_URL_LENGTH)
    if url is None or key in errors:
        return None
    try:
        parts = urlsplit(url)
        # .port raises on a port that is not a number up to 65535
        valid = (
            url.startswith(("http://", "https://"))
            and _URL_CHARACTERS.match(url) is not None
            and bool(parts.hostname)
            and parts.port != 0
        )
    except ValueError:
        valid = False
    if not valid:
        errors.add(key, INVALID)
        return None
    return url
