"""What every resource must do, inherited by each resource's test class (NetBox style).

A subclass sets `path` (URL segment), `type`, `creatable` (whether POST is routed) and
implements `make(api)` returning the id of a fresh record, and `valid_attributes()` for a
create body. The API fixture validates every document against the JSON:API schema.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from tests.conftest import BASE_URL, JSONAPI, Api

PREFIX = "/api/rest/admin"


def ids(response: Any) -> list[int]:
    """The ids of a 200 collection document, in order."""
    assert response.status_code == 200, response.text
    return [int(item["id"]) for item in response.json()["data"]]


class ResourceContract:
    path: ClassVar[str]
    type: ClassVar[str]
    creatable: ClassVar[bool] = True
    paginated: ClassVar[bool] = True
    missing_id: ClassVar[str] = "999999"

    def make(self, api: Api) -> str:
        raise NotImplementedError

    def create_body(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def collection(self) -> str:
        return f"{PREFIX}/{self.path}"

    def member(self, key: str) -> str:
        return f"{PREFIX}/{self.path}/{key}"

    def test_index_requires_authentication(self, api: Api) -> None:
        response = api.get(self.collection, auth=False)
        assert response.status_code == 401
        assert response.json()["errors"][0]["status"] == "401"

    def test_show_requires_authentication(self, api: Api) -> None:
        key = self.make(api)
        response = api.get(self.member(key), auth=False)
        assert response.status_code == 401

    def test_invalid_token_is_rejected(self, api: Api) -> None:
        response = api.get(self.collection, headers={"Authorization": "invalid"})
        assert response.status_code == 401

    def test_show_missing_record_is_404_with_contract_body(self, api: Api) -> None:
        response = api.get(self.member(self.missing_id))
        assert response.status_code == 404
        assert response.headers["content-type"] == JSONAPI
        assert response.json() == {
            "errors": [
                {
                    "title": "Record not found",
                    "detail": f"The record identified by {self.missing_id} could not be found.",
                    "code": "404",
                    "status": "404",
                }
            ]
        }

    def test_show_renders_the_record(self, api: Api) -> None:
        key = self.make(api)
        response = api.get(self.member(key))
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["id"] == key
        assert data["type"] == self.type

    def test_index_lists_only_this_type(self, api: Api) -> None:
        self.make(api)
        response = api.get(self.collection)
        assert response.status_code == 200
        document = response.json()
        assert document["data"], "the record made should be listed"
        assert {item["type"] for item in document["data"]} == {self.type}
        assert document["meta"]["total-count"] >= 1
        if self.paginated:
            assert list(document["links"]) == ["first", "last"]
            assert document["links"]["first"].startswith(BASE_URL)

    def test_unknown_filter_is_400(self, api: Api) -> None:
        response = api.get(self.collection, params={"filter[no_such_thing]": "1"})
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {
                "title": "Filter not allowed",
                "detail": "no_such_thing is not allowed.",
                "code": "102",
                "status": "400",
            }
        ]

    def test_unknown_sort_is_400(self, api: Api) -> None:
        response = api.get(self.collection, params={"sort": "no-such-field"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "114"

    def test_create_is_405_when_not_creatable(self, api: Api) -> None:
        if self.creatable:
            pytest.skip(f"{self.type} can be created")
        response = api.post(self.collection, {"data": {"type": self.type, "attributes": {}}})
        assert response.status_code == 405
        assert "POST" not in response.headers["allow"]

    def test_unknown_attribute_on_create_is_400(self, api: Api) -> None:
        if not self.creatable:
            pytest.skip(f"{self.type} cannot be created")
        body = self.create_body()
        body["data"]["attributes"]["no-such-attribute"] = 1
        response = api.post(self.collection, body)
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {
                "title": "Param not allowed",
                "detail": "no-such-attribute is not allowed.",
                "code": "105",
                "status": "400",
            }
        ]

    def test_create_answers_201_with_location(self, api: Api) -> None:
        if not self.creatable:
            pytest.skip(f"{self.type} cannot be created")
        response = api.post(self.collection, self.create_body())
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        assert data["type"] == self.type
        if "links" in data:
            assert response.headers["location"] == data["links"]["self"]

    def test_links_and_meta_on_create_are_ignored(self, api: Api) -> None:
        # issue 8: JSON:API 1.0 allows both in a resource object; Yeti answers 105
        if not self.creatable:
            pytest.skip(f"{self.type} cannot be created")
        body = self.create_body()
        body["data"]["links"] = {"self": "http://elsewhere.example/x"}
        body["data"]["meta"] = {"client": "jsona"}
        response = api.post(self.collection, body)
        assert response.status_code == 201, response.text
        links = response.json()["data"].get("links")
        if links is not None:
            assert links["self"].startswith(BASE_URL)

    def test_wrong_type_on_create_is_400(self, api: Api) -> None:
        if not self.creatable:
            pytest.skip(f"{self.type} cannot be created")
        body = self.create_body()
        body["data"]["type"] = "nonsense"
        response = api.post(self.collection, body)
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "101"
