"""Rules of money movements (contract §5.6-§5.9): payments add, transactions charge,
corrections add a delta, the absolute balance replaces. Validation in Yeti's order and
words; no HTTP, no SQL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

from accounts_api.domain.validation import (
    BLANK,
    MUST_EXIST,
    NOT_A_NUMBER,
    Errors,
    check_numericality,
    check_string,
    is_blank,
)

OTHER_THAN_ZERO = "must be other than 0"
NOTES_MAX_LENGTH = 4096

# contract §5.6 and Yeti's Payment model: stored ids and wire names
PAYMENT_STATUSES = {"canceled": 10, "completed": 20, "pending": 30, "rolled_back": 40}
PAYMENT_TYPES = {"cryptomus": 10, "manual": 20}
COMPLETED = PAYMENT_STATUSES["completed"]
ROLLED_BACK = PAYMENT_STATUSES["rolled_back"]


# Validated amounts have at most 31 integer and 100 fractional digits: this precision keeps
# sums and differences of two of them exact (Decimal's default of 28 digits would round).
EXACT = Context(prec=300)


def difference(minuend: Decimal, subtrahend: Decimal) -> Decimal:
    return EXACT.subtract(minuend, subtrahend)


def _amount(errors: Errors, raw: Any) -> Decimal | None:
    if is_blank(raw):
        errors.add("amount", BLANK)
        return None
    amount = check_numericality(errors, "amount", raw)
    if amount is not None and amount == 0:
        errors.add("amount", OTHER_THAN_ZERO)
        return None
    return amount


@dataclass(frozen=True)
class Payment:
    amount: Decimal
    notes: str | None
    private_notes: str | None


def validate_payment(
    values: Mapping[str, Any], *, account_exists: bool, currency_id: int | None
) -> tuple[Errors, Payment | None]:
    """contract §5.6: account, currency, amount, currency-id, in that order."""
    errors = Errors()
    if not account_exists:
        errors.add("account", MUST_EXIST)
        errors.add("currency", MUST_EXIST)
    amount = _amount(errors, values.get("amount"))
    if currency_id is None:
        errors.add("currency_id", BLANK)
    notes = check_string(errors, "notes", values.get("notes"), max_length=NOTES_MAX_LENGTH)
    private_notes = check_string(
        errors, "private_notes", values.get("private_notes"), max_length=NOTES_MAX_LENGTH
    )
    if errors or amount is None:
        return errors, None
    return errors, Payment(amount, notes, private_notes)


def validate_rollback(status_id: int) -> Errors:
    """A completed payment can be rolled back, once (our extension to contract §5.6)."""
    errors = Errors()
    if status_id == ROLLED_BACK:
        errors.add("status", "is already rolled back")
    elif status_id != COMPLETED:
        errors.add("status", "must be completed to be rolled back")
    return errors


@dataclass(frozen=True)
class Transaction:
    amount: Decimal
    description: str | None


def validate_transaction(
    values: Mapping[str, Any], *, account_exists: bool, service_account_id: int | None
) -> tuple[Errors, Transaction | None]:
    """contract §5.7: amount, account, service of the same account."""
    errors = Errors()
    amount = _amount(errors, values.get("amount"))
    if not account_exists:
        errors.add("account", MUST_EXIST)
    service_id = values.get("service_id")
    if service_id is not None:
        if service_account_id is None:
            errors.add("service", MUST_EXIST)
        elif service_account_id != values.get("account_id"):
            errors.add("service", "belongs to different account")
    description = check_string(
        errors, "description", values.get("description"), max_length=NOTES_MAX_LENGTH
    )
    if errors or amount is None:
        return errors, None
    return errors, Transaction(amount, description)


def validate_balance(raw: Any) -> tuple[Errors, Decimal | None]:
    """contract §5.8: the new absolute balance must be a number."""
    errors = Errors()
    return errors, check_numericality(errors, "balance", raw)


def validate_correction(values: Mapping[str, Any]) -> tuple[Errors, Decimal | None]:
    """contract §5.9: an absent correction changes nothing. A null or non-numeric one is
    refused (Yeti: a Ruby error message, or a silent 0)."""
    errors = Errors()
    if "correction" not in values:
        return errors, None
    raw = values["correction"]
    if raw is None:
        errors.add("correction", NOT_A_NUMBER)
        return errors, None
    return errors, check_numericality(errors, "correction", raw)
