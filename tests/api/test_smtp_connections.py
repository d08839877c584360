"""SMTP connections (contract §5.1, "SMTP connection resource"): full CRUD as in Yeti, with a
write-only `auth-password` (Yeti shows it in clear text; docs/compatibility.md), Yeti's
validations, filters, sorting, and the delete refused while a contractor uses the connection."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.contract import PREFIX, ResourceContract, ids
from tests.conftest import BASE_URL, Api, Db, QueryLog

SMTP = f"{PREFIX}/smtp-connections"
CONTRACTORS = f"{PREFIX}/contractors"
PASSWORD = "s3cret-smtp-password"
ATTRIBUTES = ["name", "host", "port", "from-address", "auth-user", "global"]


def smtp_body(**attributes: Any) -> dict[str, Any]:
    values = {"name": "mail", "host": "smtp.example.com", "from-address": "billing@example.com"}
    return {"data": {"type": "smtp-connections", "attributes": {**values, **attributes}}}


def update_body(key: object, **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "smtp-connections", "id": str(key), "attributes": attributes}}


def error(attribute: str, message: str) -> dict[str, Any]:
    return {
        "title": message,
        "detail": f"{attribute} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/attributes/{attribute}"},
        "status": "422",
    }


def created(api: Api, **attributes: Any) -> str:
    response = api.post(SMTP, smtp_body(**attributes))
    assert response.status_code == 201, response.text
    key: str = response.json()["data"]["id"]
    return key


class TestSmtpConnections(ResourceContract):
    path = "smtp-connections"
    type = "smtp-connections"

    def create_body(self) -> dict[str, Any]:
        return smtp_body(**{"auth-password": PASSWORD})

    def make(self, api: Api) -> str:
        return created(api, name="made", **{"auth-password": PASSWORD})


# -- create and shape -----------------------------------------------------------------------


def test_create_stores_everything_and_renders_all_but_the_password(api: Api, db: Db) -> None:
    response = api.post(
        SMTP, smtp_body(port=587, **{"auth-user": "billing", "auth-password": PASSWORD})
    )

    assert response.status_code == 201, response.text
    key = response.json()["data"]["id"]
    own = f"{BASE_URL}{SMTP}/{key}"
    assert response.headers["location"] == own
    assert response.json() == {
        "data": {
            "id": key,
            "type": "smtp-connections",
            "links": {"self": own},
            "attributes": {
                "name": "mail",
                "host": "smtp.example.com",
                "port": 587,
                "from-address": "billing@example.com",
                "auth-user": "billing",
                "global": True,
            },
        }
    }
    assert list(response.json()["data"]["attributes"]) == ATTRIBUTES
    row = db.fetchrow("SELECT * FROM smtp_connections WHERE id = $1", int(key))
    assert row is not None
    assert (row["port"], row["auth_user"], row["auth_password"], row["global"]) == (
        587,
        "billing",
        PASSWORD,
        True,
    )


def test_create_defaults_port_25_and_global(api: Api, db: Db) -> None:
    key = created(api)

    attributes = api.get(f"{SMTP}/{key}").json()["data"]["attributes"]

    assert (attributes["port"], attributes["global"], attributes["auth-user"]) == (25, True, None)
    assert db.fetchval("SELECT auth_password FROM smtp_connections") is None


def test_numbers_and_booleans_as_strings_are_cast(api: Api) -> None:
    key = created(api, port="2525", **{"global": "false"})

    attributes = api.get(f"{SMTP}/{key}").json()["data"]["attributes"]

    assert (attributes["port"], attributes["global"]) == (2525, False)


# -- the password is write-only ----------------------------------------------------------------


@pytest.fixture
def linked(api: Api, db: Db, contractor_id: int) -> str:
    """A connection with a password, used by a contractor."""
    key = created(api, **{"auth-user": "billing", "auth-password": PASSWORD})
    db.execute(
        "UPDATE contractors SET smtp_connection_id = $1 WHERE id = $2", int(key), contractor_id
    )
    return key


def test_the_password_is_in_no_answer(api: Api, linked: str, contractor_id: int) -> None:
    answers = {
        "show": api.get(f"{SMTP}/{linked}"),
        "index": api.get(SMTP),
        "filtered index": api.get(SMTP, params={"filter[name]": "mail"}),
        "contractor include": api.get(
            f"{CONTRACTORS}/{contractor_id}", params={"include": "smtp-connection"}
        ),
        "contractors index include": api.get(CONTRACTORS, params={"include": "smtp-connection"}),
        "contractor related": api.get(f"{CONTRACTORS}/{contractor_id}/smtp-connection"),
        "update": api.patch(f"{SMTP}/{linked}", update_body(linked, host="smtp2.example.com")),
        "password update": api.patch(
            f"{SMTP}/{linked}", update_body(linked, **{"auth-password": "new-" + PASSWORD})
        ),
    }

    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        assert PASSWORD not in response.text, name
        assert "auth-password" not in response.text, name
    included = answers["contractor include"].json()["included"]
    assert [(item["type"], list(item["attributes"])) for item in included] == [
        ("smtp-connections", ATTRIBUTES)
    ]


def test_the_password_is_never_read_from_the_database(
    api: Api, linked: str, contractor_id: int, query_log: QueryLog
) -> None:
    query_log.reset()

    api.get(f"{SMTP}/{linked}")
    api.get(SMTP)
    api.get(CONTRACTORS, params={"include": "smtp-connection"})

    assert query_log.queries
    assert not [sql for sql in query_log.queries if "auth_password" in sql]


def test_the_password_is_no_field_sort_or_filter(api: Api, linked: str) -> None:
    field = api.get(SMTP, params={"fields[smtp-connections]": "name,auth-password"})
    sort = api.get(SMTP, params={"sort": "auth-password"})
    filtered = api.get(SMTP, params={"filter[auth_password_eq]": PASSWORD})

    assert field.status_code == 400
    assert field.json()["errors"][0]["detail"] == (
        "auth-password is not a valid field for smtp-connections."
    )
    assert sort.status_code == 400
    assert sort.json()["errors"][0]["code"] == "114"
    assert filtered.status_code == 400
    assert filtered.json()["errors"][0]["detail"] == "auth_password_eq is not allowed."


def test_update_replaces_and_clears_the_password(api: Api, db: Db, linked: str) -> None:
    replaced = api.put(f"{SMTP}/{linked}", update_body(linked, **{"auth-password": "other"}))
    assert replaced.status_code == 200, replaced.text
    assert db.fetchval("SELECT auth_password FROM smtp_connections") == "other"

    cleared = api.patch(f"{SMTP}/{linked}", update_body(linked, **{"auth-password": None}))
    assert cleared.status_code == 200, cleared.text
    assert db.fetchval("SELECT auth_password FROM smtp_connections") is None


# -- update and delete --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_changes_only_given_attributes(api: Api, db: Db, method: str) -> None:
    key = created(api, port=465, **{"auth-user": "billing", "auth-password": PASSWORD})

    response = api.request(
        method,
        f"{SMTP}/{key}",
        json_body=update_body(key, name="renamed", **{"global": False, "from-address": "a@b.io"}),
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"] == {
        "name": "renamed",
        "host": "smtp.example.com",
        "port": 465,
        "from-address": "a@b.io",
        "auth-user": "billing",
        "global": False,
    }
    assert db.fetchval("SELECT auth_password FROM smtp_connections") == PASSWORD


def test_delete_answers_204_and_removes_the_connection(api: Api, db: Db) -> None:
    key = created(api)

    response = api.delete(f"{SMTP}/{key}")

    assert response.status_code == 204
    assert response.content == b""
    assert db.fetchval("SELECT count(*) FROM smtp_connections") == 0
    assert api.get(f"{SMTP}/{key}").status_code == 404


def test_delete_while_a_contractor_uses_it_is_422(
    api: Api, db: Db, linked: str, contractor_id: int
) -> None:
    response = api.delete(f"{SMTP}/{linked}")

    message = "Cannot delete record because dependent contractors exist"
    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "title": message,
                "detail": message,
                "code": "100",
                "source": {"pointer": "/data"},
                "status": "422",
            }
        ]
    }
    assert db.fetchval("SELECT count(*) FROM smtp_connections") == 1
    assert db.fetchval(
        "SELECT smtp_connection_id FROM contractors WHERE id = $1", contractor_id
    ) == int(linked)


def test_delete_once_the_contractor_lets_go(api: Api, linked: str, contractor_id: int) -> None:
    released = api.delete(f"{CONTRACTORS}/{contractor_id}/relationships/smtp-connection")
    assert released.status_code == 204

    assert api.delete(f"{SMTP}/{linked}").status_code == 204


def test_delete_of_a_missing_connection_is_404(api: Api) -> None:
    assert api.delete(f"{SMTP}/999999").status_code == 404


# -- validations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", None])
def test_blank_name_is_422(api: Api, db: Db, name: str | None) -> None:
    response = api.post(SMTP, smtp_body(name=name))

    assert response.status_code == 422
    assert response.json() == {"errors": [error("name", "can't be blank")]}
    assert db.fetchval("SELECT count(*) FROM smtp_connections") == 0


def test_taken_name_is_422_on_create_and_update(api: Api, db: Db) -> None:
    created(api, name="first")
    second = created(api, name="second")

    on_create = api.post(SMTP, smtp_body(name="first"))
    on_update = api.patch(f"{SMTP}/{second}", update_body(second, name="first"))

    for response in (on_create, on_update):
        assert response.status_code == 422
        assert response.json() == {"errors": [error("name", "has already been taken")]}
    assert sorted(r["name"] for r in db.fetch("SELECT name FROM smtp_connections")) == [
        "first",
        "second",
    ]


def test_an_update_keeping_its_own_name_is_no_conflict(api: Api) -> None:
    key = created(api, name="same")

    response = api.patch(f"{SMTP}/{key}", update_body(key, name="same", port=26))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("port", "message"),
    [
        (None, "can't be blank"),
        ("abc", "is not a number"),
        (25.5, "must be an integer"),
        (0, "must be greater than or equal to 1"),
        (-25, "must be greater than or equal to 1"),
        (65536, "must be less than or equal to 65535"),
        (2**70, "must be less than or equal to 65535"),
        ("1" * 5000, "is out of range"),
        (True, "is not a number"),
    ],
)
def test_bad_port_is_422(api: Api, db: Db, port: Any, message: str) -> None:
    response = api.post(SMTP, smtp_body(port=port))

    assert response.status_code == 422, response.text
    assert response.json() == {"errors": [error("port", message)]}
    assert db.fetchval("SELECT count(*) FROM smtp_connections") == 0


@pytest.mark.parametrize("port", [1, 65535, "587"])
def test_ports_at_the_edges_are_taken(api: Api, port: Any) -> None:
    assert api.post(SMTP, smtp_body(port=port)).status_code == 201


@pytest.mark.parametrize(
    ("address", "messages"),
    [
        (None, ["can't be blank", "is invalid"]),
        ("", ["can't be blank", "is invalid"]),
        ("billing", ["is invalid"]),
        ("billing@localhost", ["is invalid"]),
        ("two words@example.com", ["is invalid"]),
        (["billing@example.com"], ["must be a string"]),
    ],
)
def test_bad_from_address_is_422(api: Api, address: Any, messages: list[str]) -> None:
    response = api.post(SMTP, smtp_body(**{"from-address": address}))

    assert response.status_code == 422
    assert response.json()["errors"] == [error("from-address", m) for m in messages]


@pytest.mark.parametrize(
    ("value", "message"), [(None, "can't be blank"), ("maybe", "must be true or false")]
)
def test_bad_global_is_422(api: Api, value: Any, message: str) -> None:
    response = api.post(SMTP, smtp_body(**{"global": value}))

    assert response.status_code == 422
    assert response.json()["errors"] == [error("global", message)]


def test_string_attributes_are_bounded(api: Api) -> None:
    response = api.post(
        SMTP, smtp_body(host="h" * 256, **{"auth-user": {}, "auth-password": "p\x00"})
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        error("host", "is too long (maximum is 255 characters)"),
        error("auth-user", "must be a string"),
        error("auth-password", "must not contain null bytes"),
    ]


def test_every_error_at_once_in_yetis_order(api: Api) -> None:
    created(api, name="taken")

    response = api.post(
        SMTP,
        {
            "data": {
                "type": "smtp-connections",
                # in reverse: the answer follows the rules' order, not the body's
                "attributes": {"global": None, "from-address": "x", "port": 0, "host": ""},
            }
        },
    )
    taken = api.post(SMTP, smtp_body(name="taken", host=" "))

    assert response.status_code == 422
    assert response.json()["errors"] == [
        error("name", "can't be blank"),
        error("host", "can't be blank"),
        error("port", "must be greater than or equal to 1"),
        error("from-address", "is invalid"),
        error("global", "can't be blank"),
    ]
    # uniqueness runs after presence, so it comes after the host's error
    assert taken.json()["errors"] == [
        error("host", "can't be blank"),
        error("name", "has already been taken"),
    ]


def test_a_null_on_update_is_blank(api: Api, db: Db) -> None:
    key = created(api)

    response = api.patch(f"{SMTP}/{key}", update_body(key, host=None, port=None))

    assert response.status_code == 422
    assert response.json()["errors"] == [
        error("host", "can't be blank"),
        error("port", "can't be blank"),
    ]
    assert db.fetchval("SELECT host FROM smtp_connections") == "smtp.example.com"


# -- filters and sorting --------------------------------------------------------------------------


@pytest.fixture
def three(api: Api) -> list[int]:
    return [
        int(created(api, name="alpha", host="a.example.com")),
        int(created(api, name="beta", host="b.example.org", **{"global": False})),
        int(created(api, name="gamma", host="c.example.com", **{"global": False})),
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"filter[name]": "alpha,gamma"}, [0, 2]),
        ({"filter[name_cont]": "ET"}, [1]),
        ({"filter[name_in]": "beta,gamma"}, [1, 2]),
        ({"filter[host_end]": ".com"}, [0, 2]),
        ({"filter[host_eq]": "b.example.org"}, [1]),
        ({"filter[global_eq]": "true"}, [0]),
        ({"filter[global_not_eq]": "true"}, [1, 2]),
        ({"sort": "-name"}, [2, 1, 0]),
        ({"sort": "global,-host"}, [2, 1, 0]),
        ({"sort": "port,-id"}, [2, 1, 0]),
    ],
)
def test_filters_and_sorting(
    api: Api, three: list[int], params: dict[str, str], expected: list[int]
) -> None:
    assert ids(api.get(SMTP, params=params)) == [three[i] for i in expected]


def test_a_bad_boolean_filter_is_107(api: Api) -> None:
    response = api.get(SMTP, params={"filter[global_eq]": "maybe"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "107"


@pytest.mark.parametrize("name", ["port_eq", "from_address_cont", "auth_user_eq"])
def test_other_filters_are_102(api: Api, name: str) -> None:
    response = api.get(SMTP, params={f"filter[{name}]": "1"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "102"


def test_contractor_create_links_a_connection_made_here(api: Api) -> None:
    key = created(api)

    response = api.post(
        CONTRACTORS,
        {
            "data": {
                "type": "contractors",
                "attributes": {"name": "acme", "enabled": True, "vendor": True, "customer": False},
                "relationships": {
                    "smtp-connection": {"data": {"type": "smtp-connections", "id": key}}
                },
            }
        },
    )

    assert response.status_code == 201, response.text
