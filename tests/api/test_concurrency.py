"""Concurrency (issue 3): fifty clients move money at once through one app instance with a
pool of ten real PostgreSQL connections. Every accepted movement must land exactly once: the
balance ends at the opening balance plus the exact sum of the movements (payments add,
transactions charge, corrections add), with one ledger entry per movement and a consistent
balance_after chain. Attribute updates running alongside must not overwrite the balance, and
concurrent rollbacks of one payment reverse it once."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx2 as httpx

from accounts_api.app import create_app
from accounts_api.db import ledger
from accounts_api.settings import Settings
from tests.api.contract import PREFIX
from tests.conftest import BASE_URL, JSONAPI, ROOT, SECRET, Api, Db, validate_document

CLIENTS = 50
REQUESTS_PER_CLIENT = 20
POOL_SIZE = 10
# a hang (pool starvation, a lock nobody releases) must fail the test, not stall the suite
DEADLINE_SECONDS = 60
OPENING = Decimal("1234.5678")

MakeAccount = Callable[..., dict[str, Any]]


def wire(value: Decimal) -> str:
    """contract §0.2: a decimal renders as BigDecimal#to_s("F"), at least one fraction digit."""
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def error(attribute: str, message: str) -> dict[str, Any]:
    return {
        "title": message,
        "detail": f"{attribute} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/attributes/{attribute}"},
        "status": "422",
    }


def random_amount(rng: random.Random) -> Decimal:
    """A non-zero signed decimal with 0 to 4 fractional digits, up to 10^6 in magnitude."""
    while True:
        amount = Decimal(rng.randint(-1_000_000, 1_000_000)) / Decimal(10) ** rng.randint(0, 4)
        if amount:
            return amount


def as_sent(rng: random.Random, amount: Decimal) -> str | float:
    """contract §0.2: numbers may be sent as JSON numbers or strings."""
    return float(amount) if rng.random() < 0.5 else str(amount)


@dataclass
class Planned:
    """One request a client will send, with what it should do."""

    label: str
    method: str
    path: str
    body: dict[str, Any] | None
    kind: str  # payment | transaction | correction | zero | attributes | rollback
    account: int
    amount: Decimal = Decimal(0)
    attributes: dict[str, str] = field(default_factory=dict)
    payment: int = 0

    @property
    def effect(self) -> Decimal:
        """What the request adds to the balance when accepted."""
        if self.kind in ("payment", "correction"):
            return self.amount
        if self.kind == "transaction":
            return -self.amount
        return Decimal(0)


@dataclass
class Outcome:
    planned: Planned
    status: int
    document: Any


@dataclass
class Run:
    outcomes: list[Outcome]
    # exceptions the app raised (a 500) and invalid documents, with the request's label
    problems: list[str]
    disagreements: list[ledger.Disagreement]


def movement(rng: random.Random, label: str, account: int, zero_rate: float = 0.0) -> Planned:
    kind = rng.choice(("payment", "transaction", "correction"))
    amount = random_amount(rng)
    reference = {"data": {"type": "accounts", "id": str(account)}}
    if kind == "correction":
        body = {
            "data": {
                "type": "balance-correction",
                "id": str(account),
                "attributes": {"correction": as_sent(rng, amount)},
            }
        }
        method = rng.choice(("PUT", "PATCH"))
        path = f"{PREFIX}/accounts/{account}/balance-correction"
        return Planned(label, method, path, body, kind, account, amount)
    zero = rng.random() < zero_rate
    sent: str | float | int = rng.choice((0, "0", "0.0000")) if zero else as_sent(rng, amount)
    text = "notes" if kind == "payment" else "description"
    body = {
        "data": {
            "type": f"{kind}s",
            "attributes": {"amount": sent, text: label},
            "relationships": {"account": reference},
        }
    }
    if zero:
        return Planned(label, "POST", f"{PREFIX}/{kind}s", body, "zero", account)
    return Planned(label, "POST", f"{PREFIX}/{kind}s", body, kind, account, amount)


def attribute_update(rng: random.Random, label: str, account: int) -> Planned:
    """A PUT or PATCH of some account attributes, with values valid whatever the account's
    other values are (min-balance < 0 <= max-balance, low threshold < 0 < high threshold)."""

    def fraction(low: int, high: int) -> Decimal:
        return Decimal(rng.randint(low, high)) / 10_000

    candidates = {
        "name": label,
        "vat": wire(fraction(0, 1_000_000)),
        "min-balance": wire(fraction(-10_000_000, -1)),
        "max-balance": wire(fraction(0, 10_000_000)),
        "balance-low-threshold": wire(fraction(-1_000_000, -1)),
        "balance-high-threshold": wire(fraction(1, 1_000_000)),
    }
    keys = rng.sample(sorted(candidates), rng.randint(1, len(candidates)))
    attributes = {key: candidates[key] for key in keys}
    body = {"data": {"type": "accounts", "id": str(account), "attributes": attributes}}
    method = rng.choice(("PUT", "PATCH"))
    planned = Planned(label, method, f"{PREFIX}/accounts/{account}", body, "attributes", account)
    planned.attributes = attributes
    return planned


def drive(database_url: str, token: str, plans: list[list[Planned]]) -> Run:
    """Runs every client's plan concurrently against a fresh app instance (its own pool of
    POOL_SIZE connections), then asks the ledger for disagreeing accounts."""

    async def main() -> Run:
        settings = Settings(
            database_url=database_url,
            data_dir=ROOT / "var" / "test-data",
            token_lifetime=None,
            pool_size=POOL_SIZE,
            secret_key_env=SECRET,
        )
        app = create_app(settings)
        outcomes: list[Outcome] = []
        problems: list[str] = []
        headers = {"Accept": JSONAPI, "Content-Type": JSONAPI, "Authorization": token}
        async with app.router.lifespan_context(app):
            # the pool opens connections lazily: open them all, so that the first requests
            # already run side by side rather than one after another on the first connection
            pool = app.state.pool
            warm = [await pool.acquire() for _ in range(POOL_SIZE)]
            for connection in warm:
                await pool.release(connection)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:

                async def client_session(plan: list[Planned]) -> None:
                    for planned in plan:
                        content = json.dumps(planned.body).encode() if planned.body else None
                        try:
                            response = await client.request(
                                planned.method, planned.path, content=content, headers=headers
                            )
                            validate_document(response)
                        except Exception as exc:  # the exact exception goes in the report
                            problems.append(
                                f"{planned.label} {planned.method} {planned.path}: {exc!r}"
                            )
                            continue
                        document = response.json() if response.content else None
                        outcomes.append(Outcome(planned, response.status_code, document))

                await asyncio.wait_for(
                    asyncio.gather(*(client_session(plan) for plan in plans)), DEADLINE_SECONDS
                )
            async with pool.acquire() as connection:
                disagreements = await ledger.disagreements(connection)
        return Run(outcomes, problems, disagreements)

    return asyncio.run(main())


def check_responses(outcomes: list[Outcome]) -> list[str]:
    """Each response as the contract reads; returns the mismatches."""
    mismatches = []
    for outcome in outcomes:
        planned, status, document = outcome.planned, outcome.status, outcome.document
        where = f"{planned.label} {planned.method} {planned.path}"
        if planned.kind == "zero":
            expected = {"errors": [error("amount", "must be other than 0")]}
            if (status, document) != (422, expected):
                mismatches.append(f"{where}: {status} {document}")
            continue
        expected_status = 201 if planned.kind in ("payment", "transaction") else 200
        if status != expected_status:
            mismatches.append(f"{where}: {status} {document}")
            continue
        data = document["data"]
        attributes = data["attributes"]
        if planned.kind in ("payment", "transaction"):
            linkage = data["relationships"]["account"]["data"]
            wrong = (
                attributes["amount"] != wire(planned.amount)
                or linkage != {"type": "accounts", "id": str(planned.account)}
                or (planned.kind == "payment" and attributes["status"] != "completed")
            )
        elif planned.kind == "correction":
            # contract §5.9: exactly name and balance
            wrong = (
                data["id"] != str(planned.account)
                or data["links"] != {"self": f"{BASE_URL}{PREFIX}/balance-correction"}
                or sorted(attributes) != ["balance", "name"]
                or not isinstance(attributes["name"], str)
            )
        elif planned.kind == "attributes":
            # the update's own values, read back in its transaction
            wrong = data["id"] != str(planned.account) or any(
                attributes[key] != value for key, value in planned.attributes.items()
            )
        else:
            wrong = attributes["status"] != "rolled_back" or attributes["rolledback-at"] is None
        if wrong:
            mismatches.append(f"{where}: {document}")
    return mismatches


def ledger_entries(db: Db, account: int) -> list[dict[str, Any]]:
    return [
        dict(row)
        for row in db.fetch(
            "SELECT id, amount, balance_after, kind, source_type, source_id, admin_id"
            " FROM ledger_entries"
            " WHERE account_id = $1 ORDER BY id",
            account,
        )
    ]


def expected_entry(outcome: Outcome) -> tuple[str, str, int, Decimal]:
    planned = outcome.planned
    if planned.kind == "correction":
        return ("correction", "Account", planned.account, planned.amount)
    key = int(outcome.document["data"]["id"])
    if planned.kind == "payment":
        return ("payment", "Payment", key, planned.amount)
    return ("transaction", "Transaction", key, -planned.amount)


def check_ledger(
    db: Db, admin_id: int, account: int, opening: Decimal, accepted: list[Outcome]
) -> None:
    """The account's balance is the opening balance plus the accepted effects; its ledger
    holds the arrangement's two entries then one entry per accepted movement, each the
    previous balance_after plus its amount; the balances the responses showed are in it."""
    expected_balance = opening + sum((o.planned.effect for o in accepted), Decimal(0))
    entries = ledger_entries(db, account)
    balance = db.fetchval("SELECT balance FROM accounts WHERE id = $1", account)
    total = db.fetchval("SELECT sum(amount) FROM ledger_entries WHERE account_id = $1", account)
    assert (balance, total) == (expected_balance, expected_balance), (
        f"account {account}: balance {balance}, ledger total {total},"
        f" opening + accepted movements {expected_balance}"
    )

    running = Decimal(0)
    broken = []
    for entry in entries:
        running += entry["amount"]
        if entry["balance_after"] != running:
            broken.append(entry)
    assert broken == [], f"balance_after chain broken, running sum {running}"
    assert entries[-1]["balance_after"] == expected_balance

    # the arrangement: the opening entry of the create, then db.set_balance's entry
    assert [(e["kind"], e["amount"]) for e in entries[:2]] == [
        ("opening", Decimal(0)),
        ("correction", opening),
    ]
    moved = entries[2:]
    assert len(moved) == len(accepted)
    assert {e["admin_id"] for e in moved} <= {admin_id}
    assert Counter(
        (e["kind"], e["source_type"], e["source_id"], e["amount"]) for e in moved
    ) == Counter(expected_entry(o) for o in accepted)

    # every balance a response showed is one the ledger went through
    by_payment = {e["source_id"]: e for e in moved if e["kind"] == "payment"}
    stale = []
    for outcome in accepted:
        data = outcome.document["data"]
        if outcome.planned.kind == "payment":
            entry = by_payment[int(data["id"])]
            before = entry["balance_after"] - entry["amount"]
            if Decimal(data["attributes"]["balance-before-payment"]) != before:
                stale.append((data["id"], data["attributes"]["balance-before-payment"], before))
    # (payment, balance-before-payment, the balance its ledger entry moved from)
    assert stale == []
    correction_balances = Counter(
        Decimal(o.document["data"]["attributes"]["balance"])
        for o in accepted
        if o.planned.kind == "correction"
    )
    assert correction_balances == Counter(
        e["balance_after"] for e in moved if e["kind"] == "correction"
    )


def accepted_movements(run: Run, account: int) -> list[Outcome]:
    return [
        o
        for o in run.outcomes
        if o.planned.account == account
        and o.planned.kind in ("payment", "transaction", "correction")
        and o.status in (200, 201)
    ]


def open_account(db: Db, make_account: MakeAccount, opening: Decimal = OPENING) -> int:
    account = int(make_account()["id"])
    db.set_balance(account, opening)
    return account


def test_fifty_clients_moving_one_accounts_money_lose_nothing(
    db: Db, database_url: str, token: str, admin_id: int, make_account: MakeAccount
) -> None:
    account = open_account(db, make_account)
    rng = random.Random(20240603)
    plans = [
        [
            movement(rng, f"c{client}-r{index}", account, zero_rate=0.02)
            for index in range(REQUESTS_PER_CLIENT)
        ]
        for client in range(CLIENTS)
    ]
    planned = [p for plan in plans for p in plan]
    assert {p.kind for p in planned} == {"payment", "transaction", "correction", "zero"}

    run = drive(database_url, token, plans)

    assert run.problems == []
    assert len(run.outcomes) == CLIENTS * REQUESTS_PER_CLIENT
    assert check_responses(run.outcomes) == []
    accepted = accepted_movements(run, account)
    assert len(accepted) == sum(p.kind != "zero" for p in planned)
    check_ledger(db, admin_id, account, OPENING, accepted)
    assert run.disagreements == []
    # contract §4.3: a payment writes a Payment create and an Account update; a transaction
    # and a correction an Account update
    audit = {
        (row["item_type"], row["event"]): row["count"]
        for row in db.fetch(
            "SELECT item_type, event, count(*) AS count FROM audit_log"
            " WHERE (item_type, event) <> ('Account', 'create') GROUP BY 1, 2"
        )
    }
    assert audit == {
        ("Account", "update"): len(accepted),
        ("Payment", "create"): sum(o.planned.kind == "payment" for o in accepted),
    }


def test_attribute_updates_alongside_movements_do_not_overwrite_balances(
    api: Api, db: Db, database_url: str, token: str, admin_id: int, make_account: MakeAccount
) -> None:
    accounts = [open_account(db, make_account), open_account(db, make_account, Decimal("-7.5"))]
    openings = dict(zip(accounts, (OPENING, Decimal("-7.5")), strict=True))
    rng = random.Random(1999)
    plans = []
    for client in range(CLIENTS):
        plan = []
        for index in range(REQUESTS_PER_CLIENT):
            label, account = f"c{client}-r{index}", rng.choice(accounts)
            if rng.random() < 0.3:
                plan.append(attribute_update(rng, f"{label}-a{account}", account))
            else:
                plan.append(movement(rng, label, account))
        plans.append(plan)
    updates = [p for plan in plans for p in plan if p.kind == "attributes"]

    run = drive(database_url, token, plans)

    assert run.problems == []
    assert len(run.outcomes) == CLIENTS * REQUESTS_PER_CLIENT
    assert check_responses(run.outcomes) == []
    assert run.disagreements == []
    for account in accounts:
        check_ledger(db, admin_id, account, openings[account], accepted_movements(run, account))
        # an update read the balance under its lock: one the ledger went through
        balances = {e["balance_after"] for e in ledger_entries(db, account)}
        seen = {
            Decimal(o.document["data"]["attributes"]["balance"])
            for o in run.outcomes
            if o.planned.kind == "attributes" and o.planned.account == account
        }
        assert seen - balances == set()

        final = api.get(f"{PREFIX}/accounts/{account}").json()["data"]["attributes"]
        expected = openings[account] + sum(
            (o.planned.effect for o in accepted_movements(run, account)), Decimal(0)
        )
        assert final["balance"] == wire(expected)
        for key in (
            "name",
            "vat",
            "min-balance",
            "max-balance",
            "balance-low-threshold",
            "balance-high-threshold",
        ):
            sent = {
                p.attributes[key] for p in updates if p.account == account and key in p.attributes
            }
            assert sent, key
            assert final[key] in sent, key


def test_concurrent_rollbacks_of_a_payment_reverse_it_once(
    api: Api, db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    account = open_account(db, make_account)
    rng = random.Random(77)
    payments: dict[int, Decimal] = {}
    for _ in range(10):
        amount = random_amount(rng)
        response = api.post(
            f"{PREFIX}/payments",
            {
                "data": {
                    "type": "payments",
                    "attributes": {"amount": str(amount)},
                    "relationships": {
                        "account": {"data": {"type": "accounts", "id": str(account)}}
                    },
                }
            },
        )
        assert response.status_code == 201, response.text
        payments[int(response.json()["data"]["id"])] = amount
    before = db.fetchval("SELECT balance FROM accounts WHERE id = $1", account)
    keys = sorted(payments)
    # each payment is rolled back by five neighbouring clients, which the pool serves at
    # the same time; then every client sends a movement
    plans = []
    for client in range(CLIENTS):
        key = keys[client * len(keys) // CLIENTS]
        rollback = Planned(
            f"c{client}-rollback",
            "POST",
            f"{PREFIX}/payments/{key}/rollback",
            None,
            "rollback",
            account,
            payments[key],
            payment=key,
        )
        plans.append([rollback, movement(rng, f"c{client}-movement", account)])

    run = drive(database_url, token, plans)

    assert run.problems == []
    rollbacks = [o for o in run.outcomes if o.planned.kind == "rollback"]
    assert len(rollbacks) == CLIENTS
    won = [o for o in rollbacks if o.status == 200]
    refused = [o for o in rollbacks if o.status != 200]
    assert check_responses([o for o in run.outcomes if o not in refused]) == []
    assert Counter(o.planned.payment for o in won) == Counter(keys)
    assert [(o.status, o.document) for o in refused] == [
        (422, {"errors": [error("status", "is already rolled back")]})
    ] * (CLIENTS - len(keys))
    statuses = db.fetch("SELECT status_id, rolledback_at FROM payments WHERE id = ANY($1)", keys)
    assert [r["status_id"] for r in statuses] == [40] * len(keys)  # rolled_back
    assert all(r["rolledback_at"] is not None for r in statuses)

    moved = accepted_movements(run, account)
    expected = (
        before
        - sum(payments.values(), Decimal(0))
        + sum((o.planned.effect for o in moved), Decimal(0))
    )
    assert db.fetchval("SELECT balance FROM accounts WHERE id = $1", account) == expected
    reversals = db.fetch(
        "SELECT source_id, amount FROM ledger_entries"
        " WHERE account_id = $1 AND kind = 'payment_rollback'",
        account,
    )
    assert Counter((r["source_id"], r["amount"]) for r in reversals) == Counter(
        (key, -amount) for key, amount in payments.items()
    )
    assert (
        db.fetchval("SELECT sum(amount) FROM ledger_entries WHERE account_id = $1", account)
        == expected
    )
    assert run.disagreements == []
