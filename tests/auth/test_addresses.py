"""Client addresses (contract §1.4): `remote_ip` with the trusted proxies (loopback by default,
as Yeti; issue 6: configurable) and X-Forwarded-For read from the right, the allow-list with
CIDR and single addresses, and the audit IP (§4.5: X-Real-IP first).

Forwarded headers from an untrusted peer never get this far: proxies.TrustedProxies removes
them (tests/test_proxies.py)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from accounts_api.auth.addresses import (
    audit_ip,
    ip_allowed,
    is_trusted,
    parse_network,
    remote_ip,
)

LOOPBACK = (parse_network("127.0.0.1/32"), parse_network("::1/128"))


def request(peer: str | None, headers: dict[str, str] | None = None) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/api/rest/admin/accounts",
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
            "client": (peer, 50000) if peer is not None else None,
        }
    )


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("10.0.0.5", None, "10.0.0.5"),
        # an untrusted peer: X-Forwarded-For is ignored
        ("10.0.0.5", "1.2.3.4", "10.0.0.5"),
        ("192.168.0.1", "127.0.0.1", "192.168.0.1"),
        # a loopback peer: the first untrusted address from the right
        ("127.0.0.1", "1.2.3.4", "1.2.3.4"),
        ("127.0.0.1", "1.2.3.4, 5.6.7.8", "5.6.7.8"),
        ("127.0.0.1", "1.2.3.4, 127.0.0.1", "1.2.3.4"),
        ("127.0.0.1", "1.2.3.4,::1,127.0.0.1", "1.2.3.4"),
        ("::1", "2001:db8::1", "2001:db8::1"),
        ("::1", "10.9.8.7", "10.9.8.7"),
        # everything trusted: the address furthest away
        ("127.0.0.1", "127.0.0.1, ::1", "127.0.0.1"),
        ("::1", "::1", "::1"),
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", " 1.2.3.4 ,  ", "1.2.3.4"),
        # only addresses are candidates (Rails drops entries that do not parse)
        ("127.0.0.1", "1.2.3.4, unknown", "1.2.3.4"),
        ("127.0.0.1", "1.2.3.4, 10.0.0.0/8", "1.2.3.4"),
    ],
)
def test_remote_ip(peer: str, forwarded_for: str | None, expected: str) -> None:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    assert remote_ip(request(peer, headers), LOOPBACK) == expected


LOAD_BALANCERS = (parse_network("10.0.0.0/24"), parse_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # the configured proxies are skipped, loopback is not trusted any more
        ("10.0.0.7", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.7", "203.0.113.9, 10.0.0.8", "203.0.113.9"),
        ("fd00::1", "2001:db8::5, fd00::2", "2001:db8::5"),
        ("127.0.0.1", "203.0.113.9", "127.0.0.1"),
        ("10.0.0.7", "203.0.113.9, 127.0.0.1", "127.0.0.1"),
        ("10.0.1.7", "203.0.113.9", "10.0.1.7"),
    ],
)
def test_remote_ip_with_configured_proxies(peer: str, forwarded_for: str, expected: str) -> None:
    forwarded = request(peer, {"X-Forwarded-For": forwarded_for})

    assert remote_ip(forwarded, LOAD_BALANCERS) == expected


def test_remote_ip_without_trusted_proxies_is_the_peer() -> None:
    assert remote_ip(request("127.0.0.1", {"X-Forwarded-For": "1.2.3.4"}), ()) == "127.0.0.1"


def test_remote_ip_ignores_x_real_ip() -> None:
    assert remote_ip(request("127.0.0.1", {"X-Real-IP": "9.9.9.9"}), LOOPBACK) == "127.0.0.1"
    assert remote_ip(request("10.0.0.5", {"X-Real-IP": "9.9.9.9"}), LOOPBACK) == "10.0.0.5"


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # X-Real-IP reaches here only from a trusted proxy
        ("127.0.0.1", {"X-Real-IP": "9.9.9.9"}, "9.9.9.9"),
        ("127.0.0.1", {"X-Real-IP": " 2001:DB8::1 "}, "2001:db8::1"),
        ("127.0.0.1", {"X-Real-IP": "not an ip"}, "127.0.0.1"),
        ("10.0.0.5", {}, "10.0.0.5"),
        ("127.0.0.1", {"X-Forwarded-For": "1.2.3.4"}, "1.2.3.4"),
        (None, {}, None),
    ],
)
def test_audit_ip(peer: str | None, headers: dict[str, str], expected: str | None) -> None:
    assert audit_ip(request(peer, headers), LOOPBACK) == expected


@pytest.mark.parametrize(
    ("address", "trusted"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # a dual-stack socket's IPv4 peer
        ("127.0.0.2", False),
        ("10.0.0.5", False),
        ("testclient", False),
        ("", False),
    ],
)
def test_is_trusted(address: str, trusted: bool) -> None:
    assert is_trusted(address, LOOPBACK) is trusted


ALLOWED = [
    parse_network("10.0.0.0/8"),
    parse_network("127.0.0.1"),
    parse_network("2001:db8::/32"),
    parse_network(" 192.168.1.7/24 "),
    parse_network("fe80::1"),
]


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        ("10.1.2.3", True),
        ("10.255.255.255", True),
        ("11.0.0.1", False),
        ("127.0.0.1", True),
        ("127.0.0.2", False),
        ("192.168.1.200", True),
        ("192.168.2.1", False),
        ("2001:db8::5", True),
        ("2001:db8:ffff::1", True),
        ("2001:db9::1", False),
        ("fe80::1", True),
        ("fe80::2", False),
        ("::1", False),
        ("garbage", False),
        ("", False),
    ],
)
def test_ip_allowed(ip: str, allowed: bool) -> None:
    assert ip_allowed(ALLOWED, ip) is allowed


@pytest.mark.parametrize("allowed", [None, []])
def test_empty_allow_list_allows_everyone(allowed: list[object] | None) -> None:
    assert ip_allowed(allowed, "203.0.113.9")  # type: ignore[arg-type]
    assert ip_allowed(allowed, "2001:db8::1")  # type: ignore[arg-type]


def test_parse_network() -> None:
    assert str(parse_network("127.0.0.1")) == "127.0.0.1/32"
    assert str(parse_network("10.1.2.3/8")) == "10.0.0.0/8"
    assert str(parse_network("::1")) == "::1/128"
    with pytest.raises(ValueError):
        parse_network("not a network")
