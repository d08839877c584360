"""Client addresses: the IP allow-list check (contract §1.4) and the audit IP (§4.3).

`X-Forwarded-For` and `X-Real-IP` reach these functions only from a trusted proxy:
proxies.TrustedProxies removes them from anyone else's requests.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from accounts_api.settings import Network


def is_trusted(address: str, proxies: Sequence[Network]) -> bool:
    """Whether `address` is one of the trusted proxies (ACCOUNTS_API_TRUSTED_PROXIES)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # a dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d
        ip = ip.ipv4_mapped
    return any(ip.version == network.version and ip in network for network in proxies)


def header(scope: Mapping[str, Any], name: bytes) -> str:
    """The first value of a request header (`name` lower-case), or "" (issue 10: without
    building Starlette's header object for one look)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def remote_ip(scope: Mapping[str, Any], trusted_proxies: Sequence[Network]) -> str:
    """The first untrusted address among the peer and X-Forwarded-For, read from the right
    (contract §1.4, with Yeti's loopback-only proxies as the default setting). `scope` is the
    ASGI scope, or a Starlette request (which reads as its scope)."""
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    forwarded = header(scope, b"x-forwarded-for")
    if not forwarded:
        # the peer is the only candidate: whatever it is, it is the answer (issue 10: the
        # access log and the authentication ask on every request; no address parsing)
        return peer
    candidates = [peer]
    candidates += [part.strip() for part in reversed(forwarded.split(",")) if part.strip()]
    addresses = [candidate for candidate in candidates if _address(candidate) is not None]
    for address in addresses:
        if not is_trusted(address, trusted_proxies):
            return address
    return addresses[-1] if addresses else peer


def audit_ip(scope: Mapping[str, Any], trusted_proxies: Sequence[Network]) -> str | None:
    """X-Real-IP when present, else the remote IP; None when neither is an address."""
    real = header(scope, b"x-real-ip").strip()
    return _address(real) or _address(remote_ip(scope, trusted_proxies))


@functools.lru_cache(maxsize=1024)
def _address(text: str) -> str | None:
    """The address `text` names, in canonical form, or None (cached: a client sends many
    requests from one address)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def ip_allowed(allowed: Sequence[Network] | None, ip: str) -> bool:
    """An empty or null list allows everyone; otherwise any entry must contain the address."""
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address.version == network.version and address in network for network in allowed)


def parse_network(text: str) -> Network:
    """A CIDR or a single address (`127.0.0.1` allows only itself)."""
    return ipaddress.ip_network(text.strip(), strict=False)
