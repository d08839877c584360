"""uvicorn's httptools protocol with TCP_NODELAY (see serving.py) and a bounded request
head; a module of its own because it imports httptools."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from accounts_api.jsonapi.document import encode_errors
from accounts_api.jsonapi.errors import HeaderFieldsTooLarge, JsonApiError, UriTooLong
from accounts_api.jsonapi.negotiation import MEDIA_TYPE
from accounts_api.serving import no_delay
from accounts_api.settings import Settings

# the request line and header punctuation around the counted names and values
HEAD_SLACK = 1024


@cache
def _limits() -> tuple[int, int]:
    # workers are configured through the environment, as the app itself (cli.serve)
    settings = Settings.from_env()
    return settings.max_header_bytes, settings.max_query_bytes


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """Stops reading a request head once it outgrows the limits the app enforces exactly
    (request_bounds.py): llhttp buffers a header until its end, whatever its size."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_header_bytes, self.max_query_bytes = _limits()
        self.head_limit = self.max_header_bytes + self.max_query_bytes + HEAD_SLACK
        self.reading_head = True
        self.head_bytes = 0
        self.url_complete = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        # fed in slices no longer than the room left, so the head's end is seen in time
        while data and self.reading_head:
            room = self.head_limit - self.head_bytes
            if room <= 0:
                self._refuse()
                return
            piece, data = data[:room], data[room:]
            self.head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
        if data:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.url_complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.url_complete = True
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head, self.head_bytes = True, 0

    def _refuse(self) -> None:
        error: JsonApiError = (
            HeaderFieldsTooLarge(self.max_header_bytes)
            if self.url_complete
            else UriTooLong(self.max_query_bytes)
        )
        body = encode_errors([error])
        head = (
            f"HTTP/1.1 {error.status} {error.title}\r\n"
            f"content-type: {MEDIA_TYPE}\r\n"
            f"content-length: {len(body)}\r\n"
            "cache-control: no-cache\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()
