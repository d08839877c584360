"""Balance thresholds that act (contract §7, issue 7): every write that changes a balance or a
threshold evaluates the state machine in its own transaction, logs each event in
/balance-notifications and emits it into the outbox; a write that rolls back emits nothing."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
import httpx2 as httpx
import pytest

from accounts_api.app import create_app
from accounts_api.db import outbox
from accounts_api.domain.thresholds import EVENT_NAMES, Event, State, Thresholds, evaluate
from tests.api.contract import PREFIX, ResourceContract, ids
from tests.conftest import BASE_URL, JSONAPI, Api, Db, settings_for, validate_document

MakeAccount = Callable[..., dict[str, Any]]
NOTIFICATIONS = f"{PREFIX}/balance-notifications"
LOW_CLEARED, HIGH_CLEARED, LOW_REACHED, HIGH_REACHED = (
    int(Event.LOW_CLEARED),
    int(Event.HIGH_CLEARED),
    int(Event.LOW_REACHED),
    int(Event.HIGH_REACHED),
)


def account_with(make_account: MakeAccount, **attributes: Any) -> dict[str, Any]:
    """An account created through the API, attributes named in Python (`balance_low_threshold`)."""
    return make_account(**{name.replace("_", "-"): value for name, value in attributes.items()})


def log(api: Api, account_id: object) -> list[tuple[int, str]]:
    """(event id, balance) of the account's notifications, in the order they were written."""
    response = api.get(NOTIFICATIONS, params={"filter[account.id]": str(account_id)})
    assert response.status_code == 200, response.text
    rows = response.json()["data"]
    return [(row["attributes"]["event-id"], row["attributes"]["account-balance"]) for row in rows]


def outboxed(db: Db, account_id: object) -> list[tuple[str, int]]:
    rows = db.fetch(
        "SELECT event, balance_notification_id FROM outbox WHERE account_id = $1 ORDER BY id",
        int(str(account_id)),
    )
    return [(row["event"], row["balance_notification_id"]) for row in rows]


def state(db: Db, account_id: object) -> int:
    return int(
        db.fetchval(
            "SELECT state_id FROM account_balance_notification_settings WHERE account_id = $1",
            int(str(account_id)),
        )
    )


def balance(api: Api, account_id: object) -> Decimal:
    return Decimal(
        api.get(f"{PREFIX}/accounts/{account_id}").json()["data"]["attributes"]["balance"]
    )


def linked(account_id: object) -> dict[str, Any]:
    return {"account": {"data": {"type": "accounts", "id": str(account_id)}}}


def pay(
    api: Api, account_id: object, amount: Decimal, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {
        "data": {
            "type": "payments",
            "attributes": {"amount": str(amount)},
            "relationships": linked(account_id),
        }
    }
    return api.post(f"{PREFIX}/payments", body, headers=headers)


# Each money path, as a way to take an account from its balance to a target balance.
def by_payment(api: Api, account: dict[str, Any], target: Decimal) -> None:
    response = pay(api, account["id"], target - balance(api, account["id"]))
    assert response.status_code == 201, response.text


def by_transaction(api: Api, account: dict[str, Any], target: Decimal) -> None:
    body = {
        "data": {
            "type": "transactions",
            # a positive amount is a charge (contract §5.7)
            "attributes": {"amount": str(balance(api, account["id"]) - target)},
            "relationships": linked(account["id"]),
        }
    }
    response = api.post(f"{PREFIX}/transactions", body)
    assert response.status_code == 201, response.text


def by_correction(api: Api, account: dict[str, Any], target: Decimal) -> None:
    delta = target - balance(api, account["id"])
    body = {
        "data": {
            "type": "balance-correction",
            "id": account["id"],
            "attributes": {"correction": str(delta)},
        }
    }
    response = api.put(f"{PREFIX}/accounts/{account['id']}/balance-correction", body)
    assert response.status_code == 200, response.text


def by_absolute_balance(api: Api, account: dict[str, Any], target: Decimal) -> None:
    external_id = account["attributes"]["external-id"]
    body = {"data": {"type": "balances", "id": external_id, "attributes": {"balance": str(target)}}}
    response = api.put(f"{PREFIX}/accounts/any/balance", body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "move",
    [by_payment, by_transaction, by_correction, by_absolute_balance],
    ids=lambda f: f.__name__,
)
def test_each_money_path_crosses_each_threshold(
    api: Api, db: Db, make_account: MakeAccount, move: Callable[..., None]
) -> None:
    account = account_with(
        make_account, balance_low_threshold="10", balance_high_threshold="100", external_id=4242
    )
    # the opening balance 0 is below the low threshold: reached at creation
    expected = [(LOW_REACHED, "0.0")]
    for target, events in [
        ("50", [LOW_CLEARED]),
        ("10", []),  # strict: equal to low is not below it
        ("100", []),  # nor equal to high above it
        ("150", [HIGH_REACHED]),
        ("1000", []),  # still high
        ("50", [HIGH_CLEARED]),
        ("5", [LOW_REACHED]),
        ("-7", []),  # still low
        ("150.5", [LOW_CLEARED, HIGH_REACHED]),  # low to high in one step: two events
        ("9.99", [HIGH_CLEARED, LOW_REACHED]),
    ]:
        move(api, account, Decimal(target))
        expected += [(event, _wire(target)) for event in events]
        assert log(api, account["id"]) == expected, f"after moving to {target}"
    assert state(db, account["id"]) == int(State.LOW)
    # one outbox event per log row, in the same order, named as Yeti names them
    notification_ids = ids(
        api.get(NOTIFICATIONS, params={"filter[account.id]": account["id"], "sort": "id"})
    )
    assert outboxed(db, account["id"]) == [
        (EVENT_NAMES[Event(event)], notification)
        for (event, _), notification in zip(expected, notification_ids, strict=True)
    ]


def _wire(text: str) -> str:
    value = Decimal(text)
    rendered = format(value.normalize(), "f")
    return rendered if "." in rendered else f"{rendered}.0"


def test_a_rollback_crosses_back(api: Api, db: Db, make_account: MakeAccount) -> None:
    account = account_with(make_account, balance_low_threshold="10", balance_high_threshold="100")
    response = pay(api, account["id"], Decimal(200))
    assert response.status_code == 201
    payment = response.json()["data"]["id"]
    assert api.post(f"{PREFIX}/payments/{payment}/rollback").status_code == 200
    assert log(api, account["id"]) == [
        (LOW_REACHED, "0.0"),
        (LOW_CLEARED, "200.0"),
        (HIGH_REACHED, "200.0"),
        (HIGH_CLEARED, "0.0"),
        (LOW_REACHED, "0.0"),
    ]
    assert state(db, account["id"]) == int(State.LOW)


def test_threshold_changes_are_evaluated_at_once(
    api: Api, db: Db, make_account: MakeAccount
) -> None:
    account = account_with(make_account)
    key = account["id"]
    assert log(api, key) == []

    def update(**attributes: Any) -> None:
        body = {"data": {"type": "accounts", "id": key, "attributes": attributes}}
        response = api.patch(f"{PREFIX}/accounts/{key}", body)
        assert response.status_code == 200, response.text

    # a low threshold set above the balance: "low reached" at once
    update(**{"balance-low-threshold": "10"})
    assert log(api, key) == [(LOW_REACHED, "0.0")]
    # an update that does not move the thresholds fires nothing
    update(name="renamed")
    update(**{"balance-low-threshold": "5"})
    assert log(api, key) == [(LOW_REACHED, "0.0")]
    # cleared when the threshold goes away (NULL is never reached)
    update(**{"balance-low-threshold": None})
    assert log(api, key)[1:] == [(LOW_CLEARED, "0.0")]
    # a high threshold set below the balance: "high reached"
    update(**{"balance-high-threshold": "-5"})
    assert log(api, key)[2:] == [(HIGH_REACHED, "0.0")]
    # both at once, the balance now below low: high cleared, then low reached
    update(**{"balance-low-threshold": "1", "balance-high-threshold": "2"})
    assert log(api, key)[3:] == [(HIGH_CLEARED, "0.0"), (LOW_REACHED, "0.0")]
    assert state(db, key) == int(State.LOW)
    rows = api.get(NOTIFICATIONS, params={"filter[account.id]": key}).json()["data"]
    assert [
        (r["attributes"]["low-threshold"], r["attributes"]["high-threshold"]) for r in rows
    ] == [
        ("10.0", None),
        (None, None),
        (None, "-5.0"),
        ("1.0", "2.0"),
        ("1.0", "2.0"),
    ]


def test_a_refused_write_changes_no_state(api: Api, db: Db, make_account: MakeAccount) -> None:
    account = account_with(make_account, balance_low_threshold="10", balance_high_threshold="100")
    body = {"data": {"type": "accounts", "id": account["id"], "attributes": {"vat": "101"}}}
    response = api.patch(f"{PREFIX}/accounts/{account['id']}", body)
    assert response.status_code == 422
    assert log(api, account["id"]) == [(LOW_REACHED, "0.0")]


def test_a_write_that_rolls_back_emits_nothing(api: Api, db: Db, make_account: MakeAccount) -> None:
    """The payment's transaction is refused at commit (a deferred trigger stands for any
    failure after the events were written): no log row, no outbox event, state unchanged."""
    account = account_with(make_account, balance_low_threshold="10", balance_high_threshold="100")
    db.execute(
        "CREATE FUNCTION refuse_13() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.amount = 13.13 THEN RAISE EXCEPTION 'refused at commit'; END IF;"
        " RETURN NULL; END $$;"
        " CREATE CONSTRAINT TRIGGER refuse_13 AFTER INSERT ON payments"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_13()"
    )
    try:
        response = pay(api, account["id"], Decimal("13.13"))
        assert response.status_code == 500
        # a keyed write's events are in the key's transaction: rolled back with it too
        keyed = pay(api, account["id"], Decimal("13.13"), {"Idempotency-Key": "refused-13"})
        assert keyed.status_code == 500
    finally:
        db.execute("DROP TRIGGER refuse_13 ON payments; DROP FUNCTION refuse_13()")
    assert log(api, account["id"]) == [(LOW_REACHED, "0.0")]
    assert len(outboxed(db, account["id"])) == 1
    assert state(db, account["id"]) == int(State.LOW)
    assert balance(api, account["id"]) == 0
    # the same payment, committed, emits its event
    assert pay(api, account["id"], Decimal("13.13")).status_code == 201
    assert log(api, account["id"])[1:] == [(LOW_CLEARED, "13.13")]


def test_the_outbox_event_tells_the_account_and_wakes_the_workers(
    api: Api, db: Db, database_url: str, make_account: MakeAccount, contractor_id: int
) -> None:
    contact = db.fetchval(
        "INSERT INTO contacts (contractor_id, email) VALUES ($1, 'ops@example.com') RETURNING id",
        contractor_id,
    )
    account = account_with(
        make_account, balance_high_threshold="100", send_balance_notifications_to=[contact]
    )

    async def listen_while_paying() -> list[str]:
        connection = await asyncpg.connect(database_url)
        heard: list[str] = []
        try:
            await connection.add_listener(outbox.CHANNEL, lambda *args: heard.append(args[2]))
            await asyncio.to_thread(pay, api, account["id"], Decimal("100.5"))
            for _ in range(200):  # a generous deadline: 20 s
                if heard:
                    break
                await asyncio.sleep(0.1)
        finally:
            await connection.close()
        return heard

    assert asyncio.run(listen_while_paying()) == [outbox.CHANNEL]
    row = db.fetchrow("SELECT event, data FROM outbox WHERE account_id = $1", int(account["id"]))
    assert row is not None and row["event"] == "AccountHighThesholdReached"
    data = row["data"]
    assert data["id"] == int(account["id"])
    assert data["name"] == account["attributes"]["name"]
    assert data["balance"] == "100.5"
    assert data["balance_low_threshold"] is None
    assert data["balance_high_threshold"] == "100.0"
    assert data["send_balance_notifications_to"] == [contact]
    assert data["currency_name"] == "USD"


def test_account_delete_keeps_the_log(api: Api, db: Db, make_account: MakeAccount) -> None:
    account = account_with(make_account, balance_low_threshold="10")
    assert api.delete(f"{PREFIX}/accounts/{account['id']}").status_code == 204
    response = api.get(NOTIFICATIONS)
    [row] = response.json()["data"]
    assert row["attributes"]["event"] == "AccountLowThesholdReached"
    # the linkage stays, as the row does
    assert row["relationships"]["account"]["data"] == {"type": "accounts", "id": account["id"]}
    assert len(outboxed(db, account["id"])) == 1


def test_log_document_filters_and_sorts(api: Api, db: Db, make_account: MakeAccount) -> None:
    first = account_with(make_account, balance_low_threshold="10", balance_high_threshold="100")
    second = account_with(make_account, balance_high_threshold="-1")
    assert pay(api, first["id"], Decimal(500)).status_code == 201
    response = api.get(NOTIFICATIONS, params={"sort": "-id"})
    assert response.status_code == 200
    document = response.json()
    assert document["meta"] == {"total-count": 4}
    newest = document["data"][0]
    assert newest["type"] == "balance-notifications"
    assert list(newest["attributes"]) == [
        "event-id",
        "event",
        "account-balance",
        "low-threshold",
        "high-threshold",
        "created-at",
    ]
    assert newest["attributes"] | {"created-at": None} == {
        "event-id": HIGH_REACHED,
        "event": "AccountHighThesholdReached",
        "account-balance": "500.0",
        "low-threshold": "10.0",
        "high-threshold": "100.0",
        "created-at": None,
    }
    assert newest["relationships"]["account"]["data"] == {"type": "accounts", "id": first["id"]}
    everything = ids(api.get(NOTIFICATIONS, params={"sort": "id"}))
    newest_first = api.get(NOTIFICATIONS, params={"sort": "-created-at"}).json()["data"]
    times = [row["attributes"]["created-at"] for row in newest_first]
    assert times == sorted(times, reverse=True)
    assert sorted(int(row["id"]) for row in newest_first) == everything
    by_event = api.get(NOTIFICATIONS, params={"filter[event_id_eq]": str(HIGH_REACHED)})
    assert [r["relationships"]["account"]["data"]["id"] for r in by_event.json()["data"]] == [
        second["id"],
        first["id"],
    ]
    assert ids(api.get(NOTIFICATIONS, params={"filter[event_id_in]": "1,3"})) == [
        everything[0],
        everything[2],
    ]
    assert ids(api.get(NOTIFICATIONS, params={"filter[account.id]": second["id"]})) == [
        everything[1]
    ]
    assert ids(
        api.get(NOTIFICATIONS, params={"filter[created_at_gt]": "2000-01-01T00:00:00Z"})
    ) == (everything)
    assert (
        ids(api.get(NOTIFICATIONS, params={"filter[created_at_lt]": "2000-01-01T00:00:00Z"})) == []
    )
    page = api.get(NOTIFICATIONS, params={"page[size]": "3", "page[number]": "2", "sort": "id"})
    assert ids(page) == everything[3:]
    # sorting by anything else is refused, as for every resource
    assert api.get(NOTIFICATIONS, params={"sort": "event"}).status_code == 400
    # read-only
    assert api.post(NOTIFICATIONS, {"data": {"type": "balance-notifications"}}).status_code == 405
    included = api.get(NOTIFICATIONS, params={"include": "account"}).json()["included"]
    assert {item["id"] for item in included} == {first["id"], second["id"]}


class TestBalanceNotificationsContract(ResourceContract):
    path = "balance-notifications"
    type = "balance-notifications"
    creatable = False

    made = 0

    def make(self, api: Api) -> str:
        TestBalanceNotificationsContract.made += 1
        name = f"made-{self.made}"
        contractor = api.post(
            f"{PREFIX}/contractors",
            {
                "data": {
                    "type": "contractors",
                    "attributes": {
                        "name": name,
                        "enabled": True,
                        "vendor": True,
                        "customer": False,
                    },
                }
            },
        ).json()["data"]["id"]
        body = {
            "data": {
                "type": "accounts",
                "attributes": {
                    "name": name,
                    "currency": "USD",
                    "balance-low-threshold": "1",
                },
                "relationships": {
                    "contractor": {"data": {"type": "contractors", "id": contractor}}
                },
            }
        }
        account = api.post(f"{PREFIX}/accounts", body).json()["data"]["id"]
        return str(ids(api.get(NOTIFICATIONS, params={"filter[account.id]": account}))[0])


# -- many writers at once ---------------------------------------------------------------

WRITERS = 64
LOW, HIGH = Decimal(0), Decimal(100)


def test_concurrent_corrections_emit_exactly_what_the_ledger_implies(
    database_url: str, token: str, db: Db, clean_database: None
) -> None:
    """64 corrections at once through two app instances (as two workers would), oscillating
    around both thresholds of one account: the log is exactly the state machine run over the
    ledger's balances in commit order, and the outbox holds one event per log row."""
    contractor = db.fetchval(
        "INSERT INTO contractors (name, enabled, vendor, customer)"
        " VALUES ('hot', true, true, true) RETURNING id"
    )
    rng = random.Random(7)
    deltas = [Decimal(rng.randint(-150, 150)) or Decimal(1) for _ in range(WRITERS)]
    headers = {"Accept": JSONAPI, "Content-Type": JSONAPI, "Authorization": token}

    async def main() -> tuple[str, list[int]]:
        apps = [create_app(settings_for(database_url, pool_size=5)) for _ in range(2)]
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
        ):
            clients = [
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
                for app in apps
            ]
            try:
                body = {
                    "data": {
                        "type": "accounts",
                        "attributes": {
                            "name": "hot",
                            "currency": "USD",
                            "balance-low-threshold": str(LOW),
                            "balance-high-threshold": str(HIGH),
                        },
                        "relationships": {
                            "contractor": {"data": {"type": "contractors", "id": str(contractor)}}
                        },
                    }
                }
                created = await clients[0].post(
                    f"{PREFIX}/accounts", content=json.dumps(body), headers=headers
                )
                assert created.status_code == 201, created.text
                key = created.json()["data"]["id"]

                async def correct(index: int, delta: Decimal) -> int:
                    body = {
                        "data": {
                            "type": "balance-correction",
                            "id": key,
                            "attributes": {"correction": str(delta)},
                        }
                    }
                    response = await clients[index % 2].put(
                        f"{PREFIX}/accounts/{key}/balance-correction",
                        content=json.dumps(body),
                        headers=headers,
                    )
                    validate_document(response)
                    return response.status_code

                statuses = await asyncio.wait_for(
                    asyncio.gather(*(correct(i, d) for i, d in enumerate(deltas))), 120
                )
            finally:
                for client in clients:
                    await client.aclose()
        return key, list(statuses)

    key, statuses = asyncio.run(main())
    assert statuses == [200] * WRITERS
    account_id = int(key)
    balances = [
        row["balance_after"]
        for row in db.fetch(
            "SELECT balance_after FROM ledger_entries WHERE account_id = $1 ORDER BY id",
            account_id,
        )
    ]
    assert len(balances) == WRITERS + 1  # the opening entry and one per correction
    assert balances[-1] == sum(deltas)
    # the state machine over the balances, in the order they were committed
    expected: list[tuple[int, Decimal]] = []
    current = State.NONE
    for after in balances:
        outcome = evaluate(current, Thresholds(LOW, HIGH), after)
        expected += [(int(event), after) for event in outcome.events]
        current = outcome.state
    logged = db.fetch(
        "SELECT id, event_id, account_balance FROM balance_notifications WHERE account_id = $1"
        " ORDER BY id",
        account_id,
    )
    assert [(row["event_id"], row["account_balance"]) for row in logged] == expected
    assert len(expected) > 10  # the oscillation crossed the thresholds many times
    assert state(db, account_id) == int(current)
    assert outboxed(db, account_id) == [
        (EVENT_NAMES[Event(row["event_id"])], row["id"]) for row in logged
    ]
