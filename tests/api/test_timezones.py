"""Timezones (contract §5.5): read-only, keyed by zone name, no links, no pagination, a
total-count that ignores filters, and the same list accounts accept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.contract import PREFIX, ResourceContract
from tests.conftest import JSONAPI, Api

TIMEZONES = f"{PREFIX}/timezones"
ACCOUNTS = f"{PREFIX}/accounts"


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def not_found(key: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "title": "Record not found",
                "detail": f"The record identified by {key} could not be found.",
                "code": "404",
                "status": "404",
            }
        ]
    }


class TestTimezones(ResourceContract):
    path = "timezones"
    type = "timezones"
    creatable = False
    paginated = False
    missing_id = "Mars"

    def make(self, api: Api) -> str:
        return "UTC"


_LISTED: list[str] = []


@pytest.fixture
def everything(api: Api) -> list[str]:
    """The full list, fetched once: it does not depend on the database's rows."""
    if not _LISTED:
        _LISTED.extend(names(api.get(TIMEZONES)))
    return _LISTED


# -- index ------------------------------------------------------------------------------------


def test_index_lists_every_zone_sorted_without_links(api: Api) -> None:
    response = api.get(TIMEZONES)

    assert response.status_code == 200
    document = response.json()
    assert list(document) == ["data", "meta"]
    listed = [item["id"] for item in document["data"]]
    assert listed == sorted(listed)
    assert len(listed) == len(set(listed)) > 300
    assert document["meta"] == {"total-count": len(listed)}
    assert {"UTC", "Europe/Kyiv", "America/Los_Angeles", "Africa/Abidjan"} <= set(listed)
    for item in document["data"]:
        assert item == {"id": item["id"], "type": "timezones", "attributes": {"name": item["id"]}}


def test_index_leaves_out_copies_and_non_zones(everything: list[str]) -> None:
    assert not [name for name in everything if name.startswith(("posix/", "right/"))]
    assert not {"localtime", "posixrules", "Factory", "Kyiv", "Mars/Base"} & set(everything)


@pytest.mark.parametrize(
    "params",
    [
        {"page[size]": "1"},
        {"page[number]": "2", "page[size]": "5"},
        {"page[number]": "0"},
        {"page[size]": "5000"},
        {"page": "3"},
    ],
)
def test_page_params_are_ignored(api: Api, everything: list[str], params: dict[str, str]) -> None:
    response = api.get(TIMEZONES, params=params)

    assert names(response) == everything
    assert "links" not in response.json()


@pytest.mark.parametrize("key", ["name", "id"])
def test_filter_by_names_keeps_total_count_of_all_zones(
    api: Api, everything: list[str], key: str
) -> None:
    response = api.get(TIMEZONES, params={f"filter[{key}]": "UTC,Europe/Kyiv"})

    assert names(response) == ["Europe/Kyiv", "UTC"]
    assert response.json()["meta"] == {"total-count": len(everything)}
    assert list(response.json()) == ["data", "meta"]


def test_filter_matching_nothing_still_counts_all_zones(api: Api, everything: list[str]) -> None:
    response = api.get(TIMEZONES, params={"filter[name]": "Mars/Base"})

    assert response.json() == {"data": [], "meta": {"total-count": len(everything)}}


def test_filter_is_exact(api: Api) -> None:
    assert names(api.get(TIMEZONES, params={"filter[name]": "Europe"})) == []
    assert names(api.get(TIMEZONES, params={"filter[name]": "utc"})) == []


@pytest.mark.parametrize("name", ["name_eq", "name_cont", "zone"])
def test_other_filters_are_102(api: Api, name: str) -> None:
    response = api.get(TIMEZONES, params={f"filter[{name}]": "UTC"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "102"


@pytest.mark.parametrize("sort", ["-name", "-id", "name", "id"])
def test_sort_is_validated_but_ignored(api: Api, everything: list[str], sort: str) -> None:
    assert names(api.get(TIMEZONES, params={"sort": sort})) == everything


def test_unknown_sort_is_114(api: Api) -> None:
    response = api.get(TIMEZONES, params={"sort": "foo"})

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "title": "Invalid sort criteria",
                "detail": "foo is not a valid sort criteria for timezones",
                "code": "114",
                "status": "400",
            }
        ]
    }


# -- show ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("UTC", "UTC"),
        ("Europe%2FKyiv", "Europe/Kyiv"),
        ("America%2FLos_Angeles", "America/Los_Angeles"),
    ],
)
def test_show_by_name(api: Api, path: str, name: str) -> None:
    response = api.get(f"{TIMEZONES}/{path}")

    assert response.status_code == 200
    assert response.json() == {
        "data": {"id": name, "type": "timezones", "attributes": {"name": name}}
    }


@pytest.mark.parametrize(
    ("path", "name"), [("Mars%2FBase", "Mars/Base"), ("Kyiv", "Kyiv"), ("posix%2FUTC", "posix/UTC")]
)
def test_show_unknown_name_is_404(api: Api, path: str, name: str) -> None:
    response = api.get(f"{TIMEZONES}/{path}")

    assert response.status_code == 404
    assert response.headers["content-type"] == JSONAPI
    assert response.json() == not_found(name)


def test_show_name_with_a_comma_is_103(api: Api) -> None:
    response = api.get(f"{TIMEZONES}/UTC,Europe%2FKyiv")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "title": "Invalid field value",
                "detail": "UTC,Europe/Kyiv is not a valid value for id.",
                "code": "103",
                "status": "400",
            }
        ]
    }


# -- read-only ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", TIMEZONES),
        ("PATCH", f"{TIMEZONES}/UTC"),
        ("PUT", f"{TIMEZONES}/UTC"),
        ("DELETE", f"{TIMEZONES}/UTC"),
        ("DELETE", f"{TIMEZONES}/Europe%2FKyiv"),
    ],
)
def test_writes_are_405(api: Api, method: str, path: str) -> None:
    body = None
    if method != "DELETE":
        body = {"data": {"type": "timezones", "id": "UTC", "attributes": {"name": "UTC"}}}

    response = api.request(method, path, json_body=body)

    assert response.status_code == 405
    assert response.headers["content-type"] == JSONAPI
    errors = response.json()["errors"]
    assert [(e["code"], e["status"]) for e in errors] == [("405", "405")]
    allowed = {verb.strip() for verb in response.headers["allow"].split(",")}
    assert "GET" in allowed
    assert not {"POST", "PATCH", "PUT", "DELETE"} & allowed


# -- the list is what accounts accept -----------------------------------------------------------


def test_listed_zones_are_accepted_as_account_timezone(
    api: Api, everything: list[str], make_account: Callable[..., dict[str, Any]]
) -> None:
    account = make_account()
    url = f"{ACCOUNTS}/{account['id']}"
    sample = [*everything[::10], everything[-1], "Europe/Kyiv"]

    for zone in sample:
        body = {"data": {"type": "accounts", "id": account["id"], "attributes": {"timezone": zone}}}
        response = api.patch(url, body)
        assert response.status_code == 200, (zone, response.text)
        assert response.json()["data"]["attributes"]["timezone"] == zone


def test_a_zone_not_listed_is_refused_as_account_timezone(
    api: Api, everything: list[str], make_account: Callable[..., dict[str, Any]]
) -> None:
    assert "Mars/Base" not in everything
    account = make_account()

    response = api.patch(
        f"{ACCOUNTS}/{account['id']}",
        {
            "data": {
                "type": "accounts",
                "id": account["id"],
                "attributes": {"timezone": "Mars/Base"},
            }
        },
    )

    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "title": "Mars/Base is not a valid timezone",
                "detail": "timezone - Mars/Base is not a valid timezone",
                "code": "100",
                "source": {"pointer": "/data/attributes/timezone"},
                "status": "422",
            }
        ]
    }
    shown = api.get(f"{ACCOUNTS}/{account['id']}").json()["data"]["attributes"]
    assert shown["timezone"] == "UTC"
