"""Invoice period calendar arithmetic: `next_invoice_at` and `next_invoice_type_id`.

Contract §4.2. Pure functions of a date (or an aware instant) and an IANA zone name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

__all__ = [
    "BillingPeriod",
    "InvoicePeriod",
    "InvoiceType",
    "current_period",
    "next_invoice",
    "period_end",
    "period_start",
]

_ONE_SECOND: Final = timedelta(seconds=1)
_ONE_DAY: Final = timedelta(days=1)
_ONE_WEEK: Final = timedelta(weeks=1)
_TWO_WEEKS: Final = timedelta(weeks=2)


class InvoicePeriod(enum.IntEnum):
    """`Billing::InvoicePeriod` ids (contract §4.2, §5.11)."""

    DAILY = 1
    WEEKLY = 2
    BIWEEKLY = 3
    MONTHLY = 4
    BIWEEKLY_SPLIT = 5
    WEEKLY_SPLIT = 6
    SEMIMONTHLY = 7

    @property
    def days_in_period(self) -> int:
        return _DAYS_IN_PERIOD[self]

    @property
    def is_split(self) -> bool:
        return self in (InvoicePeriod.BIWEEKLY_SPLIT, InvoicePeriod.WEEKLY_SPLIT)


# contract §4.2: nominal lengths; only compared against for split periods.
_DAYS_IN_PERIOD: Final[dict[InvoicePeriod, int]] = {
    InvoicePeriod.DAILY: 1,
    InvoicePeriod.WEEKLY: 7,
    InvoicePeriod.BIWEEKLY: 14,
    InvoicePeriod.MONTHLY: 30,
    InvoicePeriod.BIWEEKLY_SPLIT: 14,
    InvoicePeriod.WEEKLY_SPLIT: 7,
    InvoicePeriod.SEMIMONTHLY: 15,
}


class InvoiceType(enum.IntEnum):
    """`Billing::InvoiceType` ids (contract §4.2)."""

    MANUAL = 1
    AUTO_FULL = 2
    AUTO_PARTIAL = 3


@dataclass(frozen=True)
class BillingPeriod:
    """The current invoice period as calendar dates in the account's zone; `end` is exclusive."""

    start: date
    end: date
    invoice_type: InvoiceType


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _sunday(day: date) -> date:
    return _monday(day) + timedelta(days=6)


def _in_even_iso_week(day: date) -> bool:
    return day.isocalendar().week % 2 == 0


def _first_of_next_month(day: date) -> date:
    if day.month == 12:
        return date(day.year + 1, 1, 1)
    return date(day.year, day.month + 1, 1)


def _one_month_before(day: date) -> date:
    # contract §4.2: Ruby `date - 1.month` clamps to the last day of a shorter month.
    year, month = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
    last_day = (_first_of_next_month(date(year, month, 1)) - _ONE_DAY).day
    return date(year, month, min(day.day, last_day))


def _next_biweekly_monday(today: date) -> date:
    # contract §4.2 says: the first of [m + 14d, m + 7d] in an even ISO week. Where Yeti
    # answers, that is the first Monday after today's ISO week in an even week. Deliberate
    # deviation: in ISO week 52 of a 53-week year both candidates are odd (weeks 53 and 1)
    # and Yeti crashes; continuing the search gives m + 21d, the Monday of ISO week 2.
    candidate = _monday(today) + _ONE_WEEK
    while not _in_even_iso_week(candidate):
        candidate += _ONE_WEEK
    return candidate


def _latest_even_week_monday(latest: date) -> date:
    # contract §4.2 looks back one or two weeks for an even ISO week. Deliberate deviation:
    # after a 53-week year both may be odd (weeks 1 and 53, where Yeti crashes); going back
    # a third week reaches week 52. Elsewhere the result is the same as Yeti's.
    candidate = latest
    while not _in_even_iso_week(candidate):
        candidate -= _ONE_WEEK
    return candidate


def period_end(period: InvoicePeriod, today: date) -> date:
    """The exclusive end date of the period containing `today` (contract §4.2 table)."""
    match period:
        case InvoicePeriod.DAILY:
            return today + _ONE_DAY
        case InvoicePeriod.WEEKLY:
            return _monday(today) + _ONE_WEEK
        case InvoicePeriod.BIWEEKLY:
            return _next_biweekly_monday(today)
        case InvoicePeriod.MONTHLY:
            return _first_of_next_month(today)
        case InvoicePeriod.BIWEEKLY_SPLIT:
            next_biweekly = _next_biweekly_monday(today)
            if next_biweekly.month == today.month:
                return next_biweekly
            return _first_of_next_month(today)
        case InvoicePeriod.WEEKLY_SPLIT:
            sunday = _sunday(today)
            if sunday.month == today.month:
                return sunday + _ONE_DAY
            return _first_of_next_month(today)
        case InvoicePeriod.SEMIMONTHLY:
            if today.day < 16:
                return today.replace(day=16)
            return _first_of_next_month(today)


def period_start(period: InvoicePeriod, end: date) -> date:
    """The start date Yeti assumes for an account with no invoices (contract §4.2 table)."""
    match period:
        case InvoicePeriod.DAILY:
            return end - _ONE_DAY
        case InvoicePeriod.WEEKLY:
            return _monday(end) - _ONE_WEEK
        case InvoicePeriod.BIWEEKLY:
            # contract §4.2 kept as is, even where the end came from the week-53 deviation
            # above; a non-split period is AUTO_FULL whatever its start.
            return _monday(end) - _TWO_WEEKS
        case InvoicePeriod.MONTHLY:
            return _one_month_before(end)
        case InvoicePeriod.BIWEEKLY_SPLIT:
            if end.weekday() != 0:
                return _latest_even_week_monday(_monday(end))
            previous_start = _latest_even_week_monday(end - _ONE_WEEK)
            previous_last_day = _sunday(previous_start) + _ONE_WEEK
            if previous_start.month == previous_last_day.month:
                return previous_start
            return _first_of_next_month(previous_start)
        case InvoicePeriod.WEEKLY_SPLIT:
            if end.weekday() != 0:
                return _monday(end)
            previous_start = end - _ONE_WEEK
            if previous_start.month == _sunday(previous_start).month:
                return previous_start
            return _first_of_next_month(previous_start)
        case InvoicePeriod.SEMIMONTHLY:
            if end.day == 16:
                return end.replace(day=1)
            return (end - _ONE_DAY).replace(day=16)


def current_period(
    period: InvoicePeriod, today: date, last_invoice_end: date | None = None
) -> BillingPeriod:
    """The period containing `today`; `last_invoice_end` is the latest invoice's end date."""
    end = period_end(period, today)
    start = period_start(period, end) if last_invoice_end is None else last_invoice_end
    if period.is_split and (end - start).days < period.days_in_period:
        invoice_type = InvoiceType.AUTO_PARTIAL
    else:
        invoice_type = InvoiceType.AUTO_FULL
    return BillingPeriod(start=start, end=end, invoice_type=invoice_type)


def _start_of_day(day: date, zone: tzinfo) -> datetime:
    """The first instant of `day` in `zone`, in UTC."""
    local_midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    wall_midnight = local_midnight.replace(tzinfo=None)
    instant = local_midnight.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall_midnight:
        # Exists; if ambiguous, fold=0 is the earlier instant.
        return instant
    # Midnight falls in a gap: use its end, the first instant of the day. ActiveSupport steps
    # forward an hour at a time, which agrees for every midnight gap in tzdata since 1970.
    # The end lies after the fold=1 reading and no later than the fold=0 one; offsets are
    # whole seconds, so a bisection in whole seconds lands on the transition.
    before = local_midnight.replace(fold=1).astimezone(UTC)
    while (span := (instant - before) // _ONE_SECOND) > 1:
        middle = before + span // 2 * _ONE_SECOND
        if middle.astimezone(zone).replace(tzinfo=None) >= wall_midnight:
            instant = middle
        else:
            before = middle
    return instant


def next_invoice(
    period: InvoicePeriod, timezone: str, now: datetime
) -> tuple[datetime, InvoiceType]:
    """`(next_invoice_at, next_invoice_type_id)` for an account with no invoices yet.

    `next_invoice_at` is the instant of 00:00 on the period's end date in the account's
    zone, as an aware UTC datetime (contract §4.2: stored as timestamptz).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    billing_period = current_period(period, today)
    return _start_of_day(billing_period.end, zone), billing_period.invoice_type
