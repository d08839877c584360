"""Content negotiation (contract §6.3) and the request's base URL for absolute links (§2.3)."""

from __future__ import annotations

from starlette.requests import Request

from accounts_api.jsonapi.errors import NotAcceptable, UnsupportedMediaType

MEDIA_TYPE = "application/vnd.api+json"


# Both parsers below read client input in one pass: the regular expressions Rails uses for
# them backtrack, and a header of a few kilobytes would hold the event loop for seconds.


def media_type(content_type: str) -> str:
    """The media type of a Content-Type, lower-cased: what precedes the first `;` or `,`
    with the blanks before it dropped (Rails splits on `/\\s*[;,]\\s*/`)."""
    cut = len(content_type)
    for separator in ";,":
        found = content_type.find(separator, 0, cut)
        if found >= 0:
            cut = found
    return content_type[:cut].rstrip().lower() if cut < len(content_type) else content_type.lower()


def accept_entries(accept: str) -> list[str]:
    """contract §6.3: the Accept header split as Ruby's `scan(/.+".+"[^,]*|[^,]+/)` splits
    it. The first alternative matches where at least two quotes lie ahead (with a character
    before the first and between them): it takes everything up to the last quote, then up
    to the next comma. Otherwise entries run from comma to comma. A header value holds no
    line break (the HTTP parser refuses them), so `.` matches every character here."""
    entries: list[str] = []
    last_quote = accept.rfind('"')
    # the quote the first alternative's `"` lands on, greedy: the last one before the
    # closing quote with at least one character between them
    opening_quote = accept.rfind('"', 0, last_quote - 1) if last_quote > 0 else -1
    position, length = 0, len(accept)
    while position < length:
        if opening_quote > position:
            comma = accept.find(",", last_quote + 1)
            end = length if comma < 0 else comma
        elif accept[position] == ",":
            position += 1
            continue
        else:
            comma = accept.find(",", position)
            end = length if comma < 0 else comma
        entries.append(accept[position:end])
        position = end
    return entries


def check_content_type(request: Request) -> None:
    """Writes only: the media type, parameters stripped and lower-cased, must be JSON:API."""
    found = media_type(request.headers.get("content-type", ""))
    if found != MEDIA_TYPE:
        raise UnsupportedMediaType(found)


def check_accept(request: Request) -> None:
    raw = request.headers.get("accept")
    if not raw or not raw.strip():
        return
    for entry in accept_entries(raw):
        entry = entry.strip()
        if entry == MEDIA_TYPE or entry.startswith("*/*"):
            return
    raise NotAcceptable(raw)


def base_url(request: Request) -> str:
    """scheme://host[:port], honouring X-Forwarded-Proto, -Host and -Port as Rails does."""
    headers = request.headers
    forwarded_proto = headers.get("x-forwarded-proto", "").split(",")[0].strip()
    proto = forwarded_proto or request.scope.get("scheme", "http")
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
