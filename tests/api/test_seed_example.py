"""The contract's seed example (issue 2): create a contractor and an account, then PUT."""

from __future__ import annotations

from tests.api.conftest import account_body
from tests.conftest import BASE_URL, Api


def test_put_seed_example_answers_the_contract_document(api: Api, contractor_id: int) -> None:
    created = api.post("/api/rest/admin/accounts", account_body(contractor_id, name="acme"))
    assert created.status_code == 201, created.text
    account_id = int(created.json()["data"]["id"])

    response = api.put(
        f"/api/rest/admin/accounts/{account_id}",
        {
            "data": {
                "type": "accounts",
                "id": account_id,
                "attributes": {"name": "name", "max-balance": 20, "invoice-period-id": 3},
            }
        },
    )

    assert response.status_code == 200, response.text
    document = response.json()
    assert list(document) == ["data"]
    data = document["data"]
    assert list(data) == ["id", "type", "links", "attributes", "relationships"]
    assert data["id"] == str(account_id)
    assert data["type"] == "accounts"
    own = f"{BASE_URL}/api/rest/admin/accounts/{account_id}"
    assert data["links"] == {"self": own}
    attributes = data["attributes"]
    assert list(attributes) == [
        "name",
        "balance",
        "min-balance",
        "max-balance",
        "vat",
        "balance-low-threshold",
        "balance-high-threshold",
        "send-balance-notifications-to",
        "destination-rate-limit",
        "max-call-duration",
        "external-id",
        "uuid",
        "origination-capacity",
        "termination-capacity",
        "total-capacity",
        "send-invoices-to",
        "invoice-period-id",
        "timezone",
        "currency",
    ]
    assert attributes["name"] == "name"
    assert attributes["balance"] == "0.0"
    assert attributes["min-balance"] == "0.0"
    assert attributes["max-balance"] == "20.0"
    assert attributes["vat"] == "0.0"
    assert attributes["balance-low-threshold"] is None
    assert attributes["balance-high-threshold"] is None
    assert attributes["send-balance-notifications-to"] is None
    assert attributes["destination-rate-limit"] is None
    assert attributes["max-call-duration"] is None
    assert attributes["external-id"] is None
    assert isinstance(attributes["uuid"], str) and len(attributes["uuid"]) == 36
    assert attributes["origination-capacity"] is None
    assert attributes["invoice-period-id"] == 3
    assert attributes["timezone"] == "UTC"
    assert attributes["currency"] == "USD"
    assert data["relationships"] == {
        "contractor": {
            "links": {"self": f"{own}/relationships/contractor", "related": f"{own}/contractor"},
            "data": {"type": "contractors", "id": str(contractor_id)},
        },
        "invoice-template": {
            "links": {
                "self": f"{own}/relationships/invoice-template",
                "related": f"{own}/invoice-template",
            },
            "data": None,
        },
    }
