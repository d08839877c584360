"""Issue 8: JSON:API clients (jsonapi-requests' `save()`, devour, jsona) fetch a resource
object and send it back whole on update, `links`, `meta`, read-only attributes and
relationship links included. Every updatable resource of the registry takes its own GET `data`
back as a PATCH or PUT body and answers 200 with the record unchanged."""

from __future__ import annotations

import pytest

from accounts_api.resources import REGISTRY
from tests.api.test_query_budgets import ROWS
from tests.conftest import Api, Db

PREFIX = "/api/rest/admin"
UPDATABLE = sorted(
    resource.type for resource in REGISTRY.values() if resource.writer.update is not None
)


def test_every_updatable_resource_is_covered() -> None:
    # a new updatable resource needs a seed row in test_query_budgets.ROWS to be checked here
    assert UPDATABLE
    assert {REGISTRY[kind].path for kind in UPDATABLE} <= set(ROWS)


@pytest.mark.parametrize("method", ["patch", "put"])
@pytest.mark.parametrize("kind", UPDATABLE)
def test_a_fetched_object_sent_back_verbatim_is_200(
    api: Api, db: Db, kind: str, method: str
) -> None:
    resource = REGISTRY[kind]
    db.execute(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('base', true, true, false)"
    )
    db.execute(ROWS[resource.path][0], 1, 1)
    listed = api.get(f"{PREFIX}/{resource.path}")
    assert listed.status_code == 200, listed.text
    key = listed.json()["data"][0]["id"]
    member = f"{PREFIX}/{resource.path}/{key}"
    fetched = api.get(member).json()
    audited = db.fetchval("SELECT count(*) FROM audit_log")

    response = getattr(api, method)(member, {"data": fetched["data"], "meta": {"from": "get"}})

    assert response.status_code == 200, response.text
    after = api.get(member).json()["data"]
    assert response.json()["data"] == after
    changed = {
        name
        for name, value in after["attributes"].items()
        if fetched["data"]["attributes"][name] != value
    }
    # an update with nothing to change may still stamp `updated-at`; nothing else moves
    assert changed <= {"updated-at"}
    assert after.get("relationships") == fetched["data"].get("relationships")
    if "updated-at" not in changed:
        assert db.fetchval("SELECT count(*) FROM audit_log") == audited
