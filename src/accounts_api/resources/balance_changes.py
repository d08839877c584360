"""Which account a write to a balance changes, for the worker's write queues: the balance
changes themselves go through db/writes.py."""

from __future__ import annotations

from collections.abc import Mapping

# Which account a write will lock, for the worker's write queues (jsonapi/write_queue.py):
# writes to one account wait for their turn there rather than on its row lock, holding no
# database connection while they wait.


def _data(document: Mapping[str, object]) -> Mapping[str, object]:
    data = document.get("data")
    return data if isinstance(data, Mapping) else {}


def account_in_url(key: str | None, document: Mapping[str, object]) -> str | None:
    """Account writes: the account of the URL (none on create)."""
    return None if key is None else f"accounts:{key}"


def account_in_data_id(key: str | None, document: Mapping[str, object]) -> str | None:
    """The balance correction: the account whose id is `data.id` (contract §5.9)."""
    account_id = _data(document).get("id")
    return None if account_id is None else f"accounts:{account_id}"


def account_by_external_id(key: str | None, document: Mapping[str, object]) -> str | None:
    """The absolute balance: the account whose external id is `data.id` (contract §5.8)."""
    external_id = _data(document).get("id")
    return None if external_id is None else f"accounts-by-external-id:{external_id}"


def linked_account(key: str | None, document: Mapping[str, object]) -> str | None:
    """Payments and transactions: the account the body links; a payment's rollback, the
    payment of the URL (its account is known only once the payment is read)."""
    if key is not None:
        return f"payments:{key}"
    relationships = _data(document).get("relationships")
    account = relationships.get("account") if isinstance(relationships, Mapping) else None
    linkage = account.get("data") if isinstance(account, Mapping) else None
    account_id = linkage.get("id") if isinstance(linkage, Mapping) else None
    return None if account_id is None else f"accounts:{account_id}"
