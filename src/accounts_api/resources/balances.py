"""The balance endpoints (contract §5.8, §5.9): PUT|PATCH /accounts/{any}/balance sets the
absolute balance of the account whose external id is `data.id`; /balance-correction adds a
delta to the account whose id is `data.id`. The URL segment is ignored, as in Yeti. Both
lock the account, write the ledger entry and an audit row (Yeti audits no absolute set)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounts_api.db import ledger
from accounts_api.db.pool import Connection
from accounts_api.db.writes import Write
from accounts_api.domain import money
from accounts_api.domain.validation import BIGINT_MAX, is_row_id
from accounts_api.jsonapi import group_commit
from accounts_api.jsonapi.body import decode, integer_key, parse_singleton, read_body
from accounts_api.jsonapi.declaration import Attribute, Context, Resource, Shown, ValueType
from accounts_api.jsonapi.document import API_PREFIX, format_decimal
from accounts_api.jsonapi.endpoints import Api, fetch_one
from accounts_api.jsonapi.errors import InvalidFieldValue, RecordNotFound
from accounts_api.jsonapi.idempotency import write_transaction
from accounts_api.jsonapi.negotiation import base_url, check_accept, check_content_type
from accounts_api.jsonapi.responses import json_response
from accounts_api.jsonapi.versioning import check_if_match, if_match
from accounts_api.resources.accounts import ACCOUNTS
from accounts_api.resources.balance_changes import account_by_external_id, account_in_data_id
from accounts_api.resources.validation import raise_invalid

BALANCES = Resource(
    type="balances",
    path="balances",
    from_sql="accounts a",
    id_sql="a.external_id",
    attributes=(
        Attribute(
            "balance",
            ValueType.DECIMAL,
            "a.balance",
            creatable=False,
            description="The balance to set; the difference goes to the ledger.",
            nullable=False,
        ),
    ),
    write_queue=account_by_external_id,
    description="The balance of the account whose external id is the id.",
)
BALANCE_CORRECTION = Resource(
    type="balance-correction",
    path="balance-correction",
    from_sql="accounts a",
    id_sql="a.id",
    attributes=(
        Attribute("name", ValueType.STRING, "a.name", creatable=False, updatable=False),
        Attribute("balance", ValueType.DECIMAL, "a.balance", creatable=False, updatable=False),
        Attribute(
            "correction",
            ValueType.DECIMAL,
            "NULL",
            creatable=False,
            shown=Shown.NEVER,
            description="Added to the balance (negative: taken off).",
            nullable=False,
        ),
    ),
    write_queue=account_in_data_id,
    description="A correction of the balance of the account whose id is the id.",
)

# does the write in its transaction (write_transaction) and answers the singleton's attributes
Operation = Callable[
    [Request, Connection, Context, Any, dict[str, Any], list[str] | None],
    Awaitable[dict[str, Any]],
]


def _number(column: str, key: Any) -> int | None:
    """The account number `data.id` names, or None when no account can have it."""
    try:
        number = integer_key(key)
    except InvalidFieldValue:
        return None
    # external ids are bigint and may be negative; account ids are positive integers
    fits = abs(number) <= BIGINT_MAX if column == "external_id" else is_row_id(number)
    return number if fits else None


async def _lock(
    connection: Connection, column: str, key: Any, wanted: list[str] | None
) -> dict[str, Any]:
    """The addressed account, locked; with If-Match, it must still carry one of the tags its
    account document was served with."""
    number = _number(column, key)
    row = None
    if number is not None:
        row = await connection.fetchrow(
            f"SELECT * FROM accounts WHERE {column} = $1 FOR UPDATE", number
        )
    if row is None:
        raise RecordNotFound(key)
    if wanted is not None:
        check_if_match(wanted, await fetch_one(connection, ACCOUNTS, row["id"]))
    return dict(row)


async def set_balance(
    request: Request,
    connection: Connection,
    context: Context,
    key: Any,
    attributes: dict[str, Any],
    wanted: list[str] | None,
) -> dict[str, Any]:
    async with write_transaction(request, connection):
        account = await _lock(connection, "external_id", key, wanted)
        balance = account["balance"]
        if "balance" in attributes:
            errors, target = money.validate_balance(attributes["balance"])
            raise_invalid(BALANCES, errors)
            assert target is not None
            if target != balance:
                balance = await Write(connection, context).move_balance(
                    account,
                    money.difference(target, balance),
                    ledger.Kind.ABSOLUTE_SET,
                    ledger.Source("Account", account["id"]),
                )
    return {"id": str(account["external_id"]), "balance": format_decimal(balance)}


async def correct_balance(
    request: Request,
    connection: Connection,
    context: Context,
    key: Any,
    attributes: dict[str, Any],
    wanted: list[str] | None,
) -> dict[str, Any]:
    errors, correction = money.validate_correction(attributes)
    number = _number("id", key)
    if correction and not errors and wanted is None and number is not None:
        # issue 10: nothing left to refuse but a missing account, found without writing: in a
        # batch the write needs no savepoint, the movement, its ledger entry and audit row are
        # one statement, and the account's lock one more unless the batch holds it already
        lock = ("accounts", number)
        moved = None
        async with write_transaction(request, connection, refusals_checked=True):
            if group_commit.holds(lock) or await ledger.lock_account(connection, number):
                group_commit.took(lock)
                moved = await Write(connection, context).move_balance_of(
                    number, correction, ledger.Kind.CORRECTION, ledger.Source("Account", number)
                )
        if moved is None:
            raise RecordNotFound(key)
        return {
            "id": str(moved["id"]),
            "name": moved["name"],
            "balance": format_decimal(moved["balance_after"]),
        }
    # contract §5.9: a missing account (404) before an invalid correction (422)
    async with write_transaction(request, connection):
        account = await _lock(connection, "id", key, wanted)
        raise_invalid(BALANCE_CORRECTION, errors)
        balance = account["balance"]
        if correction:
            balance = await Write(connection, context).move_balance(
                account,
                correction,
                ledger.Kind.CORRECTION,
                ledger.Source("Account", account["id"]),
            )
    return {"id": str(account["id"]), "name": account["name"], "balance": format_decimal(balance)}


def _endpoint(
    api: Api, resource: Resource, operation: Operation
) -> Callable[..., Awaitable[Response]]:
    async def endpoint(request: Request, context: Context, connection: Connection) -> Response:
        check_content_type(request)
        check_accept(request)
        # contract §0.5: an update parses fields and include before the body
        api.query_parser(resource).parse(request.url.query, index=False, write=True)
        payload = parse_singleton(decode(await read_body(request)), resource)
        attributes = await operation(
            request, connection, context, payload.id, payload.attributes, if_match(request)
        )
        document = {
            "data": {
                # the stored key, however data.id was written ("0100", " 100 ")
                "id": attributes.pop("id"),
                "type": resource.type,
                # contract §5.8, §5.9: Yeti's singleton self links point at unrouted paths
                "links": {"self": f"{base_url(request)}{API_PREFIX}/{resource.path}"},
                "attributes": attributes,
            }
        }
        return json_response(document)

    return endpoint


def routes(api: Api) -> list[Route]:
    accounts = f"{API_PREFIX}/accounts/{{any}}"
    return [
        Route(
            f"{accounts}/balance",
            api.wrap(_endpoint(api, BALANCES, set_balance), BALANCES.write_queue),
            methods=["PATCH", "PUT"],
        ),
        Route(
            f"{accounts}/balance-correction",
            api.wrap(
                _endpoint(api, BALANCE_CORRECTION, correct_balance),
                BALANCE_CORRECTION.write_queue,
            ),
            methods=["PATCH", "PUT"],
        ),
    ]
