"""Responses conform to the OpenAPI document (issue 8, point 3): schemathesis generates
requests from the document the app serves, for every operation, sends them to the real app on
the real test database, and checks each answer: no server error, a documented status code, a
documented content type and headers, a body valid against the documented schema.

Bounded: EXAMPLES per operation, derandomized so that CI sends the same requests every time.
In half the examples the path key names a record arranged before each operation (and an
update's data.id follows it), so that shows, updates and relationships answer from real rows
rather than 404. Every operation is sent in-process, the probes and the login included.
"""

from __future__ import annotations

import json
import os
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import checks as schemathesis_checks
from schemathesis.generation import GenerationMode
from starlette.testclient import TestClient

from accounts_api.app import create_app
from tests.conftest import BASE_URL, Db, settings_for

# more for a deeper search by hand: ACCOUNTS_API_SCHEMATHESIS_EXAMPLES=200 make test
EXAMPLES = int(os.environ.get("ACCOUNTS_API_SCHEMATHESIS_EXAMPLES", "5"))


def _served_document() -> dict[str, Any]:
    """The document as /api/rest/admin/openapi.json serves it, built from the routes alone
    (as `accounts-api openapi` does): collection needs no database."""
    app = create_app(settings_for("postgresql://unused/"))
    document: dict[str, Any] = json.loads(app.state.openapi.body(app.routes))
    return document


schema = schemathesis.openapi.from_dict(_served_document())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    deterministic=True,
    # the token is sent by the test; generated tokens only meet the 401 every test checks
    with_security_parameters=False,
    database="none",
)
# examples and fuzzing only: the coverage phase sends a case per keyword of every schema,
# hundreds per operation, past any bound
schema.config.phases.update(phases=["examples", "fuzzing"])

CHECKS = [
    schemathesis_checks.not_a_server_error,
    schemathesis_checks.status_code_conformance,
    schemathesis_checks.content_type_conformance,
    schemathesis_checks.response_headers_conformance,
    schemathesis_checks.response_schema_conformance,
]


@pytest.fixture
def arranged(db: Db, clean_database: None) -> dict[str, str]:
    """One record of each resource whose key a path takes, linked as the contract links them;
    by the first segment of the path under /api/rest/admin."""
    row = db.fetchrow(
        "WITH smtp AS (INSERT INTO smtp_connections (name, host, from_address)"
        "  VALUES ('mail', 'smtp.example.com', 'billing@example.com') RETURNING id),"
        " contractor AS (INSERT INTO contractors (name, enabled, vendor, customer,"
        "  smtp_connection_id) SELECT 'acme', true, true, true, id FROM smtp RETURNING id),"
        " contact AS (INSERT INTO contacts (contractor_id, email)"
        "  SELECT id, 'ops@example.com' FROM contractor RETURNING id),"
        " template AS (INSERT INTO invoice_templates (name, html_template)"
        "  VALUES ('monthly', '<p>{{ account }}</p>') RETURNING id),"
        " currency AS (INSERT INTO currencies (name, rate) VALUES ('EUR', 1.1) RETURNING id),"
        " account AS (INSERT INTO accounts (name, contractor_id, currency_id, currency_name,"
        "  invoice_template_id) SELECT 'acme-usd', contractor.id, 0, 'USD', template.id"
        "  FROM contractor, template RETURNING id),"
        " settings AS (INSERT INTO account_balance_notification_settings (account_id)"
        "  SELECT id FROM account),"
        " subscription AS (INSERT INTO event_subscriptions (event, secret)"
        "  VALUES ('AccountLowThesholdReached', 'whsec_AAAAAAAAAAAAAAAAAAAAAA') RETURNING id),"
        " notification AS (INSERT INTO balance_notifications (event_id, account_id,"
        "  account_balance) SELECT 3, id, -1 FROM account RETURNING id),"
        " outbox AS (INSERT INTO outbox (event, data)"
        "  VALUES ('AccountLowThesholdReached', '{}') RETURNING id),"
        # delivered: the delivery worker leaves it alone
        " delivery AS (INSERT INTO webhook_deliveries (outbox_id, webhook_id, event, url, body,"
        "  status, event_subscription_id) SELECT outbox.id, 'msg_1', 'AccountLowThesholdReached',"
        "  'http://127.0.0.1/', '{}', 'delivered', subscription.id FROM outbox, subscription"
        "  RETURNING id),"
        " attempt AS (INSERT INTO webhook_attempts (webhook_delivery_id, attempt, duration_ms)"
        "  SELECT id, 1, 5 FROM delivery RETURNING id)"
        " SELECT smtp.id AS smtp, contractor.id AS contractor, contact.id AS contact,"
        "  template.id AS template, currency.id AS currency, account.id AS account,"
        "  subscription.id AS subscription, notification.id AS notification,"
        "  delivery.id AS delivery, attempt.id AS attempt"
        " FROM smtp, contractor, contact, template, currency, account, subscription,"
        "  notification, delivery, attempt"
    )
    assert row is not None
    account = row["account"]
    db.execute("UPDATE accounts SET external_id = id WHERE id = $1", account)
    # a payment and a correction: the balance moves with ledger entries that explain it
    payment = db.fetchval(
        "INSERT INTO payments (account_id, amount, currency_id, status_id)"
        " VALUES ($1, 10, 0, 20) RETURNING id",
        account,
    )
    db.set_balance(account, 10)
    transaction = db.fetchval(
        "INSERT INTO transactions (account_id, amount) VALUES ($1, 1) RETURNING id", account
    )
    ledger_entry = db.fetchval("SELECT max(id) FROM ledger_entries WHERE account_id = $1", account)
    return {
        "accounts": str(account),
        "contractors": str(row["contractor"]),
        "contacts": str(row["contact"]),
        "currencies": str(row["currency"]),
        "invoice-template": str(row["template"]),
        "invoice-templates": str(row["template"]),
        "smtp-connections": str(row["smtp"]),
        "payments": str(payment),
        "transactions": str(transaction),
        "ledger-entries": str(ledger_entry),
        "balance-notifications": str(row["notification"]),
        "event-subscriptions": str(row["subscription"]),
        "webhook-deliveries": str(row["delivery"]),
        "webhook-attempts": str(row["attempt"]),
        "timezones": "Europe/Kyiv",
    }


def _wire_request(case: Any) -> requests.PreparedRequest:
    """The request schemathesis would send, as bytes on the wire."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    taken = ("method", "url", "headers", "params", "data", "json", "files", "cookies")
    return requests.Request(**{key: kwargs[key] for key in taken if key in kwargs}).prepare()


@schema.parametrize()
@schema.given(real_key=st.booleans())
@hypothesis.settings(
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.filter_too_much,
    ],
    deadline=None,
)
def test_answers_conform_to_the_document(
    case: Any, real_key: bool, app_client: TestClient, token: str, arranged: dict[str, str]
) -> None:
    segment = case.operation.path.removeprefix("/api/rest/admin/").split("/")[0]
    parameters = case.path_parameters or {}
    if real_key and segment in arranged:
        for name in ("key", "any"):
            if name in parameters:
                parameters[name] = arranged[segment]
    data = case.body.get("data") if isinstance(case.body, dict) else None
    if real_key and isinstance(data, dict) and "id" in data:
        if "any" in parameters:
            # the balance singletons: data.id addresses the account (its external id = its id)
            data["id"] = arranged["accounts"]
        elif "key" in parameters:
            # an update names the record of its URL, else 400 (code 110)
            data["id"] = str(parameters["key"])
    sent = _wire_request(case)
    # bytes as a server reads them: generated header values need not be ASCII
    headers = {name: value.encode("latin-1", "replace") for name, value in sent.headers.items()}
    headers["Authorization"] = token.encode()
    response = app_client.request(
        sent.method or "GET", sent.url or "", headers=headers, content=sent.body
    )
    case.validate_response(response, checks=CHECKS)
