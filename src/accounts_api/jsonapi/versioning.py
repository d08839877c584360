"""Optimistic concurrency control: strong entity tags of records, and If-Match.

A versioned resource's single-record responses carry `ETag: "<tag>"`, a hash of the row as
stored (every attribute and relationship, not the links, so not the host). A write with
`If-Match` is refused with 412 unless the current row, read under its row lock, still has
one of the listed tags (or the list is `*`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec
from starlette.requests import Request

from accounts_api.jsonapi.errors import PreconditionFailed

_encoder = msgspec.json.Encoder(enc_hook=str)


def entity_tag(row: Iterable[Any]) -> str:
    digest = hashlib.sha256(_encoder.encode(list(row))).hexdigest()
    return f'"{digest[:32]}"'


def if_match(request: Request) -> list[str] | None:
    # several header lines of a list-valued field are one list (RFC 9110 §5.3)
    lines = request.headers.getlist("if-match")
    if not lines:
        return None
    return [tag.strip() for line in lines for tag in line.split(",") if tag.strip()]


def none_match(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `*`, or the same tag
    with or without `W/`, means the client has it."""
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def check_if_match(wanted: list[str], row: Iterable[Any]) -> None:
    """Strong comparison (RFC 9110 §13.1.1): a weak tag never matches."""
    if "*" in wanted:
        return
    if entity_tag(row) not in wanted:
        raise PreconditionFailed()
