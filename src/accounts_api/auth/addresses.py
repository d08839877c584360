"""Client addresses: the IP allow-list check (contract §1.4) and the audit IP (§4.3)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

# contract §1.4: only loopback proxies are trusted for X-Forwarded-For
TRUSTED_PROXIES = frozenset({"127.0.0.1", "::1"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def remote_ip(request: Request) -> str:
    """The first untrusted address among the peer and X-Forwarded-For, read from the right."""
    peer = request.client.host if request.client else ""
    candidates = [peer]
    forwarded = request.headers.get("x-forwarded-for", "")
    candidates += [part.strip() for part in reversed(forwarded.split(",")) if part.strip()]
    addresses = [candidate for candidate in candidates if _is_address(candidate)]
    for address in addresses:
        if address not in TRUSTED_PROXIES:
            return address
    return addresses[-1] if addresses else peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def audit_ip(request: Request) -> str | None:
    """X-Real-IP when present, else the remote IP; None when neither is an address."""
    for candidate in (request.headers.get("x-real-ip", "").strip(), remote_ip(request)):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
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
