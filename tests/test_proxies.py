"""Forwarded headers count only from a trusted proxy (accounts_api/proxies.py, issue 6)."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from accounts_api.proxies import TrustedProxies

TRUSTED = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))

FORWARDED = [
    (b"x-forwarded-for", b"203.0.113.9"),
    (b"x-forwarded-host", b"evil.example"),
    (b"x-forwarded-proto", b"https"),
    (b"x-forwarded-port", b"8443"),
    (b"x-real-ip", b"203.0.113.9"),
    (b"forwarded", b"for=203.0.113.9;host=evil.example"),
]
OTHERS = [(b"host", b"api.example.com"), (b"authorization", b"token")]


def passed_on(scope: Scope) -> Scope:
    """The scope the wrapped app sees."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        pass

    asyncio.run(TrustedProxies(app, TRUSTED)(scope, receive, send))
    return seen[0]


def http(peer: Any, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "GET", "path": "/", "headers": headers, "client": peer}


@pytest.mark.parametrize(
    "peer",
    [("127.0.0.1", 50000), ("10.9.8.7", 50000), ("::ffff:10.1.1.1", 50000)],
    ids=["loopback", "network", "ipv4-mapped"],
)
def test_a_trusted_peer_keeps_its_forwarded_headers(peer: tuple[str, int]) -> None:
    assert passed_on(http(peer, FORWARDED + OTHERS))["headers"] == FORWARDED + OTHERS


@pytest.mark.parametrize(
    "peer",
    [("192.0.2.1", 50000), ("::1", 50000), ("testclient", 50000), None],
    ids=["address", "untrusted-loopback", "not-an-address", "no-peer"],
)
def test_an_untrusted_peer_loses_its_forwarded_headers(peer: tuple[str, int] | None) -> None:
    scope = http(peer, FORWARDED + OTHERS)

    seen = passed_on(scope)

    assert seen["headers"] == OTHERS
    # changed in place: the layers outside read what the router writes into this scope
    assert seen is scope


def test_forwarded_headers_are_matched_without_regard_to_case() -> None:
    shouted = [(b"X-Forwarded-Host", b"evil.example"), (b"X-Real-IP", b"203.0.113.9")]

    assert passed_on(http(("192.0.2.1", 1), shouted + OTHERS))["headers"] == OTHERS


def test_other_scopes_pass_untouched() -> None:
    lifespan: Scope = {"type": "lifespan"}

    assert passed_on(lifespan) is lifespan
