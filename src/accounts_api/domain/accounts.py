"""Account rules (contract §3.1, §4.1, §4.2): validation in Yeti's order and messages, and the
hidden invoice schedule. Knows nothing of HTTP or SQL: lookups the rules need (does the
contractor exist, is the name taken) arrive as `Lookups`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accounts_api.domain.invoice_periods import InvoicePeriod, next_invoice
from accounts_api.domain.validation import (
    BIGINT_MAX,
    BLANK,
    INTEGER_MAX,
    MUST_EXIST,
    NOT_INCLUDED,
    TAKEN,
    Errors,
    check_id_list,
    check_numericality,
    check_string,
    check_uuid,
    decimal_text,
    is_blank,
    is_row_id,
    to_decimal,
)

SMALLINT_MAX = 32767
_PERIOD_IDS = frozenset(period.value for period in InvoicePeriod)


@dataclass(frozen=True)
class Candidates:
    """Values the lookups are made for, cast leniently from the raw input."""

    name: str | None
    uuid: str | None
    external_id: int | None
    currency: str | None
    contractor_id: int | None


@dataclass
class Lookups:
    contractor_exists: bool
    currency_id: int | None
    taken: set[str] = field(default_factory=set)
    timezones: Collection[str] = ()


def candidates(values: Mapping[str, Any]) -> Candidates:
    name = values.get("name")
    raw_uuid = values.get("uuid")
    external_id = values.get("external_id")
    external_number = to_decimal(external_id) if external_id is not None else None
    external_int = (
        int(external_number)
        if external_number is not None
        and external_number == external_number.to_integral_value()
        and abs(external_number) <= BIGINT_MAX
        else None
    )
    currency = values.get("currency")
    contractor = values.get("contractor_id")
    return Candidates(
        name=name if isinstance(name, str) and "\x00" not in name else None,
        uuid=_uuid_text(raw_uuid),
        external_id=external_int,
        currency=currency if isinstance(currency, str) and "\x00" not in currency else None,
        contractor_id=contractor if is_row_id(contractor) else None,
    )


def _uuid_text(raw: Any) -> str | None:
    if isinstance(raw, uuid.UUID):
        return str(raw)
    try:
        return str(uuid.UUID(raw)) if isinstance(raw, str) else None
    except ValueError:
        return None


def validate(
    values: Mapping[str, Any], lookups: Lookups, *, creating: bool
) -> tuple[Errors, dict[str, Any]]:
    """All rules of contract §3.1 in their order; returns the errors and the cast values."""
    errors = Errors()
    clean: dict[str, Any] = {}

    # 1, 2: required associations
    if not lookups.contractor_exists:
        errors.add("contractor", MUST_EXIST)
    if lookups.currency_id is None:
        errors.add("currency", MUST_EXIST)

    # 3: min-balance numericality when present
    min_raw = values.get("min_balance")
    min_balance = None
    if not is_blank(min_raw):
        min_balance = check_numericality(errors, "min_balance", min_raw)

    # 4, 5: uniqueness
    clean["uuid"] = check_uuid(errors, "uuid", values.get("uuid"))
    if "uuid" in lookups.taken:
        errors.add("uuid", TAKEN)
    clean["name"] = check_string(errors, "name", values.get("name"))
    if "name" in lookups.taken:
        errors.add("name", TAKEN)

    # 6: presence, in Yeti's order
    for key in ("name", "timezone", "vat", "max_balance", "min_balance"):
        if is_blank(values.get(key)):
            errors.add(key, BLANK)

    # 7: timezone
    timezone = values.get("timezone")
    timezone_text = check_string(errors, "timezone", timezone)
    if timezone is None or (timezone_text is not None and timezone_text not in lookups.timezones):
        # contract §3.2: a null renders as the empty string
        errors.add("timezone", f"{timezone_text or ''} is not a valid timezone")
    clean["timezone"] = timezone_text

    # 8: max-balance, compared with min-balance when that is a number
    count = decimal_text(min_balance) if min_balance is not None else None
    clean["max_balance"] = check_numericality(
        errors,
        "max_balance",
        values.get("max_balance"),
        greater_than_or_equal_to=min_balance,
        count_text=count,
    )
    clean["min_balance"] = min_balance

    # 9: capacities
    for key in ("termination_capacity", "origination_capacity", "total_capacity"):
        number = check_numericality(
            errors,
            key,
            values.get(key),
            allow_nil=True,
            only_integer=True,
            greater_than=0,
            less_than_or_equal_to=SMALLINT_MAX,
        )
        clean[key] = int(number) if number is not None and key not in errors else None

    # 10: external id
    external = check_numericality(
        errors,
        "external_id",
        values.get("external_id"),
        allow_nil=True,
        only_integer=True,
        greater_than_or_equal_to=-BIGINT_MAX - 1,
        less_than_or_equal_to=BIGINT_MAX,
    )
    clean["external_id"] = (
        int(external) if external is not None and "external_id" not in errors else None
    )
    if "external_id" in lookups.taken:
        errors.add("external_id", TAKEN)

    # 11, 12, 13
    clean["vat"] = check_numericality(
        errors, "vat", values.get("vat"), greater_than_or_equal_to=0, less_than_or_equal_to=100
    )
    clean["destination_rate_limit"] = check_numericality(
        errors,
        "destination_rate_limit",
        values.get("destination_rate_limit"),
        allow_nil=True,
        greater_than_or_equal_to=0,
    )
    duration = check_numericality(
        errors,
        "max_call_duration",
        values.get("max_call_duration"),
        allow_nil=True,
        greater_than=0,
        less_than_or_equal_to=INTEGER_MAX,
    )
    # contract §3.1 #13: not integer-only, 1.5 is stored as 1; 0.5 would be stored as 0
    clean["max_call_duration"] = int(duration) if duration is not None else None
    if duration is not None and 0 < duration < 1:
        errors.add("max_call_duration", "must be greater than 0")

    # 16: invoice period
    period_raw = values.get("invoice_period_id")
    period = None
    if period_raw is not None:
        number = to_decimal(period_raw)
        if number is None or number not in _PERIOD_IDS:
            errors.add("invoice_period_id", NOT_INCLUDED)
        else:
            period = int(number)
    clean["invoice_period_id"] = period

    # 18: the form's currency check joins the currency group
    currency = values.get("currency")
    if creating and currency is not None and check_string(errors, "currency", currency) is None:
        currency = None
    if creating and not is_blank(currency) and lookups.currency_id is None:
        errors.add("currency", "is not found")
    clean["currency_id"] = lookups.currency_id

    # 19: thresholds (Yeti casts non-numbers to 0; we refuse them)
    low = check_numericality(
        errors, "balance_low_threshold", values.get("balance_low_threshold"), allow_nil=True
    )
    high = check_numericality(
        errors, "balance_high_threshold", values.get("balance_high_threshold"), allow_nil=True
    )
    if low is not None and high is not None and low >= high:
        errors.add("balance_low_threshold", "must be less than balance high threshold")
    clean["balance_low_threshold"], clean["balance_high_threshold"] = low, high

    clean["send_invoices_to"] = check_id_list(
        errors, "send_invoices_to", values.get("send_invoices_to")
    )
    clean["send_balance_notifications_to"] = check_id_list(
        errors, "send_balance_notifications_to", values.get("send_balance_notifications_to")
    )
    clean["contractor_id"] = values.get("contractor_id")
    # contract §2.2: the template is not checked for existence, but an id no column can hold
    # can only be a template that does not exist
    template = values.get("invoice_template_id")
    if template is not None and not is_row_id(template):
        errors.add("invoice_template", MUST_EXIST)
    clean["invoice_template_id"] = template
    return errors, clean


def needs_invoice_schedule(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """contract §4.2: recompute when the period changed, or the zone changed under a period."""
    if before is None:
        return True
    if before["invoice_period_id"] != after["invoice_period_id"]:
        return True
    return after["invoice_period_id"] is not None and before["timezone"] != after["timezone"]


def invoice_schedule(
    period_id: int | None, timezone: str, now: datetime
) -> tuple[datetime | None, int | None]:
    """`next_invoice_at` and `next_invoice_type_id` for an account (NULLs without a period)."""
    if period_id is None:
        return None, None
    moment, invoice_type = next_invoice(InvoicePeriod(period_id), timezone, now)
    return moment, int(invoice_type)
