"""Content negotiation (contract §6.3) and the base URL of absolute links (§2.3)."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from accounts_api.jsonapi.errors import NotAcceptable, UnsupportedMediaType
from accounts_api.jsonapi.negotiation import (
    accept_entries,
    base_url,
    check_accept,
    check_content_type,
    media_type,
)


def request(
    headers: list[tuple[str, str]],
    *,
    scheme: str = "http",
    server: tuple[str, int] = ("api.example.com", 80),
) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/api/rest/admin/accounts",
            "query_string": b"",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            "scheme": scheme,
            "server": server,
            "client": ("10.0.0.1", 50000),
        }
    )


# Accept


@pytest.mark.parametrize(
    "accept",
    [
        # the contract §6.3 table
        "application/vnd.api+json",
        "*/*",
        "application/json, */*",
        None,
        # absent or empty, any exact entry, any entry starting with */*
        "",
        "text/html, application/vnd.api+json",
        "application/vnd.api+json,text/html",
        "application/json;q=0.9, */*;q=0.8",
        '*/*; foo="a,b"',
    ],
)
def test_accept_accepted(accept: str | None) -> None:
    check_accept(request([] if accept is None else [("Accept", accept)]))


@pytest.mark.parametrize(
    "accept",
    [
        # the contract §6.3 table
        "application/json",
        "application/*",
        "application/vnd.api+json; charset=utf-8",
        "text/html",
        # parameters are never accepted, even quoted ones containing a comma
        'application/vnd.api+json; ext="a,b"',
        "application/vnd.api+json;q=1",
        "text/*, application/xml",
    ],
)
def test_accept_rejected_406(accept: str) -> None:
    with pytest.raises(NotAcceptable) as caught:
        check_accept(request([("Accept", accept)]))
    assert caught.value.as_dict() == {
        "title": "Not acceptable",
        "detail": "All requests must use the 'application/vnd.api+json' Accept without media type "
        f"parameters. This request specified '{accept}'.",
        "code": "406",
        "status": "406",
    }


# Content-Type


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.api+json",
        "application/vnd.api+json; charset=utf-8",
        "application/vnd.api+json;charset=utf-8",
        "Application/VND.API+JSON",
    ],
)
def test_content_type_accepted(content_type: str) -> None:
    check_content_type(request([("Content-Type", content_type)]))


@pytest.mark.parametrize(
    ("content_type", "media_type"),
    [
        (None, ""),
        ("application/json", "application/json"),
        ("application/json; charset=utf-8", "application/json"),
        ("Text/Plain ; charset=x", "text/plain"),
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
    ],
)
def test_content_type_rejected_415(content_type: str | None, media_type: str) -> None:
    headers = [] if content_type is None else [("Content-Type", content_type)]
    with pytest.raises(UnsupportedMediaType) as caught:
        check_content_type(request(headers))
    assert caught.value.as_dict() == {
        "title": "Unsupported media type",
        "detail": "All requests that create or update must use the 'application/vnd.api+json' "
        f"Content-Type. This request specified '{media_type}'.",
        "code": "415",
        "status": "415",
    }


# base URL


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("Host", "api.example.com")], "http://api.example.com"),
        ([("Host", "api.example.com:8080")], "http://api.example.com:8080"),
        ([("Host", "api.example.com:80")], "http://api.example.com"),
        ([("Host", "[::1]:8080")], "http://[::1]:8080"),
        ([("Host", "[::1]")], "http://[::1]"),
        ([("Host", "h"), ("X-Forwarded-Proto", "https")], "https://h"),
        ([("Host", "h:443"), ("X-Forwarded-Proto", "https")], "https://h"),
        ([("Host", "h:80"), ("X-Forwarded-Proto", "https")], "https://h:80"),
        ([("Host", "h"), ("X-Forwarded-Host", "api.example.com")], "http://api.example.com"),
        (
            [("Host", "h"), ("X-Forwarded-Host", "a.example, b.example:8443")],
            "http://b.example:8443",
        ),
        (
            [("Host", "h"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Port", "8443")],
            "https://h:8443",
        ),
        (
            [("Host", "h"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Port", "443")],
            "https://h",
        ),
        (
            [
                ("Host", "internal:6666"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "api.example.com"),
            ],
            "https://api.example.com",
        ),
    ],
)
def test_base_url(headers: list[tuple[str, str]], expected: str) -> None:
    assert base_url(request(headers)) == expected


def test_base_url_without_host_header_uses_the_server() -> None:
    assert base_url(request([], scheme="https", server=("srv", 8443))) == "https://srv:8443"
    assert base_url(request([], scheme="http", server=("srv", 80))) == "http://srv"


# Linear-time parsing: the same answers as the regular expressions Rails uses (contract
# §6.3), without their backtracking on hostile headers.

RUBY_ACCEPT_SCAN = re.compile(r'.+".+"[^,]*|[^,]+')
HEADER_TEXT = st.text(alphabet='a",; */+', max_size=24)


@given(HEADER_TEXT)
def test_accept_entries_split_as_the_contracts_expression_does(accept: str) -> None:
    assert accept_entries(accept) == RUBY_ACCEPT_SCAN.findall(accept)


@given(HEADER_TEXT)
def test_the_media_type_is_cut_as_the_contracts_expression_cuts_it(content_type: str) -> None:
    expected = re.split(r"\s*[;,]\s*", content_type, maxsplit=1)[0].lower()
    assert media_type(content_type) == expected


@pytest.mark.parametrize(
    ("parse", "hostile"),
    [
        (media_type, "a" + " " * 1_000_000 + "b"),
        (media_type, "a" + " " * 1_000_000 + ";"),
        (accept_entries, "a," * 500_000 + '"'),
        (accept_entries, '"a' * 500_000),
    ],
    ids=["spaces", "spaces-then-separator", "commas-then-quote", "quotes"],
)
def test_hostile_headers_of_a_megabyte_parse_in_one_pass(
    parse: Callable[[str], object], hostile: str
) -> None:
    # a backtracking parse of these runs for hours, one pass for milliseconds: the alarm
    # only turns a hang into a failure, its minute is no benchmark
    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the parse did not finish within a minute")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        parse(hostile)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
