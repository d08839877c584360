"""JSON:API responses: documents and error documents, `application/vnd.api+json`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from accounts_api.jsonapi.document import encode, encode_errors
from accounts_api.jsonapi.errors import JsonApiError
from accounts_api.jsonapi.negotiation import MEDIA_TYPE


def json_response(document: Mapping[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(encode(document), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def error_response(errors: list[JsonApiError], headers: dict[str, str] | None = None) -> Response:
    """The HTTP status is the first error's (contract §0.4), and so is Retry-After."""
    first = errors[0]
    if first.retry_after is not None:
        headers = {**(headers or {}), "retry-after": str(first.retry_after)}
    return Response(
        encode_errors(errors), status_code=first.status, media_type=MEDIA_TYPE, headers=headers
    )
