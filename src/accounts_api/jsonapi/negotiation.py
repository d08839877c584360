"""Content negotiation (contract §6.3) and the request's base URL for absolute links (§2.3)."""

from __future__ import annotations

import re

from starlette.requests import Request

from accounts_api.jsonapi.errors import NotAcceptable, UnsupportedMediaType

MEDIA_TYPE = "application/vnd.api+json"

# contract §6.3: the Accept header is split on commas, quote-aware
_ACCEPT_ENTRY = re.compile(r'.+".+"[^,]*|[^,]+')


def check_content_type(request: Request) -> None:
    """Writes only: the media type, parameters stripped and lower-cased, must be JSON:API."""
    raw = request.headers.get("content-type", "")
    media_type = re.split(r"\s*[;,]\s*", raw, maxsplit=1)[0].lower() if raw else ""
    if media_type != MEDIA_TYPE:
        raise UnsupportedMediaType(media_type)


def check_accept(request: Request) -> None:
    raw = request.headers.get("accept")
    if not raw or not raw.strip():
        return
    for entry in _ACCEPT_ENTRY.findall(raw):
        entry = entry.strip()
        if entry == MEDIA_TYPE or entry.startswith("*/*"):
            return
    raise NotAcceptable(raw)


def base_url(request: Request) -> str:
    """scheme://host[:port], honouring X-Forwarded-Proto, -Host and -Port as Rails does."""
    headers = request.headers
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip() or request.url.scheme
    forwarded_host = headers.get("x-forwarded-host", "").split(",")[-1].strip()
    host = forwarded_host or headers.get("host") or request.url.netloc
    port: str | None = None
    if host.startswith("["):  # IPv6 literal
        bracket = host.find("]")
        host, rest = host[: bracket + 1], host[bracket + 1 :]
        port = rest[1:] if rest.startswith(":") else None
    elif ":" in host:
        host, port = host.rsplit(":", 1)
    forwarded_port = headers.get("x-forwarded-port", "").split(",")[0].strip()
    if forwarded_port:
        port = forwarded_port
    default_port = {"http": "80", "https": "443"}.get(proto)
    if port and port != default_port:
        return f"{proto}://{host}:{port}"
    return f"{proto}://{host}"
