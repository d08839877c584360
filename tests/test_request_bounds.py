"""Bounded request heads (issue 6): query strings past the limit answer 414, headers past it
431, both as JSON:API errors, before authentication or any database work."""

from __future__ import annotations

import pytest

from tests.conftest import Api

ACCOUNTS = "/api/rest/admin/accounts"
MAX_HEADER_BYTES = 32 * 1024
MAX_QUERY_BYTES = 16 * 1024


def error(status: int, title: str, detail: str) -> dict[str, object]:
    return {
        "errors": [{"title": title, "detail": detail, "code": str(status), "status": str(status)}]
    }


URI_TOO_LONG = error(414, "URI Too Long", "The query string exceeds the limit of 16384 bytes.")
HEADERS_TOO_LARGE = error(
    431, "Request Header Fields Too Large", "The request headers exceed the limit of 32768 bytes."
)


def query_of(length: int) -> str:
    prefix = "filter[name_cont]="
    return prefix + "a" * (length - len(prefix))


@pytest.mark.parametrize("auth", [True, False], ids=["authenticated", "anonymous"])
def test_a_query_string_past_the_limit_is_414(api: Api, auth: bool) -> None:
    response = api.get(f"{ACCOUNTS}?{query_of(MAX_QUERY_BYTES + 1)}", auth=auth)

    assert response.status_code == 414
    assert response.json() == URI_TOO_LONG
    assert response.headers["content-type"] == "application/vnd.api+json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]


def test_a_query_string_at_the_limit_is_served(api: Api) -> None:
    response = api.get(f"{ACCOUNTS}?{query_of(MAX_QUERY_BYTES)}")

    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


@pytest.mark.parametrize("auth", [True, False], ids=["authenticated", "anonymous"])
def test_headers_past_the_limit_are_431(api: Api, auth: bool) -> None:
    response = api.get(ACCOUNTS, headers={"X-Padding": "a" * MAX_HEADER_BYTES}, auth=auth)

    assert response.status_code == 431
    assert response.json() == HEADERS_TOO_LARGE


def test_headers_well_under_the_limit_are_served(api: Api) -> None:
    response = api.get(ACCOUNTS, headers={"X-Padding": "a" * (MAX_HEADER_BYTES - 1024)})

    assert response.status_code == 200, response.text


def test_many_small_headers_add_up(api: Api) -> None:
    padding = {f"X-Padding-{index}": "a" * 100 for index in range(400)}

    response = api.get(ACCOUNTS, headers=padding)

    assert response.status_code == 431
    assert response.json() == HEADERS_TOO_LARGE
