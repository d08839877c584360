"""Example pages in the manner of Yeti's own generated documentation ("Accounts API - update
values"): the exchanges a test makes through the real app, rendered to Markdown, one page per
example under docs/api/, with what varies between runs normalised so a page is byte-stable.

A test checks its page against the committed file; with ACCOUNTS_API_WRITE_EXAMPLES=1 it
writes the file instead."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2 as httpx

from tests.conftest import ROOT, Api

PAGES = ROOT / "docs" / "api"
WRITE = os.environ.get("ACCOUNTS_API_WRITE_EXAMPLES") == "1"
REGENERATE = "ACCOUNTS_API_WRITE_EXAMPLES=1 .venv/bin/python -m pytest tests/api/test_examples.py"

# what a reader of the page needs; the test client's own (host, user-agent, ...) say nothing
REQUEST_HEADERS = ("accept", "content-type", "authorization", "idempotency-key", "if-match")
RESPONSE_HEADERS = (
    "content-type",
    "etag",
    "cache-control",
    "location",
    "retry-after",
    "x-request-id",
    "x-runtime",
)
# headers whose values differ on every run: shown as placeholders
PLACEHOLDERS = {
    "authorization": "<token>",
    "x-request-id": "<request-id>",
    "x-runtime": "<runtime>",
}
# weak (of a body) or strong (of an account row: docs/compatibility.md)
ETAG = re.compile(r'(W/)?"[0-9a-f]{16,}"')
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?")
# RFC 9110's names, as Rack 3.2 sends them; Python before 3.13 names 422 otherwise
REASONS = {422: "Unprocessable Content", 413: "Content Too Large"}
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


@dataclasses.dataclass(frozen=True)
class Example:
    title: str
    description: str

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    @property
    def path(self) -> Path:
        return PAGES / f"{self.slug}.md"


class Catalogue:
    """The examples, declared once: each test records one, and the index lists them all
    whichever tests ran."""

    def __init__(self) -> None:
        self.examples: list[Example] = []

    def add(self, title: str, description: str) -> Example:
        example = Example(title, description)
        assert example.slug not in {known.slug for known in self.examples}, example.title
        self.examples.append(example)
        return example


class Normaliser:
    """Values that differ between runs, replaced by stable ones numbered in order of
    appearance on the page: the same ETag or uuid twice reads the same twice."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = {}

    def _stable(self, kind: str, value: str, make: Callable[[int], str]) -> str:
        seen = self.seen.setdefault(kind, {})
        return seen.setdefault(value, make(len(seen) + 1))

    def text(self, text: str) -> str:
        text = ETAG.sub(
            lambda m: self._stable("etag", m[0], lambda n: f'{m[1] or ""}"<etag {n}>"'), text
        )
        text = UUID.sub(
            lambda m: self._stable("uuid", m[0], lambda n: f"00000000-0000-4000-8000-{n:012d}"),
            text,
        )
        # one instant for every timestamp, in the format it came in
        text = TIMESTAMP.sub(lambda m: _same_shape(m[0], "2026-01-01T12:00:00.000000"), text)
        return SECRET.sub("whsec_<the generated secret, shown once>", text)

    def header(self, name: str, value: str) -> str:
        if name in PLACEHOLDERS:
            return PLACEHOLDERS[name]
        return self.text(value)


def _same_shape(value: str, instant: str) -> str:
    """`instant` cut to the length of `value`, with its date/time separator."""
    return instant[:10] + value[10] + instant[11 : len(value)]


def _json(content: bytes) -> str:
    return json.dumps(json.loads(content), indent=2, ensure_ascii=False)


def _body(content: bytes, content_type: str) -> list[str]:
    if not content:
        return []
    if "json" in content_type:
        try:
            return ["```json", _json(content), "```", ""]
        except ValueError:
            pass
    return ["```", content.decode(), "```", ""]


def render_exchange(response: httpx.Response, normaliser: Normaliser) -> list[str]:
    request = response.request
    url = urlsplit(str(request.url))
    route = url.path + (f"?{url.query}" if url.query else "")
    lines = [f"## {request.method} {url.path}", "", "### Request", "", "```http"]
    lines.append(f"{request.method} {route} HTTP/1.1")
    for name in REQUEST_HEADERS:
        if name in request.headers:
            lines.append(f"{name.title()}: {normaliser.header(name, request.headers[name])}")
    lines += ["```", ""]
    query = parse_qsl(url.query, keep_blank_values=True)
    if query:
        lines += ["Query parameters:", ""]
        lines += [f"- `{name}` = `{value}`" for name, value in query]
        lines.append("")
    lines += [normaliser.text(line) for line in _body(request.content, "json")]
    status = response.status_code
    reason = REASONS.get(status) or HTTPStatus(status).phrase
    lines += ["### Response", "", "```http", f"HTTP/1.1 {status} {reason}"]
    for name in RESPONSE_HEADERS:
        if name in response.headers:
            lines.append(f"{name}: {normaliser.header(name, response.headers[name])}")
    lines += ["```", ""]
    content_type = response.headers.get("content-type", "")
    lines += [normaliser.text(line) for line in _body(response.content, content_type)]
    return lines


def render_page(example: Example, responses: list[httpx.Response]) -> str:
    normaliser = Normaliser()
    lines = [f"# {example.title}", "", example.description, ""]
    for response in responses:
        lines += render_exchange(response, normaliser)
    lines.append(_GENERATED)
    return "\n".join(lines)


_GENERATED = (
    "<!-- Generated from tests/api/test_examples.py by the test suite's real exchanges;"
    f" do not edit. Regenerate: {REGENERATE} -->\n"
)


def render_index(catalogue: Catalogue) -> str:
    lines = [
        "# API examples",
        "",
        "Real exchanges with the API, recorded by the test suite (one page per example, in the",
        "manner of Yeti's generated documentation). Tokens, uuids, timestamps, ETags, request",
        "ids and runtimes are replaced by stable stand-ins; ids are those of a fresh database.",
        "",
    ]
    lines += [f"- [{e.title}]({e.slug}.md): {e.description}" for e in catalogue.examples]
    lines += ["", _GENERATED]
    return "\n".join(lines)


def check_or_write(path: Path, rendered: str) -> None:
    """Fail when the committed file is not what the test suite renders now; with
    ACCOUNTS_API_WRITE_EXAMPLES=1, write it."""
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != rendered:
            path.write_text(rendered)
        return
    committed = path.read_text() if path.exists() else ""
    if committed != rendered:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                f"{path.relative_to(ROOT)} (committed)",
                f"{path.relative_to(ROOT)} (rendered now)",
            )
        )
        raise AssertionError(
            f"{path.relative_to(ROOT)} is stale. Regenerate with:\n  {REGENERATE}\n"
            f"and commit the result.\n{diff[:4000]}"
        )


class RecordingApi(Api):
    """The test client, keeping each exchange for the page."""

    def __init__(self, api: Api, responses: list[httpx.Response]):
        super().__init__(api.client, api.token)
        self.responses = responses

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = super().request(method, path, **kwargs)
        self.responses.append(response)
        return response


@contextmanager
def recording(api: Api, example: Example) -> Iterator[RecordingApi]:
    """The requests made through the yielded client are the example's page; checked (or
    written) when the block ends without an error."""
    responses: list[httpx.Response] = []
    yield RecordingApi(api, responses)
    assert responses, f"{example.title}: no exchange recorded"
    check_or_write(example.path, render_page(example, responses))
