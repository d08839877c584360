"""Invoice templates (contract §5.4): routed at the singular `invoice-template`, typed
`invoice-templates`, linked (as Yeti links them) at the plural path, which we serve too."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import account_body
from tests.api.contract import PREFIX, ResourceContract, ids
from tests.conftest import BASE_URL, Api, Db

SINGULAR = f"{PREFIX}/invoice-template"
PLURAL = f"{PREFIX}/invoice-templates"
LINKED = f"{BASE_URL}{PLURAL}"
ACCOUNTS = f"{PREFIX}/accounts"


def template_body(**attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "invoice-templates",
            "attributes": {"name": "default", "html-template": "<p>{{ total }}</p>", **attributes},
        }
    }


def error(attribute: str, message: str) -> dict[str, Any]:
    return {
        "title": message,
        "detail": f"{attribute} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/attributes/{attribute}"},
        "status": "422",
    }


def template_in(db: Db, name: str, html: str = "<p>x</p>") -> int:
    return int(
        db.fetchval(
            "INSERT INTO invoice_templates (name, html_template) VALUES ($1, $2) RETURNING id",
            name,
            html,
        )
    )


def stored(db: Db, key: int) -> tuple[Any, ...] | None:
    row = db.fetchrow("SELECT name, html_template FROM invoice_templates WHERE id = $1", key)
    return None if row is None else tuple(row)


class TestInvoiceTemplates(ResourceContract):
    path = "invoice-template"
    type = "invoice-templates"

    def create_body(self) -> dict[str, Any]:
        return template_body()

    def make(self, api: Api) -> str:
        response = api.post(self.collection, template_body(name="made"))
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])


class TestInvoiceTemplatesPluralPath(TestInvoiceTemplates):
    path = "invoice-templates"


# -- shape and links ---------------------------------------------------------------------


@pytest.mark.parametrize("base", [SINGULAR, PLURAL])
def test_show_links_to_the_plural_path(api: Api, db: Db, base: str) -> None:
    key = template_in(db, "monthly", "<b>&</b>")

    response = api.get(f"{base}/{key}")

    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "id": str(key),
            "type": "invoice-templates",
            "links": {"self": f"{LINKED}/{key}"},
            "attributes": {"name": "monthly", "html-template": "<b>&</b>"},
        }
    }
    # success bodies are not HTML-escaped (contract §0.3)
    assert b'"html-template":"<b>&</b>"' in response.content


def test_create_answers_201_with_the_linked_location(api: Api, db: Db) -> None:
    response = api.post(SINGULAR, template_body(name="monthly"))

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["type"] == "invoice-templates"
    assert data["links"] == {"self": f"{LINKED}/{data['id']}"}
    assert response.headers["location"] == f"{LINKED}/{data['id']}"
    assert data["attributes"] == {"name": "monthly", "html-template": "<p>{{ total }}</p>"}
    assert stored(db, int(data["id"])) == ("monthly", "<p>{{ total }}</p>")


@pytest.mark.parametrize("base", [SINGULAR, PLURAL])
def test_pagination_links_use_the_plural_path(api: Api, db: Db, base: str) -> None:
    keys = [template_in(db, f"t{i}") for i in range(3)]

    response = api.get(
        base, params={"page[number]": "2", "page[size]": "1", "filter[name_start]": "t"}
    )

    assert ids(response) == [keys[1]]
    document = response.json()
    assert document["meta"] == {"total-count": 3}

    def page(number: int) -> str:
        return f"{LINKED}?filter%5Bname_start%5D=t&page%5Bnumber%5D={number}&page%5Bsize%5D=1"

    assert document["links"] == {
        "first": page(1),
        "prev": page(1),
        "next": page(3),
        "last": page(3),
    }


def test_wrong_type_spelling_on_create_is_101(api: Api) -> None:
    body = template_body()
    body["data"]["type"] = "invoice-template"

    response = api.post(SINGULAR, body)

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "title": "Invalid resource",
                "detail": "invoice-template is not a valid resource.",
                "code": "101",
                "status": "400",
            }
        ]
    }


# -- update and delete ----------------------------------------------------------------------


@pytest.mark.parametrize("base", [SINGULAR, PLURAL])
def test_update_changes_the_given_attributes(api: Api, db: Db, base: str) -> None:
    key = template_in(db, "monthly", "<p>old</p>")

    response = api.patch(
        f"{base}/{key}",
        {
            "data": {
                "type": "invoice-templates",
                "id": str(key),
                "attributes": {"html-template": "<p>new</p>"},
            }
        },
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {
        "name": "monthly",
        "html-template": "<p>new</p>",
    }
    assert stored(db, key) == ("monthly", "<p>new</p>")


def test_delete_leaves_accounts_with_the_dangling_template(
    api: Api, db: Db, contractor_id: int
) -> None:
    key = template_in(db, "monthly")
    linkage = {"type": "invoice-templates", "id": str(key)}
    body = account_body(contractor_id)
    body["data"]["relationships"]["invoice-template"] = {"data": linkage}
    created = api.post(ACCOUNTS, body)
    assert created.status_code == 201, created.text
    account = created.json()["data"]["id"]

    response = api.delete(f"{SINGULAR}/{key}")

    assert response.status_code == 204
    assert response.content == b""
    assert stored(db, key) is None
    assert api.get(f"{SINGULAR}/{key}").status_code == 404
    assert (
        db.fetchval("SELECT invoice_template_id FROM accounts WHERE id = $1", int(account)) == key
    )
    shown = api.get(f"{ACCOUNTS}/{account}").json()["data"]
    assert shown["relationships"]["invoice-template"]["data"] == linkage


def test_delete_on_the_plural_path(api: Api, db: Db) -> None:
    key = template_in(db, "monthly")

    assert api.delete(f"{PLURAL}/{key}").status_code == 204
    assert stored(db, key) is None


# -- validations ------------------------------------------------------------------------------


def test_empty_attributes_report_name_then_html_template(api: Api, db: Db) -> None:
    response = api.post(SINGULAR, {"data": {"type": "invoice-templates", "attributes": {}}})

    assert response.status_code == 422
    assert response.json() == {
        "errors": [error("name", "can't be blank"), error("html-template", "can't be blank")]
    }
    assert db.fetchval("SELECT count(*) FROM invoice_templates") == 0


@pytest.mark.parametrize(
    ("attributes", "errors"),
    [
        ({"name": ""}, [("name", "can't be blank")]),
        ({"name": "  "}, [("name", "can't be blank")]),
        ({"name": None}, [("name", "can't be blank")]),
        ({"html-template": ""}, [("html-template", "can't be blank")]),
        ({"html-template": None}, [("html-template", "can't be blank")]),
        ({"html-template": " \n "}, [("html-template", "can't be blank")]),
        ({"name": "taken"}, [("name", "has already been taken")]),
    ],
)
def test_invalid_create_is_422(
    api: Api, db: Db, attributes: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    template_in(db, "taken")

    response = api.post(SINGULAR, template_body(**attributes))

    assert response.status_code == 422
    assert response.json() == {"errors": [error(key, message) for key, message in errors]}
    assert db.fetchval("SELECT count(*) FROM invoice_templates") == 1


@pytest.mark.parametrize(
    ("attributes", "errors"),
    [
        ({"name": "taken"}, [("name", "has already been taken")]),
        ({"name": ""}, [("name", "can't be blank")]),
        ({"html-template": ""}, [("html-template", "can't be blank")]),
    ],
)
def test_invalid_update_is_422(
    api: Api, db: Db, attributes: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    template_in(db, "taken")
    key = template_in(db, "mine", "<p>mine</p>")

    response = api.patch(
        f"{SINGULAR}/{key}",
        {"data": {"type": "invoice-templates", "id": str(key), "attributes": attributes}},
    )

    assert response.status_code == 422
    assert response.json() == {"errors": [error(k, message) for k, message in errors]}
    assert stored(db, key) == ("mine", "<p>mine</p>")


def test_own_name_is_not_taken_on_update(api: Api, db: Db) -> None:
    key = template_in(db, "mine")

    response = api.patch(
        f"{SINGULAR}/{key}",
        {"data": {"type": "invoice-templates", "id": str(key), "attributes": {"name": "mine"}}},
    )

    assert response.status_code == 200, response.text


# -- filters and sorting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("name_eq", "beta", [1]),
        ("name_not_eq", "beta", [0, 2]),
        ("name_cont", "ET", [1]),
        ("name_start", "g", [2]),
        ("name_end", "a", [0, 1, 2]),
        ("name_in", "alpha,gamma", [0, 2]),
        ("name_not_in", "alpha", [1, 2]),
        ("name_cont_any", "lph,amm", [0, 2]),
    ],
)
def test_name_filters(api: Api, db: Db, name: str, value: str, expected: list[int]) -> None:
    made = [template_in(db, n) for n in ("alpha", "beta", "gamma")]

    assert ids(api.get(SINGULAR, params={f"filter[{name}]": value})) == [made[i] for i in expected]


def test_html_template_is_not_filterable(api: Api) -> None:
    response = api.get(SINGULAR, params={"filter[html_template_cont]": "x"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "102"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [("-id", [2, 1, 0]), ("name", [1, 2, 0]), ("-name", [0, 2, 1]), ("html-template", [2, 0, 1])],
)
def test_sort(api: Api, db: Db, sort: str, expected: list[int]) -> None:
    made = [template_in(db, "c", "<b>"), template_in(db, "a", "<c>"), template_in(db, "b", "<a>")]

    assert ids(api.get(SINGULAR, params={"sort": sort})) == [made[i] for i in expected]
