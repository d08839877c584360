"""The bare handler of the overhead benchmark (bench/bare.py, issue 10) answers the service's
documents for the four benchmark requests, so that the ratio between them measures overhead
and nothing else. The writes are compared as answers to the same change from the same state."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import account_body
from tests.conftest import BASE_URL, JSONAPI, ROOT, Api, Db, settings_for

ACCOUNTS = "/api/rest/admin/accounts"


def load_bare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bare", ROOT / "bench" / "bare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bare"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bare(database_url: str, admin_id: int) -> Iterator[TestClient]:
    app = load_bare().Bare(database_url, settings_for(database_url), admin_id)
    with TestClient(app, base_url=BASE_URL, client=("127.0.0.1", 50000)) as client:
        yield client


def send(client: TestClient | Api, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    if isinstance(client, Api):
        response = client.request(method, path, json_body=body)
    else:
        headers = {"Accept": JSONAPI, "Content-Type": JSONAPI}
        response = client.request(method, path, content=json.dumps(body), headers=headers)
    return response.status_code, response.json()


def test_bare_answers_the_services_documents(api: Api, bare: TestClient, db: Db) -> None:
    contractor_id = db.fetchval(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('bench', true, true, true) RETURNING id"
    )
    for number in range(3):
        created = api.post(ACCOUNTS, account_body(contractor_id, name=f"bench-{number}"))
        assert created.status_code == 201, created.text
    account = created.json()["data"]["id"]
    member = f"{ACCOUNTS}/{account}"
    page = f"{ACCOUNTS}?page%5Bsize%5D=50&include=contractor"
    service = api

    assert send(bare, "GET", member) == send(service, "GET", member)
    assert send(bare, "GET", page) == send(service, "GET", page)

    def update(max_balance: int) -> dict[str, Any]:
        attributes = {"name": "name", "max-balance": max_balance, "invoice-period-id": 3}
        return {"data": {"type": "accounts", "id": int(account), "attributes": attributes}}

    # the same change from the same state: each answers the account after it
    status, by_bare = send(bare, "PUT", member, update(20))
    db.execute(
        "UPDATE accounts SET name = 'bench-2', max_balance = 0, invoice_period_id = NULL,"
        " next_invoice_at = NULL, next_invoice_type_id = NULL WHERE id = $1",
        int(account),
    )
    assert (status, by_bare) == send(service, "PUT", member, update(20))

    payment = {
        "data": {
            "type": "payments",
            "attributes": {"amount": "0.01"},
            "relationships": {"account": {"data": {"type": "accounts", "id": account}}},
        }
    }
    status, by_bare = send(bare, "POST", "/api/rest/admin/payments", payment)
    by_service = send(service, "POST", "/api/rest/admin/payments", payment)
    # two payments: their ids (in their links too), times and balances before differ by nature
    documents = []
    for document in (by_bare, by_service[1]):
        data = document["data"]
        payment_id = data.pop("id")
        for name in ("created-at", "uuid", "balance-before-payment"):
            data["attributes"].pop(name, None)
        text = json.dumps(document).replace(f"/payments/{payment_id}/", "/payments/ID/")
        documents.append(json.loads(text.replace(f'/payments/{payment_id}"', '/payments/ID"')))
    assert status == by_service[0] == 201
    assert documents[0] == documents[1]
    # the same ledger and audit rows, by the same admin
    assert db.fetchval("SELECT count(DISTINCT whodunnit) FROM audit_log") == 1
