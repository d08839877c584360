"""The example pages of docs/api/ (issue 8, point 4): each test makes the exchanges of one page
through the real app and checks the page is what is committed, so the pages cannot go stale.
Regenerate them with ACCOUNTS_API_WRITE_EXAMPLES=1 (see tests/support/examples.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import account_body
from tests.api.contract import PREFIX
from tests.conftest import Api, Db
from tests.support.examples import PAGES, WRITE, Catalogue, check_or_write, recording, render_index

ACCOUNTS = f"{PREFIX}/accounts"
MakeAccount = Callable[..., dict[str, Any]]

EXAMPLES = Catalogue()
UPDATE = EXAMPLES.add(
    "Accounts API - update values",
    "PUT is partial, as PATCH (contract §2.10): only the attributes sent change.",
)
CREATE = EXAMPLES.add(
    "Accounts API - create",
    "A new account of a contractor (§2.9); the answer's Location is its own link.",
)
SHOW = EXAMPLES.add("Accounts API - show", "One account with every attribute (§2.3).")
INDEX = EXAMPLES.add(
    "Accounts API - index with filter, sort and include",
    "Accounts whose name contains `acme`, by name descending, with their contractors (§2.4-2.7).",
)
DELETE = EXAMPLES.add("Accounts API - delete", "An account without dependants is deleted (§2.11).")
INVALID = EXAMPLES.add(
    "Accounts API - create with invalid values",
    "A rule broken answers 422 with one error object per failure, pointing at the attribute (§3).",
)
UNAUTHENTICATED = EXAMPLES.add(
    "Accounts API - without a token",
    "A request without a valid Authorization header is refused: 401 (§1.3).",
)
CORRECTION = EXAMPLES.add(
    "Accounts API - balance correction",
    "A signed delta added to the balance (§5.9), only if the account is still as it was read"
    " (If-Match with the ETag of the read).",
)
PAYMENT = EXAMPLES.add(
    "Payments API - create, and its replay",
    "A payment adds to the balance (§5.6); sent again with the same Idempotency-Key it answers"
    " the first answer again and is not paid twice.",
)
NOTIFICATIONS = EXAMPLES.add(
    "Balance notifications API - index after a threshold crossing",
    "A charge takes the balance below the low threshold: the write logs the crossing (§7).",
)
SUBSCRIPTION = EXAMPLES.add(
    "Event subscriptions API - create",
    "A webhook subscription to an event; its secret is generated and shown only in this answer.",
)


@pytest.fixture(autouse=True)
def fresh_database(clean_database: None, db: Db) -> None:
    """Ids as in a fresh database, so the pages read as Yeti's do (`accounts/1`) and do not
    depend on the tests run before in this worker: every sequence of an emptied table starts
    again at 1 (a table that is not empty keeps its sequence, so nothing can collide)."""
    db.execute(
        """
        DO $$
        DECLARE
            owned record;
            empty boolean;
        BEGIN
            FOR owned IN
                SELECT s.oid::regclass AS sequence, d.refobjid::regclass AS owner
                FROM pg_class s
                JOIN pg_namespace n ON n.oid = s.relnamespace
                JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                WHERE s.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            LOOP
                EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s)', owned.owner) INTO empty;
                IF empty THEN
                    EXECUTE format('ALTER SEQUENCE %s RESTART', owned.sequence);
                END IF;
            END LOOP;
        END $$
        """
    )


def test_update_values(api: Api, contractor_id: int) -> None:
    created = api.post(ACCOUNTS, account_body(contractor_id, name="acme"))
    account_id = int(created.json()["data"]["id"])

    with recording(api, UPDATE) as client:
        response = client.put(
            f"{ACCOUNTS}/{account_id}",
            {
                "data": {
                    "type": "accounts",
                    "id": account_id,
                    "attributes": {"name": "name", "max-balance": 20, "invoice-period-id": 3},
                }
            },
        )

    assert response.status_code == 200, response.text


def test_create(api: Api, contractor_id: int) -> None:
    with recording(api, CREATE) as client:
        response = client.post(
            ACCOUNTS,
            account_body(
                contractor_id, name="acme-usd", **{"min-balance": "-100", "max-balance": "1000"}
            ),
        )

    assert response.status_code == 201, response.text


def test_show(api: Api, make_account: MakeAccount) -> None:
    account = make_account(name="acme-usd", **{"balance-low-threshold": "10"})

    with recording(api, SHOW) as client:
        response = client.get(f"{ACCOUNTS}/{account['id']}")

    assert response.status_code == 200, response.text


def test_index_with_filter_sort_and_include(api: Api, make_account: MakeAccount) -> None:
    for name in ("acme-usd", "acme-eur", "other"):
        make_account(name=name)

    with recording(api, INDEX) as client:
        response = client.get(
            ACCOUNTS,
            params={"filter[name_cont]": "acme", "sort": "-name", "include": "contractor"},
        )

    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 2


def test_delete(api: Api, make_account: MakeAccount) -> None:
    account = make_account(name="acme-usd")

    with recording(api, DELETE) as client:
        response = client.delete(f"{ACCOUNTS}/{account['id']}")

    assert response.status_code == 204, response.text


def test_create_with_invalid_values(api: Api, contractor_id: int) -> None:
    with recording(api, INVALID) as client:
        response = client.post(
            ACCOUNTS,
            account_body(contractor_id, **{"min-balance": 10, "max-balance": 0}),
        )

    assert response.status_code == 422, response.text


def test_without_a_token(api: Api) -> None:
    with recording(api, UNAUTHENTICATED) as client:
        response = client.get(ACCOUNTS, auth=False)

    assert response.status_code == 401, response.text


def test_balance_correction(api: Api, make_account: MakeAccount) -> None:
    account = make_account(name="acme-usd")

    with recording(api, CORRECTION) as client:
        read = client.get(f"{ACCOUNTS}/{account['id']}")
        response = client.patch(
            f"{ACCOUNTS}/{account['id']}/balance-correction",
            {
                "data": {
                    "type": "balance-correction",
                    "id": account["id"],
                    "attributes": {"correction": "-10.5"},
                }
            },
            headers={"If-Match": read.headers["etag"]},
        )

    assert response.status_code == 200, response.text


def test_payment_and_its_replay(api: Api, make_account: MakeAccount) -> None:
    account = make_account(name="acme-usd")
    body = {
        "data": {
            "type": "payments",
            "attributes": {"amount": "100.50", "notes": "topup"},
            "relationships": {"account": {"data": {"type": "accounts", "id": account["id"]}}},
        }
    }

    with recording(api, PAYMENT) as client:
        first = client.post(f"{PREFIX}/payments", body, headers={"Idempotency-Key": "topup-0001"})
        replay = client.post(f"{PREFIX}/payments", body, headers={"Idempotency-Key": "topup-0001"})
        read = client.get(f"{ACCOUNTS}/{account['id']}", params={"fields[accounts]": "balance"})

    assert first.status_code == 201, first.text
    assert replay.content == first.content
    assert read.json()["data"]["attributes"]["balance"] == "100.5"


def test_balance_notifications_after_a_threshold_crossing(
    api: Api, make_account: MakeAccount
) -> None:
    account = make_account(name="acme-usd", **{"balance-low-threshold": "-50"})

    with recording(api, NOTIFICATIONS) as client:
        charge = client.post(
            f"{PREFIX}/transactions",
            {
                "data": {
                    "type": "transactions",
                    "attributes": {"amount": "100", "description": "calls"},
                    "relationships": {
                        "account": {"data": {"type": "accounts", "id": account["id"]}}
                    },
                }
            },
        )
        response = client.get(
            f"{PREFIX}/balance-notifications", params={"filter[account.id]": account["id"]}
        )

    assert charge.status_code == 201, charge.text
    assert len(response.json()["data"]) == 1


def test_event_subscription_create(api: Api) -> None:
    with recording(api, SUBSCRIPTION) as client:
        response = client.post(
            f"{PREFIX}/event-subscriptions",
            {
                "data": {
                    "type": "event-subscriptions",
                    "attributes": {
                        "event": "AccountLowThesholdReached",
                        "url": "https://hooks.example.com/yeti",
                    },
                }
            },
        )

    assert response.status_code == 201, response.text


def test_the_index_lists_every_example() -> None:
    check_or_write(PAGES / "README.md", render_index(EXAMPLES))


def test_no_page_without_its_example() -> None:
    expected = {"README.md"} | {example.path.name for example in EXAMPLES.examples}
    strays = sorted(path for path in PAGES.glob("*.md") if path.name not in expected)
    if WRITE:
        for path in strays:
            path.unlink()
        return
    assert not strays, f"pages of no example (remove them, or regenerate): {strays}"
