"""One hot account (issue 10, item 3): the writes to one account that queue up in a worker are
done in one transaction (jsonapi/group_commit.py), each in its own savepoint, with its own
ledger entry, audit row, idempotency record, events and answer.

Most tests here arrange one batch exactly: a connection of the test holds the account's row
lock, the first request (a batch of one) waits on it in the database, the next ones queue up
behind it in arrival order, and the lock's release lets the first through and the rest run as
one batch. A batch's writes share their transaction's start time (`now()`), which is how the
tests see that they were batched (they cannot pass by running one write per transaction)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families

from accounts_api.app import create_app
from tests.api.contract import PREFIX
from tests.api.test_concurrency import (
    OPENING,
    MakeAccount,
    Outcome,
    Planned,
    Run,
    accepted_movements,
    check_ledger,
    check_responses,
    movement,
    open_account,
)
from tests.conftest import BASE_URL, JSONAPI, Db, settings_for, validate_document

PAYMENTS = f"{PREFIX}/payments"
DEADLINE = 60


@dataclass
class Sent:
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """The real app in this event loop, with a pool of its own, and an HTTP client for it."""

    def __init__(self, client: httpx.AsyncClient, token: str, pool: asyncpg.Pool):
        self.client = client
        self.token = token
        self.pool = pool

    async def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Sent:
        sent = {"Accept": JSONAPI, "Content-Type": JSONAPI, "Authorization": self.token}
        sent.update(headers or {})
        content = json.dumps(body).encode() if body is not None else None
        response = await self.client.request(method, path, content=content, headers=sent)
        validate_document(response)
        return Sent(response.status_code, response.headers, response.content)


@asynccontextmanager
async def running(database_url: str, token: str, pool_size: int = 4) -> AsyncIterator[Client]:
    app = create_app(settings_for(database_url, pool_size=pool_size))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Client(client, token, app.state.pool)


def run(database_url: str, token: str, scenario: Callable[[Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with running(database_url, token) as client:
            return await asyncio.wait_for(scenario(client), DEADLINE)

    return asyncio.run(main())


async def one_batch(
    client: Client, database_url: str, account: int, requests: list[tuple[Any, ...]]
) -> list[Sent]:
    """Sends `requests` ((method, path, body[, headers])) in this order while the account's
    row is locked: the first waits for the lock alone, the rest queue up behind it and run
    as one batch once the lock is released. Their answers, in the same order."""
    holder = await asyncpg.connect(database_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", account)
        tasks = []
        for request in requests:
            tasks.append(asyncio.create_task(client.send(*request)))
            await asyncio.sleep(0.02)  # in the queue before the next one arrives
        await asyncio.sleep(0.2)
        await transaction.commit()
        return list(await asyncio.gather(*tasks))
    finally:
        await holder.close()


def transaction_starts(db: Db, account: int, kinds: tuple[str, ...]) -> list[Any]:
    """The start time of the transaction of each of the account's ledger entries of these
    kinds, in ledger order."""
    return [
        row["created_at"]
        for row in db.fetch(
            "SELECT created_at FROM ledger_entries WHERE account_id = $1 AND kind = ANY($2)"
            " ORDER BY id",
            account,
            list(kinds),
        )
    ]


def correction(account: int, amount: str) -> tuple[str, str, dict[str, Any]]:
    return (
        "PUT",
        f"{PREFIX}/accounts/{account}/balance-correction",
        {
            "data": {
                "type": "balance-correction",
                "id": str(account),
                "attributes": {"correction": amount},
            }
        },
    )


def payment(account: int, amount: str, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "payments",
            "attributes": {"amount": amount, **attributes},
            "relationships": {"account": {"data": {"type": "accounts", "id": str(account)}}},
        }
    }


def balance(db: Db, account: int) -> Decimal:
    value: Decimal = db.fetchval("SELECT balance FROM accounts WHERE id = $1", account)
    return value


# -- many clients -------------------------------------------------------------------------


def test_many_clients_on_one_account_commit_in_batches_and_lose_nothing(
    db: Db, database_url: str, token: str, admin_id: int, make_account: MakeAccount
) -> None:
    account = open_account(db, make_account)
    rng = random.Random(10_3)
    plans = [
        [movement(rng, f"c{c}-r{r}", account, zero_rate=0.05) for r in range(8)] for c in range(32)
    ]

    async def scenario(client: Client) -> list[Outcome]:
        async def session(plan: list[Planned]) -> list[Outcome]:
            outcomes = []
            for planned in plan:
                sent = await client.send(planned.method, planned.path, planned.body)
                document = sent.json() if sent.body else None
                outcomes.append(Outcome(planned, sent.status, document))
            return outcomes

        done = await asyncio.gather(*(session(plan) for plan in plans))
        return [outcome for outcomes in done for outcome in outcomes]

    outcomes = run(database_url, token, scenario)

    assert check_responses(outcomes) == []
    accepted = [o for o in outcomes if o.planned.kind != "zero"]
    assert len(accepted) == sum(p.kind != "zero" for plan in plans for p in plan)
    moved = accepted_movements(Run(outcomes, [], []), account)
    check_ledger(db, admin_id, account, OPENING, moved)
    # one Account update per movement, one Payment create per payment
    audit = Counter(
        (row["item_type"], row["event"])
        for row in db.fetch(
            "SELECT item_type, event FROM audit_log WHERE item_id::text = ANY($1::text[])"
            " AND (item_type, event) <> ('Account', 'create')",
            [str(account)]
            + [o.document["data"]["id"] for o in moved if o.planned.kind == "payment"],
        )
    )
    assert audit == {
        ("Account", "update"): len(accepted),
        ("Payment", "create"): sum(o.planned.kind == "payment" for o in accepted),
    }
    # the writes shared transactions: far fewer than one per write
    starts = transaction_starts(db, account, ("payment", "transaction", "correction"))[1:]
    assert len(starts) == len(accepted)
    assert len(set(starts)) < len(accepted) / 2


# -- one arranged batch -------------------------------------------------------------------


def test_a_batch_is_one_transaction_whose_writes_each_answer_as_alone(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    account = open_account(db, make_account, Decimal(0))
    requests = [correction(account, "1")] + [correction(account, "0.01")] * 5

    answers = run(database_url, token, lambda c: one_batch(c, database_url, account, requests))

    assert [a.status for a in answers] == [200] * 6
    balances = [a.json()["data"]["attributes"]["balance"] for a in answers]
    assert balances == ["1.0", "1.01", "1.02", "1.03", "1.04", "1.05"]
    starts = transaction_starts(db, account, ("correction",))[1:]  # after the arrangement's
    assert len(starts) == 6 and len(set(starts[1:])) == 1 and starts[0] != starts[1]
    assert balance(db, account) == Decimal("1.05")


def test_an_invalid_write_in_a_batch_fails_alone(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    account = open_account(db, make_account, Decimal(0))
    db.execute(
        "CREATE FUNCTION hot_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$"
    )
    db.execute(
        "CREATE TRIGGER hot_test_refuse BEFORE INSERT ON payments FOR EACH ROW"
        " WHEN (NEW.amount = 66.6) EXECUTE FUNCTION hot_test_refuse()"
    )
    try:
        requests: list[tuple[Any, ...]] = [
            ("POST", PAYMENTS, payment(account, "1")),
            ("POST", PAYMENTS, payment(account, "2")),
            ("POST", PAYMENTS, payment(account, "0")),  # refused by validation: 422
            ("POST", PAYMENTS, payment(account, "66.6")),  # refused by the database: 500
            correction(account, "4"),
            ("POST", PAYMENTS, payment(account, "8")),
        ]

        async def scenario(client: Client) -> tuple[list[Sent], Sent, Sent]:
            batched = await one_batch(client, database_url, account, requests)
            alone_zero = await client.send(*requests[2])
            alone_refused = await client.send(*requests[3])
            return batched, alone_zero, alone_refused

        answers, alone_zero, alone_refused = run(database_url, token, scenario)
    finally:
        db.execute("DROP TRIGGER hot_test_refuse ON payments")
        db.execute("DROP FUNCTION hot_test_refuse()")

    assert [a.status for a in answers] == [201, 201, 422, 500, 200, 201]
    # the refused ones answer exactly as they do alone
    assert (answers[2].body, answers[3].body) == (alone_zero.body, alone_refused.body)
    assert answers[5].json()["data"]["attributes"]["balance-before-payment"] == "7.0"
    assert balance(db, account) == Decimal(15)
    amounts = db.fetch("SELECT amount FROM payments WHERE account_id = $1 ORDER BY id", account)
    assert [r["amount"] for r in amounts] == [1, 2, 8]
    starts = transaction_starts(db, account, ("payment", "correction"))[1:]
    assert len(set(starts[1:])) == 1  # 2, 4 and 8 committed together


def test_a_batch_whose_commit_fails_runs_its_writes_again_alone(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    """A deferred constraint refuses one payment at COMMIT: the batch's others still succeed,
    and the refused one gets the answer it gets alone (409: the trigger's lock_not_available)."""
    account = open_account(db, make_account, Decimal(0))
    db.execute("CREATE SEQUENCE hot_test_refusals")
    db.execute(
        "CREATE FUNCTION hot_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM nextval('hot_test_refusals');"
        " RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'lock_not_available'; END $$"
    )
    db.execute(
        "CREATE CONSTRAINT TRIGGER hot_test_refuse AFTER INSERT ON payments"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
        " WHEN (NEW.amount = 13.13) EXECUTE FUNCTION hot_test_refuse()"
    )
    try:
        requests: list[tuple[Any, ...]] = [
            ("POST", PAYMENTS, payment(account, "1")),
            ("POST", PAYMENTS, payment(account, "2")),
            ("POST", PAYMENTS, payment(account, "13.13")),
            correction(account, "4"),
            ("POST", PAYMENTS, payment(account, "8"), {"Idempotency-Key": "hot-commit-fails"}),
        ]

        async def scenario(client: Client) -> tuple[list[Sent], Sent]:
            batched = await one_batch(client, database_url, account, requests)
            return batched, await client.send(*requests[2])

        answers, alone = run(database_url, token, scenario)
        # refused twice in the batch's commit and in its own, then once alone
        refusals = db.fetchval("SELECT last_value FROM hot_test_refusals")
    finally:
        db.execute("DROP TRIGGER hot_test_refuse ON payments")
        db.execute("DROP FUNCTION hot_test_refuse()")
        db.execute("DROP SEQUENCE hot_test_refusals")

    assert [a.status for a in answers] == [201, 201, 409, 200, 201]
    assert answers[2].body == alone.body and alone.status == 409
    assert answers[2].headers["retry-after"] == alone.headers["retry-after"]
    assert refusals == 3
    assert balance(db, account) == Decimal(15)
    assert answers[3].json()["data"]["attributes"]["balance"] == "7.0"
    assert [r["amount"] for r in db.fetch("SELECT amount FROM payments ORDER BY id")] == [1, 2, 8]
    # the keyed one's record is that of its run alone, which committed
    stored = db.fetchrow("SELECT status, body FROM idempotency_keys WHERE key = 'hot-commit-fails'")
    assert stored is not None and (stored["status"], stored["body"]) == (201, answers[4].body)


def test_keyed_duplicates_in_one_batch_apply_once(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    account = open_account(db, make_account, Decimal(0))
    key = {"Idempotency-Key": "hot-duplicate"}
    requests: list[tuple[Any, ...]] = [
        ("POST", PAYMENTS, payment(account, "1")),
        ("POST", PAYMENTS, payment(account, "5"), key),
        ("POST", PAYMENTS, payment(account, "5"), key),
        ("POST", PAYMENTS, payment(account, "6"), key),  # the key, another request: 422
        ("POST", PAYMENTS, payment(account, "2")),
    ]

    answers = run(database_url, token, lambda c: one_batch(c, database_url, account, requests))

    assert [a.status for a in answers] == [201, 201, 201, 422, 201]
    first, replay = answers[1], answers[2]
    assert replay.body == first.body
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    for header in ("location", "etag", "content-type"):
        assert replay.headers[header] == first.headers[header]
    assert balance(db, account) == Decimal(8)
    assert db.fetchval("SELECT count(*) FROM payments WHERE account_id = $1", account) == 3
    starts = transaction_starts(db, account, ("payment",))
    assert len(starts) == 3 and starts[1] == starts[2]


def test_if_match_in_a_batch_is_checked_after_the_writes_before_it(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    account = open_account(db, make_account, Decimal(0))

    async def scenario(client: Client) -> list[Sent]:
        shown = await client.send("GET", f"{PREFIX}/accounts/{account}")
        tag = shown.headers["etag"]
        method, path, body = correction(account, "1")
        return await one_batch(
            client,
            database_url,
            account,
            [
                (method, path, body, {"If-Match": '"stale"'}),  # alone: 412, nothing changes
                (method, path, body, {"If-Match": tag}),  # the account as shown: applies
                (method, path, body, {"If-Match": tag}),  # changed by the one before: 412
                (method, path, body, {"If-Match": "*"}),
            ],
        )

    answers = run(database_url, token, scenario)

    assert [a.status for a in answers] == [412, 200, 412, 200]
    assert balance(db, account) == Decimal(2)


def test_threshold_crossings_in_a_batch_are_those_of_the_serial_order(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    amounts = ["2", "-1.5", "1", "-3", "0.25", "2", "-0.5"]
    limits = {"balance-low-threshold": "0.5", "balance-high-threshold": "2"}
    batched, serial = int(make_account(**limits)["id"]), int(make_account(**limits)["id"])

    async def scenario(client: Client) -> list[Sent]:
        for amount in amounts:
            assert (await client.send("POST", PAYMENTS, payment(serial, amount))).status == 201
        requests = [("POST", PAYMENTS, payment(batched, amount)) for amount in amounts]
        return await one_batch(client, database_url, batched, requests)

    answers = run(database_url, token, scenario)

    assert [a.status for a in answers] == [201] * len(amounts)

    def events(account: int) -> list[tuple[Any, ...]]:
        return [
            tuple(row)
            for row in db.fetch(
                "SELECT n.event_id, n.account_balance, o.event FROM balance_notifications n"
                " JOIN outbox o ON o.balance_notification_id = n.id"
                " WHERE n.account_id = $1 ORDER BY n.id",
                account,
            )
        ]

    assert len(events(serial)) >= 4
    assert events(batched) == events(serial)
    assert len(set(transaction_starts(db, batched, ("payment",))[1:])) == 1


def test_a_lone_write_sends_no_savepoint(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    """A batch of one is the unbatched path: one BEGIN, one COMMIT, no savepoint, no check."""
    account = open_account(db, make_account, Decimal(0))
    statements: list[str] = []

    async def scenario(client: Client) -> Sent:
        async with client.pool.acquire() as connection:  # the pool's only connection, warm
            connection.add_query_logger(lambda record: statements.append(record.query))
        return await client.send(*correction(account, "1"))

    async def main() -> Sent:
        async with running(database_url, token, pool_size=1) as client:
            return await scenario(client)

    answer = asyncio.run(main())

    assert answer.status == 200
    assert not [s for s in statements if "SAVEPOINT" in s or s == "SELECT 1"]
    assert len([s for s in statements if s.startswith(("BEGIN", "COMMIT"))]) == 2


def test_metrics_count_only_the_committed_writes_of_a_batch(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    account = open_account(db, make_account, Decimal(0))

    def moves(text: str) -> float:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "accounts_api_money_moves_total" and sample.labels == {
                    "kind": "payment"
                }:
                    return float(sample.value)
        return 0.0

    async def scenario(client: Client) -> tuple[float, list[Sent], float]:
        before = moves((await client.client.get("/metrics")).text)
        requests: list[tuple[Any, ...]] = [
            ("POST", PAYMENTS, payment(account, "1")),
            ("POST", PAYMENTS, payment(account, "2")),
            ("POST", PAYMENTS, payment(account, "0")),
            ("POST", PAYMENTS, payment(account + 10_000, "3")),  # no such account: 422
            ("POST", PAYMENTS, payment(account, "4")),
        ]
        answers = await one_batch(client, database_url, account, requests)
        return before, answers, moves((await client.client.get("/metrics")).text)

    before, answers, after = run(database_url, token, scenario)

    assert [a.status for a in answers] == [201, 201, 422, 422, 201]
    assert after - before == 3


# -- corrections without savepoints (issue 10) ----------------------------------------------


def logged_batch(
    database_url: str, token: str, account: int, requests: list[tuple[Any, ...]]
) -> tuple[list[Sent], list[str]]:
    """`one_batch` on an app with one pooled connection, and the statements it sent."""
    statements: list[str] = []

    async def main() -> list[Sent]:
        async with running(database_url, token, pool_size=1) as client:
            async with client.pool.acquire() as connection:  # the pool's only connection, warm
                connection.add_query_logger(lambda record: statements.append(record.query))
            return await one_batch(client, database_url, account, requests)

    return asyncio.run(asyncio.wait_for(main(), DEADLINE)), statements


def test_a_batch_of_corrections_sends_one_statement_each(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    """Each correction's movement, ledger entry and audit row are one statement, and in a
    batch it opens no savepoint; the account's row lock is taken by the first correction of a
    transaction and kept by the batch: BEGIN, the lock, one statement a correction, the check
    that the transaction can commit, COMMIT. The first, alone: BEGIN, lock, statement, COMMIT."""
    account = open_account(db, make_account, Decimal(0))
    requests = [correction(account, "1")] + [correction(account, "0.01")] * 4

    answers, statements = logged_batch(database_url, token, account, requests)

    assert [a.status for a in answers] == [200] * 5
    balances = [a.json()["data"]["attributes"]["balance"] for a in answers]
    assert balances == ["1.0", "1.01", "1.02", "1.03", "1.04"]
    # asyncpg reads the types of a statement's parameters the first time it prepares it
    introspection = ("'jit'", "typeinfo_tree", "pg_catalog")
    kinds = [s.rstrip(";") for s in statements if not any(i in s for i in introspection)]
    moves = [s for s in kinds if "INSERT INTO ledger_entries" in s]
    assert len(moves) == 5 and len(set(moves)) == 1
    lock = "SELECT * FROM accounts WHERE id = $1 FOR UPDATE"
    # before the lone write: the admin of the token (its first use)
    alone = kinds.index("BEGIN")
    assert kinds[alone:] == [
        *("BEGIN", lock, moves[0], "COMMIT"),
        *("BEGIN", lock, *moves[1:], "SELECT 1", "COMMIT"),
    ]
    starts = transaction_starts(db, account, ("correction",))[1:]
    assert len(starts) == 5 and len(set(starts[1:])) == 1 and starts[0] != starts[1]
    # each with its own audit row, as the statement of the unbatched path writes it
    audit = db.fetch(
        "SELECT object, object_changes, whodunnit FROM audit_log"
        " WHERE item_type = 'Account' AND item_id = $1 AND event = 'update' ORDER BY id",
        account,
    )
    assert [(r["object"], r["object_changes"]) for r in audit] == [
        ({"balance": "0"}, {"balance": ["0", "1"]}),
        ({"balance": "1"}, {"balance": ["1", "1.01"]}),
        ({"balance": "1.01"}, {"balance": ["1.01", "1.02"]}),
        ({"balance": "1.02"}, {"balance": ["1.02", "1.03"]}),
        ({"balance": "1.03"}, {"balance": ["1.03", "1.04"]}),
    ]


def test_an_invalid_correction_in_a_batch_fails_alone(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    """The second of three batched corrections is refused by validation (its refusal comes
    before it writes anything): it answers as alone, the others commit together."""
    account = open_account(db, make_account, Decimal(0))
    invalid = correction(account, "abc")
    requests = [correction(account, "1"), correction(account, "2"), invalid]
    requests += [correction(account, "4")]

    async def scenario(client: Client) -> tuple[list[Sent], Sent]:
        return await one_batch(client, database_url, account, requests), await client.send(*invalid)

    answers, alone = run(database_url, token, scenario)

    assert [a.status for a in answers] == [200, 200, 422, 200]
    assert answers[2].body == alone.body
    assert answers[3].json()["data"]["attributes"]["balance"] == "7.0"
    assert balance(db, account) == Decimal(7)
    starts = transaction_starts(db, account, ("correction",))[1:]
    assert len(starts) == 3 and starts[1] == starts[2] != starts[0]


def test_a_write_failing_without_a_savepoint_fails_alone_when_its_batch_runs_again(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    """A correction or payment opens no savepoint in a batch. One that the database refuses
    leaves the batch's transaction aborted: nothing of the batch commits, and the batch runs
    again with that write in a savepoint, where it fails alone, with the answer it has alone
    (the 500 of an unexpected error), while the others commit together, in the same order."""
    account = open_account(db, make_account, Decimal(0))
    db.execute("CREATE SEQUENCE hot_test_refusals")
    db.execute(
        "CREATE FUNCTION hot_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM nextval('hot_test_refusals');"
        " RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$"
    )
    db.execute(
        "CREATE TRIGGER hot_test_refuse BEFORE INSERT ON ledger_entries FOR EACH ROW"
        " WHEN (NEW.amount IN (66.6, 77.7)) EXECUTE FUNCTION hot_test_refuse()"
    )
    refused = correction(account, "66.6")
    refused_payment = ("POST", PAYMENTS, payment(account, "77.7"))
    try:
        requests: list[tuple[Any, ...]] = [
            correction(account, "1"),
            correction(account, "2"),
            ("POST", PAYMENTS, payment(account, "4"), {"Idempotency-Key": "hot-run-again"}),
            refused,
            correction(account, "8"),
            refused_payment,
            ("POST", PAYMENTS, payment(account, "16")),
        ]

        async def scenario(client: Client) -> tuple[list[Sent], Sent, Sent]:
            batched = await one_batch(client, database_url, account, requests)
            return batched, await client.send(*refused), await client.send(*refused_payment)

        answers, alone, alone_payment = run(database_url, token, scenario)
        # the batch ran three times: 66.6 refused without its savepoint, then in it twice;
        # 77.7 without, then in it; then each once alone
        refusals = db.fetchval("SELECT last_value FROM hot_test_refusals")
    finally:
        db.execute("DROP TRIGGER hot_test_refuse ON ledger_entries")
        db.execute("DROP FUNCTION hot_test_refuse()")
        db.execute("DROP SEQUENCE hot_test_refusals")

    assert [a.status for a in answers] == [200, 200, 201, 500, 200, 500, 201]
    assert (answers[3].body, answers[5].body) == (alone.body, alone_payment.body)
    assert refusals == 7
    assert answers[4].json()["data"]["attributes"]["balance"] == "15.0"
    assert balance(db, account) == Decimal(31)
    starts = transaction_starts(db, account, ("correction", "payment"))[1:]
    assert len(starts) == 5 and starts[0] != starts[1] and len(set(starts[1:])) == 1
    stored = db.fetchrow("SELECT status, body FROM idempotency_keys WHERE key = 'hot-run-again'")
    assert stored is not None and (stored["status"], stored["body"]) == (201, answers[2].body)
    assert db.fetchval(
        "SELECT count(*) FROM audit_log WHERE item_type = 'Account' AND item_id = $1"
        " AND event = 'update'",
        account,
    ) == len(starts)
    assert db.fetchval("SELECT count(*) FROM payments WHERE account_id = $1", account) == 2


def test_a_batch_of_payments_opens_no_savepoint(
    db: Db, database_url: str, token: str, make_account: MakeAccount
) -> None:
    """A payment refuses only before it writes: in a batch it opens no savepoint, and one
    refused by validation (422) fails alone all the same."""
    account = open_account(db, make_account, Decimal(0))
    requests: list[tuple[Any, ...]] = [
        ("POST", PAYMENTS, payment(account, "1")),
        ("POST", PAYMENTS, payment(account, "2")),
        ("POST", PAYMENTS, payment(account, "0")),  # refused by validation: 422
        ("POST", PAYMENTS, payment(account, "4")),
    ]

    answers, statements = logged_batch(database_url, token, account, requests)

    assert [a.status for a in answers] == [201, 201, 422, 201]
    assert answers[3].json()["data"]["attributes"]["balance-before-payment"] == "3.0"
    assert balance(db, account) == Decimal(7)
    batch = statements[len(statements) - 1 - statements[::-1].index("BEGIN;") :]
    assert not [s for s in batch if "SAVEPOINT" in s]
    assert batch[-2:] == ["SELECT 1", "COMMIT;"]
    # the lock, the payment with its audit row, the movement with its own, the answer's row
    assert len(batch) == 1 + 4 + 1 + 4 + 2
    starts = transaction_starts(db, account, ("payment",))
    assert len(starts) == 3 and starts[1] == starts[2] != starts[0]
