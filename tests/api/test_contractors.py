"""Contractors (contract §5.1): shape, writes, filters, sorting, validations, delete rules and
the SMTP connection relationship."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.contract import PREFIX, ResourceContract, ids
from tests.conftest import BASE_URL, Api, Db

CONTRACTORS = f"{PREFIX}/contractors"
ATTRIBUTES = (
    "name",
    "enabled",
    "vendor",
    "customer",
    "description",
    "address",
    "phones",
    "external-id",
)


def contractor_body(**attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "contractors",
            "attributes": {
                "name": "acme",
                "enabled": True,
                "vendor": True,
                "customer": False,
                **attributes,
            },
        }
    }


def error(attribute: str, message: str, member: str = "attributes") -> dict[str, Any]:
    return {
        "title": message,
        "detail": f"{attribute} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/{member}/{attribute}"},
        "status": "422",
    }


def make_smtp(db: Db, name: str = "smtp1") -> int:
    return int(
        db.fetchval(
            "INSERT INTO smtp_connections (name, host, from_address)"
            " VALUES ($1, 'mail.example.com', 'billing@example.com') RETURNING id",
            name,
        )
    )


class TestContractors(ResourceContract):
    path = "contractors"
    type = "contractors"

    def create_body(self) -> dict[str, Any]:
        return contractor_body()

    def make(self, api: Api) -> str:
        response = api.post(self.collection, contractor_body(name="made"))
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])


# -- shape ----------------------------------------------------------------------------


def test_show_renders_attributes_in_order_and_null_smtp_linkage(api: Api) -> None:
    created = api.post(
        CONTRACTORS,
        contractor_body(
            name="acme",
            customer=True,
            description="desc",
            address="addr",
            phones="+1 555",
            **{"external-id": 42},
        ),
    )
    assert created.status_code == 201, created.text
    key = created.json()["data"]["id"]
    own = f"{BASE_URL}{CONTRACTORS}/{key}"
    assert created.headers["location"] == own

    response = api.get(f"{CONTRACTORS}/{key}")

    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "id": key,
            "type": "contractors",
            "links": {"self": own},
            "attributes": {
                "name": "acme",
                "enabled": True,
                "vendor": True,
                "customer": True,
                "description": "desc",
                "address": "addr",
                "phones": "+1 555",
                "external-id": 42,
            },
            "relationships": {
                "smtp-connection": {
                    "links": {
                        "self": f"{own}/relationships/smtp-connection",
                        "related": f"{own}/smtp-connection",
                    },
                    "data": None,
                }
            },
        }
    }
    assert list(response.json()["data"]["attributes"]) == list(ATTRIBUTES)


def test_smtp_connection_relationship_endpoint(api: Api, db: Db) -> None:
    smtp = make_smtp(db)
    created = api.post(
        CONTRACTORS,
        {
            "data": {
                "type": "contractors",
                "attributes": {"name": "acme", "enabled": True, "vendor": True, "customer": False},
                "relationships": {
                    "smtp-connection": {"data": {"type": "smtp-connections", "id": str(smtp)}}
                },
            }
        },
    )
    assert created.status_code == 201, created.text
    key = created.json()["data"]["id"]
    own = f"{BASE_URL}{CONTRACTORS}/{key}"
    assert created.json()["data"]["relationships"]["smtp-connection"]["data"] == {
        "type": "smtp-connections",
        "id": str(smtp),
    }

    response = api.get(f"{CONTRACTORS}/{key}/relationships/smtp-connection")

    assert response.status_code == 200
    assert response.json() == {
        "data": {"type": "smtp-connections", "id": str(smtp)},
        "links": {
            "self": f"{own}/relationships/smtp-connection",
            "related": f"{own}/smtp-connection",
        },
    }
    assert list(response.json()) == ["data", "links"]


def test_smtp_connection_relationship_without_connection_is_null(
    api: Api, contractor_id: int
) -> None:
    own = f"{BASE_URL}{CONTRACTORS}/{contractor_id}"

    response = api.get(f"{CONTRACTORS}/{contractor_id}/relationships/smtp-connection")

    assert response.status_code == 200
    assert response.json() == {
        "data": None,
        "links": {
            "self": f"{own}/relationships/smtp-connection",
            "related": f"{own}/smtp-connection",
        },
    }


def test_smtp_connection_relationship_can_be_set_and_cleared(
    api: Api, db: Db, contractor_id: int
) -> None:
    smtp = make_smtp(db)
    url = f"{CONTRACTORS}/{contractor_id}/relationships/smtp-connection"

    set_response = api.patch(url, {"data": {"type": "smtp-connections", "id": str(smtp)}})
    assert set_response.status_code == 204, set_response.text
    stored = db.fetchval("SELECT smtp_connection_id FROM contractors WHERE id = $1", contractor_id)
    assert stored == smtp

    cleared = api.delete(url)
    assert cleared.status_code == 204, cleared.text
    stored = db.fetchval("SELECT smtp_connection_id FROM contractors WHERE id = $1", contractor_id)
    assert stored is None


def test_related_smtp_connection_and_include(api: Api, db: Db, contractor_id: int) -> None:
    smtp = make_smtp(db)
    db.execute("UPDATE contractors SET smtp_connection_id = $1 WHERE id = $2", smtp, contractor_id)

    related = api.get(f"{CONTRACTORS}/{contractor_id}/smtp-connection")
    included = api.get(f"{CONTRACTORS}/{contractor_id}", params={"include": "smtp-connection"})

    assert related.status_code == 200, related.text
    data = related.json()["data"]
    assert (data["type"], data["id"]) == ("smtp-connections", str(smtp))
    assert data["attributes"]["host"] == "mail.example.com"
    assert data["attributes"]["from-address"] == "billing@example.com"
    assert included.status_code == 200, included.text
    assert [(item["type"], item["id"]) for item in included.json()["included"]] == [
        ("smtp-connections", str(smtp))
    ]


def test_related_smtp_connection_without_connection_is_null(api: Api, contractor_id: int) -> None:
    response = api.get(f"{CONTRACTORS}/{contractor_id}/smtp-connection")

    assert response.status_code == 200
    assert response.json() == {"data": None}


# -- create, update, delete -------------------------------------------------------------


def test_create_stores_the_contractor(api: Api, db: Db) -> None:
    response = api.post(
        CONTRACTORS, contractor_body(name="new", vendor=False, customer=True, enabled=False)
    )

    assert response.status_code == 201, response.text
    key = int(response.json()["data"]["id"])
    row = db.fetchrow("SELECT * FROM contractors WHERE id = $1", key)
    assert row is not None
    assert (row["name"], row["enabled"], row["vendor"], row["customer"]) == (
        "new",
        False,
        False,
        True,
    )


def test_update_changes_only_given_attributes(api: Api, db: Db) -> None:
    created = api.post(CONTRACTORS, contractor_body(name="old", description="keep"))
    key = created.json()["data"]["id"]

    response = api.patch(
        f"{CONTRACTORS}/{key}",
        {
            "data": {
                "type": "contractors",
                "id": key,
                "attributes": {"name": "renamed", "customer": True, "external-id": 7},
            }
        },
    )

    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert attributes["name"] == "renamed"
    assert attributes["customer"] is True
    assert attributes["vendor"] is True
    assert attributes["description"] == "keep"
    assert attributes["external-id"] == 7
    assert db.fetchval("SELECT name FROM contractors WHERE id = $1", int(key)) == "renamed"


def test_delete_answers_204_and_removes_the_contractor(
    api: Api, db: Db, contractor_id: int
) -> None:
    response = api.delete(f"{CONTRACTORS}/{contractor_id}")

    assert response.status_code == 204
    assert response.content == b""
    assert db.fetchval("SELECT count(*) FROM contractors WHERE id = $1", contractor_id) == 0
    assert api.get(f"{CONTRACTORS}/{contractor_id}").status_code == 404


def test_delete_with_accounts_is_422_and_keeps_everything(
    api: Api, db: Db, contractor_id: int, make_account: Callable[..., dict[str, Any]]
) -> None:
    make_account()

    response = api.delete(f"{CONTRACTORS}/{contractor_id}")

    message = "Cannot delete record because dependent accounts exist"
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
    assert db.fetchval("SELECT count(*) FROM contractors WHERE id = $1", contractor_id) == 1
    assert db.fetchval("SELECT count(*) FROM accounts") == 1


def test_delete_removes_the_contractors_contacts(
    api: Api, db: Db, make_contractor: Callable[..., int]
) -> None:
    doomed, other = make_contractor(), make_contractor()
    for contractor in (doomed, doomed, other):
        db.execute(
            "INSERT INTO contacts (contractor_id, email) VALUES ($1, 'a@example.com')", contractor
        )

    response = api.delete(f"{CONTRACTORS}/{doomed}")

    assert response.status_code == 204
    assert db.fetchval("SELECT count(*) FROM contacts WHERE contractor_id = $1", doomed) == 0
    assert db.fetchval("SELECT count(*) FROM contacts WHERE contractor_id = $1", other) == 1


# -- validations ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", None])
def test_blank_name_is_422(api: Api, db: Db, name: str | None) -> None:
    response = api.post(CONTRACTORS, contractor_body(name=name))

    assert response.status_code == 422
    assert response.json() == {"errors": [error("name", "can't be blank")]}
    assert db.fetchval("SELECT count(*) FROM contractors") == 0


def test_taken_name_is_422(api: Api, db: Db, make_contractor: Callable[..., int]) -> None:
    make_contractor(name="acme")

    response = api.post(CONTRACTORS, contractor_body(name="acme"))

    assert response.status_code == 422
    assert response.json() == {"errors": [error("name", "has already been taken")]}
    assert db.fetchval("SELECT count(*) FROM contractors") == 1


def test_taken_name_on_update_is_422(api: Api, db: Db, make_contractor: Callable[..., int]) -> None:
    make_contractor(name="first")
    key = make_contractor(name="second")

    response = api.patch(
        f"{CONTRACTORS}/{key}",
        {"data": {"type": "contractors", "id": str(key), "attributes": {"name": "first"}}},
    )

    assert response.status_code == 422
    assert response.json() == {"errors": [error("name", "has already been taken")]}
    assert db.fetchval("SELECT name FROM contractors WHERE id = $1", key) == "second"


def test_neither_vendor_nor_customer_gives_two_errors(api: Api, db: Db) -> None:
    response = api.post(CONTRACTORS, contractor_body(vendor=False, customer=False))

    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            error("vendor", "Must be customer and/or vendor"),
            error("customer", "Must be customer and/or vendor"),
        ]
    }
    assert db.fetchval("SELECT count(*) FROM contractors") == 0


def test_update_to_neither_vendor_nor_customer_is_422(api: Api, db: Db, contractor_id: int) -> None:
    response = api.patch(
        f"{CONTRACTORS}/{contractor_id}",
        {
            "data": {
                "type": "contractors",
                "id": str(contractor_id),
                "attributes": {"vendor": False},
            }
        },
    )

    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            error("vendor", "Must be customer and/or vendor"),
            error("customer", "Must be customer and/or vendor"),
        ]
    }
    assert db.fetchval("SELECT vendor FROM contractors WHERE id = $1", contractor_id) is True


def test_blank_name_and_no_role_report_name_first(api: Api) -> None:
    response = api.post(CONTRACTORS, contractor_body(name="", vendor=False, customer=False))

    assert response.status_code == 422
    assert response.json()["errors"] == [
        error("name", "can't be blank"),
        error("vendor", "Must be customer and/or vendor"),
        error("customer", "Must be customer and/or vendor"),
    ]


def test_taken_external_id_is_422(api: Api, db: Db, make_contractor: Callable[..., int]) -> None:
    make_contractor(external_id=100)

    response = api.post(CONTRACTORS, contractor_body(**{"external-id": 100}))

    assert response.status_code == 422
    assert response.json() == {"errors": [error("external-id", "has already been taken")]}
    assert db.fetchval("SELECT count(*) FROM contractors") == 1


def test_own_name_and_external_id_are_not_taken_on_update(
    api: Api, make_contractor: Callable[..., int]
) -> None:
    key = make_contractor(name="acme", external_id=5)

    response = api.patch(
        f"{CONTRACTORS}/{key}",
        {
            "data": {
                "type": "contractors",
                "id": str(key),
                "attributes": {"name": "acme", "external-id": 5, "phones": "1"},
            }
        },
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["phones"] == "1"


@pytest.mark.parametrize("missing", ["enabled", "vendor"])
def test_missing_flag_is_422_not_500(api: Api, db: Db, missing: str) -> None:
    # deliberate deviation: Yeti answers 500 (NOT NULL violation); customer keeps a role
    body = contractor_body(customer=True)
    del body["data"]["attributes"][missing]

    response = api.post(CONTRACTORS, body)

    assert response.status_code == 422
    assert response.json() == {"errors": [error(missing, "can't be blank")]}
    assert db.fetchval("SELECT count(*) FROM contractors") == 0


def test_missing_customer_is_422_not_500(api: Api, db: Db) -> None:
    body = contractor_body()
    del body["data"]["attributes"]["customer"]

    response = api.post(CONTRACTORS, body)

    assert response.status_code == 422
    assert response.json() == {"errors": [error("customer", "can't be blank")]}
    assert db.fetchval("SELECT count(*) FROM contractors") == 0


# -- filters ----------------------------------------------------------------------------


@pytest.fixture
def three(make_contractor: Callable[..., int]) -> list[int]:
    return [
        make_contractor(
            name="Alpha_One",
            enabled=True,
            vendor=True,
            customer=False,
            description="first 100%",
            address="Kyiv",
            phones="111",
            external_id=10,
        ),
        make_contractor(
            name="beta",
            enabled=False,
            vendor=False,
            customer=True,
            description="second",
            address="Lviv",
            phones="222",
            external_id=20,
        ),
        make_contractor(name="gamma", enabled=True, vendor=True, customer=True),
    ]


def test_plain_name_filter_is_exact_and_takes_a_list(api: Api, three: list[int]) -> None:
    assert ids(api.get(CONTRACTORS, params={"filter[name]": "beta"})) == [three[1]]
    assert ids(api.get(CONTRACTORS, params={"filter[name]": "beta,gamma"})) == three[1:]
    assert ids(api.get(CONTRACTORS, params={"filter[name]": "bet"})) == []


def test_smtp_connection_id_filter(api: Api, db: Db, three: list[int]) -> None:
    smtp, other = make_smtp(db, "one"), make_smtp(db, "two")
    db.execute("UPDATE contractors SET smtp_connection_id = $1 WHERE id = $2", smtp, three[0])
    db.execute("UPDATE contractors SET smtp_connection_id = $1 WHERE id = $2", other, three[2])

    for key in ("smtp_connection.id", "smtp-connection.id"):
        response = api.get(CONTRACTORS, params={f"filter[{key}]": str(smtp)})
        assert ids(response) == [three[0]]
        assert response.json()["meta"]["total-count"] == 1
    both = api.get(CONTRACTORS, params={"filter[smtp_connection.id]": f"{smtp},{other}"})
    assert ids(both) == [three[0], three[2]]


def test_non_integer_smtp_connection_id_filter_is_107(api: Api) -> None:
    response = api.get(CONTRACTORS, params={"filter[smtp_connection.id]": "abc"})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "title": "Invalid filter value",
            "detail": "abc is not a valid value for smtp_connection.id.",
            "code": "107",
            "status": "400",
        }
    ]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("name_eq", "beta", [1]),
        ("name_not_eq", "beta", [0, 2]),
        ("name_cont", "LPH", [0]),
        ("name_cont", "_", [0]),
        ("name_start", "ALPHA", [0]),
        ("name_end", "MA", [2]),
        ("name_in", "beta,gamma", [1, 2]),
        ("name_not_in", "beta,gamma", [0]),
        ("name_cont_any", "alp,amm", [0, 2]),
        ("description_eq", "second", [1]),
        ("description_not_eq", "second", [0]),
        ("description_cont", "0%", [0]),
        ("description_start", "SEC", [1]),
        ("description_end", "ond", [1]),
        ("description_in", "second,first 100%", [0, 1]),
        ("description_not_in", "second", [0]),
        ("description_cont_any", "xyz,irs", [0]),
        ("address_eq", "Kyiv", [0]),
        ("address_cont", "viv", [1]),
        ("address_not_in", "Kyiv", [1]),
        ("phones_start", "2", [1]),
        ("phones_end", "1", [0]),
        ("phones_in", "111,222", [0, 1]),
        ("phones_not_eq", "111", [1]),
        ("phones_cont_any", "11,22", [0, 1]),
    ],
)
def test_string_filters(
    api: Api, three: list[int], name: str, value: str, expected: list[int]
) -> None:
    response = api.get(CONTRACTORS, params={f"filter[{name}]": value})

    assert ids(response) == [three[i] for i in expected]
    assert response.json()["meta"]["total-count"] == len(expected)


@pytest.mark.parametrize("attribute", ["enabled", "vendor", "customer"])
@pytest.mark.parametrize(
    ("value", "truth"),
    [
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("t", True),
        ("f", False),
        ("TRUE", True),
        ("FALSE", False),
    ],
)
def test_boolean_filters(
    api: Api, three: list[int], attribute: str, value: str, truth: bool
) -> None:
    flags = {
        "enabled": [True, False, True],
        "vendor": [True, False, True],
        "customer": [False, True, True],
    }[attribute]

    equal = api.get(CONTRACTORS, params={f"filter[{attribute}_eq]": value})
    not_equal = api.get(CONTRACTORS, params={f"filter[{attribute}_not_eq]": value})

    assert ids(equal) == [key for key, flag in zip(three, flags, strict=True) if flag is truth]
    assert ids(not_equal) == [
        key for key, flag in zip(three, flags, strict=True) if flag is not truth
    ]


def test_unknown_boolean_filter_value_is_107(api: Api, three: list[int]) -> None:
    # deliberate deviation: Yeti drops the condition and lists everything
    response = api.get(CONTRACTORS, params={"filter[enabled_eq]": "yes"})

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "title": "Invalid filter value",
                "detail": "yes is not a valid value for enabled_eq.",
                "code": "107",
                "status": "400",
            }
        ]
    }


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("external_id_eq", "10", [0]),
        ("external_id_not_eq", "10", [1]),
        ("external_id_gt", "10", [1]),
        ("external_id_gteq", "10", [0, 1]),
        ("external_id_lt", "20", [0]),
        ("external_id_lteq", "20", [0, 1]),
        ("external_id_in", "10,20,30", [0, 1]),
        ("external_id_not_in", "20", [0]),
        ("external-id-eq", "20", [1]),
    ],
)
def test_external_id_number_filters(
    api: Api, three: list[int], name: str, value: str, expected: list[int]
) -> None:
    response = api.get(CONTRACTORS, params={f"filter[{name}]": value})

    assert ids(response) == [three[i] for i in expected]


def test_non_numeric_external_id_filter_is_107(api: Api, three: list[int]) -> None:
    response = api.get(CONTRACTORS, params={"filter[external_id_eq]": "abc"})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "title": "Invalid filter value",
            "detail": "abc is not a valid value for external_id_eq.",
            "code": "107",
            "status": "400",
        }
    ]


def test_single_value_predicate_with_two_values_is_107(api: Api, three: list[int]) -> None:
    response = api.get(CONTRACTORS, params={"filter[name_eq]": "a,b"})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "title": "Invalid filter value",
            "detail": "a,b is not a valid value for name_eq.",
            "code": "107",
            "status": "400",
        }
    ]


@pytest.mark.parametrize("name", ["balance_eq", "smtp_connection_id_eq", "name_like"])
def test_filters_outside_the_list_are_102(api: Api, name: str) -> None:
    response = api.get(CONTRACTORS, params={f"filter[{name}]": "1"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "102"


# -- sorting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("id", [0, 1, 2]),
        ("-id", [2, 1, 0]),
        ("name", [0, 1, 2]),
        ("-name", [2, 1, 0]),
        ("enabled,-id", [1, 2, 0]),
        ("-vendor,id", [0, 2, 1]),
        ("customer,id", [0, 1, 2]),
        ("-customer,-id", [2, 1, 0]),
        ("description", [0, 1, 2]),
        ("-address", [2, 1, 0]),
        ("phones", [0, 1, 2]),
        ("-phones", [2, 1, 0]),
        ("external-id", [0, 1, 2]),
        ("-external_id", [2, 1, 0]),
    ],
)
def test_sort_by_every_attribute(
    api: Api, three: list[int], sort: str, expected: list[int]
) -> None:
    # ascending NULLs sort last in PostgreSQL, descending first
    assert ids(api.get(CONTRACTORS, params={"sort": sort})) == [three[i] for i in expected]


def test_sort_by_relationship_is_114(api: Api) -> None:
    response = api.get(CONTRACTORS, params={"sort": "smtp-connection"})

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "title": "Invalid sort criteria",
                "detail": "smtp_connection is not a valid sort criteria for contractors",
                "code": "114",
                "status": "400",
            }
        ]
    }
