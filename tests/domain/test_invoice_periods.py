"""Contract §4.2: invoice period end, start and type, and `next_invoice_at` in the account zone.

Expected values are worked out by hand from the §4.2 table, never computed by the module.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from accounts_api.domain.invoice_periods import (
    BillingPeriod,
    InvoicePeriod,
    InvoiceType,
    current_period,
    next_invoice,
    period_end,
    period_start,
)

DAILY = InvoicePeriod.DAILY
WEEKLY = InvoicePeriod.WEEKLY
BIWEEKLY = InvoicePeriod.BIWEEKLY
MONTHLY = InvoicePeriod.MONTHLY
BIWEEKLY_SPLIT = InvoicePeriod.BIWEEKLY_SPLIT
WEEKLY_SPLIT = InvoicePeriod.WEEKLY_SPLIT
SEMIMONTHLY = InvoicePeriod.SEMIMONTHLY
FULL = InvoiceType.AUTO_FULL
PARTIAL = InvoiceType.AUTO_PARTIAL

d = date.fromisoformat


def days(first: str, last: str) -> list[date]:
    """Every date from `first` to `last`, both included."""
    start, stop = d(first), d(last)
    return [start + timedelta(days=n) for n in range((stop - start).days + 1)]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_invoice_period_ids_and_attributes() -> None:
    assert [(p.name, p.value, p.days_in_period, p.is_split) for p in InvoicePeriod] == [
        ("DAILY", 1, 1, False),
        ("WEEKLY", 2, 7, False),
        ("BIWEEKLY", 3, 14, False),
        ("MONTHLY", 4, 30, False),
        ("BIWEEKLY_SPLIT", 5, 14, True),
        ("WEEKLY_SPLIT", 6, 7, True),
        ("SEMIMONTHLY", 7, 15, False),
    ]
    assert InvoicePeriod(5) is BIWEEKLY_SPLIT


def test_invoice_type_ids() -> None:
    assert [(t.name, t.value) for t in InvoiceType] == [
        ("MANUAL", 1),
        ("AUTO_FULL", 2),
        ("AUTO_PARTIAL", 3),
    ]


# contract §4.2 "Worked examples", every row (rows naming two periods are split in two).
WORKED_EXAMPLES = [
    ("2020-01-01", WEEKLY, "2020-01-06", "2019-12-30", FULL),
    ("2020-01-01", SEMIMONTHLY, "2020-01-16", "2020-01-01", FULL),
    ("2020-01-20", SEMIMONTHLY, "2020-02-01", "2020-01-16", FULL),
    ("2020-03-17", DAILY, "2020-03-18", "2020-03-17", FULL),
    ("2020-03-17", WEEKLY, "2020-03-23", "2020-03-16", FULL),
    ("2020-03-17", WEEKLY_SPLIT, "2020-03-23", "2020-03-16", FULL),
    ("2020-03-30", WEEKLY_SPLIT, "2020-04-01", "2020-03-30", PARTIAL),
    ("2020-03-17", BIWEEKLY, "2020-03-30", "2020-03-16", FULL),
    ("2020-03-17", BIWEEKLY_SPLIT, "2020-03-30", "2020-03-16", FULL),
    ("2020-03-30", BIWEEKLY_SPLIT, "2020-04-01", "2020-03-30", PARTIAL),
    ("2020-03-17", MONTHLY, "2020-04-01", "2020-03-01", FULL),
]

# Month ends, leap days and year ends. ISO weeks used: 2020-01-27 W05, 2020-02-24 W09,
# 2020-12-28 W53 (2020 has 53), 2021-12-27 W52 (2021 has 52), 2024-02-26 W09.
MONTH_AND_YEAR_ENDS = [
    # Fri 2020-01-31, W05 (odd): next even-week Monday is 02-03 (W06).
    ("2020-01-31", DAILY, "2020-02-01", "2020-01-31", FULL),
    ("2020-01-31", WEEKLY, "2020-02-03", "2020-01-27", FULL),
    ("2020-01-31", BIWEEKLY, "2020-02-03", "2020-01-20", FULL),
    ("2020-01-31", MONTHLY, "2020-02-01", "2020-01-01", FULL),
    ("2020-01-31", BIWEEKLY_SPLIT, "2020-02-01", "2020-01-20", PARTIAL),
    ("2020-01-31", WEEKLY_SPLIT, "2020-02-01", "2020-01-27", PARTIAL),
    ("2020-01-31", SEMIMONTHLY, "2020-02-01", "2020-01-16", FULL),
    # Sat 2020-02-29, W09 (odd): 03-02 is W10; 03-01 is a Sunday.
    ("2020-02-29", DAILY, "2020-03-01", "2020-02-29", FULL),
    ("2020-02-29", WEEKLY, "2020-03-02", "2020-02-24", FULL),
    ("2020-02-29", BIWEEKLY, "2020-03-02", "2020-02-17", FULL),
    ("2020-02-29", MONTHLY, "2020-03-01", "2020-02-01", FULL),
    ("2020-02-29", BIWEEKLY_SPLIT, "2020-03-01", "2020-02-17", PARTIAL),
    ("2020-02-29", WEEKLY_SPLIT, "2020-03-01", "2020-02-24", PARTIAL),
    ("2020-02-29", SEMIMONTHLY, "2020-03-01", "2020-02-16", FULL),
    # Thu 2020-12-31, W53: 2021-01-04 is W01 (odd), 2021-01-11 is W02.
    ("2020-12-31", DAILY, "2021-01-01", "2020-12-31", FULL),
    ("2020-12-31", WEEKLY, "2021-01-04", "2020-12-28", FULL),
    ("2020-12-31", BIWEEKLY, "2021-01-11", "2020-12-28", FULL),
    ("2020-12-31", MONTHLY, "2021-01-01", "2020-12-01", FULL),
    ("2020-12-31", BIWEEKLY_SPLIT, "2021-01-01", "2020-12-21", PARTIAL),
    ("2020-12-31", WEEKLY_SPLIT, "2021-01-01", "2020-12-28", PARTIAL),
    ("2020-12-31", SEMIMONTHLY, "2021-01-01", "2020-12-16", FULL),
    # Fri 2021-12-31, W52 of a 52-week year: 2022-01-03 is W01, 2022-01-10 is W02.
    ("2021-12-31", DAILY, "2022-01-01", "2021-12-31", FULL),
    ("2021-12-31", WEEKLY, "2022-01-03", "2021-12-27", FULL),
    ("2021-12-31", BIWEEKLY, "2022-01-10", "2021-12-27", FULL),
    ("2021-12-31", MONTHLY, "2022-01-01", "2021-12-01", FULL),
    ("2021-12-31", BIWEEKLY_SPLIT, "2022-01-01", "2021-12-27", PARTIAL),
    ("2021-12-31", WEEKLY_SPLIT, "2022-01-01", "2021-12-27", PARTIAL),
    ("2021-12-31", SEMIMONTHLY, "2022-01-01", "2021-12-16", FULL),
    # Thu 2024-02-29, W09 (odd): 03-04 is W10; 03-01 is a Friday.
    ("2024-02-29", DAILY, "2024-03-01", "2024-02-29", FULL),
    ("2024-02-29", WEEKLY, "2024-03-04", "2024-02-26", FULL),
    ("2024-02-29", BIWEEKLY, "2024-03-04", "2024-02-19", FULL),
    ("2024-02-29", MONTHLY, "2024-03-01", "2024-02-01", FULL),
    ("2024-02-29", BIWEEKLY_SPLIT, "2024-03-01", "2024-02-19", PARTIAL),
    ("2024-02-29", WEEKLY_SPLIT, "2024-03-01", "2024-02-26", PARTIAL),
    ("2024-02-29", SEMIMONTHLY, "2024-03-01", "2024-02-16", FULL),
]

# Split periods whose end is a Monday while the previous block crossed a month.
SPLIT_CROSSINGS = [
    # 2020-04-06 is W15, 04-13 W16: previous bi-week 03-30..04-12 was split on 04-01.
    ("2020-04-10", BIWEEKLY_SPLIT, "2020-04-13", "2020-04-01", PARTIAL),
    # Week 03-30..04-05 was split on 04-01.
    ("2020-04-02", WEEKLY_SPLIT, "2020-04-06", "2020-04-01", PARTIAL),
    ("2020-04-08", WEEKLY_SPLIT, "2020-04-13", "2020-04-06", FULL),
    # The 1st is itself the end: 2020-06-01 is a Monday (W23) and end of a week.
    ("2020-05-27", WEEKLY_SPLIT, "2020-06-01", "2020-05-25", FULL),
    # SemiMonthly on the 15th and the 16th.
    ("2020-02-15", SEMIMONTHLY, "2020-02-16", "2020-02-01", FULL),
    ("2020-02-16", SEMIMONTHLY, "2020-03-01", "2020-02-16", FULL),
]


@pytest.mark.parametrize(
    ("today", "period", "end", "start", "invoice_type"),
    WORKED_EXAMPLES + MONTH_AND_YEAR_ENDS + SPLIT_CROSSINGS,
)
def test_current_period(
    today: str, period: InvoicePeriod, end: str, start: str, invoice_type: InvoiceType
) -> None:
    assert period_end(period, d(today)) == d(end)
    assert period_start(period, d(end)) == d(start)
    assert current_period(period, d(today)) == BillingPeriod(d(start), d(end), invoice_type)


def test_biweekly_split_start_when_the_end_is_a_monday_first_of_month() -> None:
    # contract §4.2 as written: 2020-06-01 is a Monday in W23 (odd). Its previous
    # even-week Monday is 05-25, whose bi-week 05-25..06-07 crosses into June, so the
    # start is "the 1st of the month after p", the end itself. The type is still partial.
    assert current_period(BIWEEKLY_SPLIT, d("2020-05-27")) == BillingPeriod(
        d("2020-06-01"), d("2020-06-01"), PARTIAL
    )


@pytest.mark.parametrize(
    ("period", "end", "start"),
    [
        # Ruby `date - 1.month` clamps to the end of a shorter month.
        (MONTHLY, "2020-03-31", "2020-02-29"),
        (MONTHLY, "2021-03-31", "2021-02-28"),
        (MONTHLY, "2021-01-01", "2020-12-01"),
        (MONTHLY, "2020-12-15", "2020-11-15"),
        (SEMIMONTHLY, "2021-01-01", "2020-12-16"),
        (SEMIMONTHLY, "2021-03-16", "2021-03-01"),
        (WEEKLY, "2020-03-25", "2020-03-16"),
        (BIWEEKLY, "2020-03-25", "2020-03-09"),
        (WEEKLY_SPLIT, "2020-03-25", "2020-03-23"),
    ],
)
def test_period_start_of_any_end(period: InvoicePeriod, end: str, start: str) -> None:
    assert period_start(period, d(end)) == d(start)


@pytest.mark.parametrize(
    ("period", "today", "last_invoice_end", "expected"),
    [
        # contract §4.2: the latest invoice's end date replaces period_start.
        (WEEKLY_SPLIT, "2020-03-17", "2020-03-18", ("2020-03-18", "2020-03-23", PARTIAL)),
        (WEEKLY_SPLIT, "2020-03-17", "2020-03-16", ("2020-03-16", "2020-03-23", FULL)),
        (BIWEEKLY_SPLIT, "2020-03-17", "2020-03-17", ("2020-03-17", "2020-03-30", PARTIAL)),
        (BIWEEKLY_SPLIT, "2020-03-17", "2020-03-02", ("2020-03-02", "2020-03-30", FULL)),
        # Non-split periods are always AUTO_FULL.
        (BIWEEKLY, "2020-03-17", "2020-03-29", ("2020-03-29", "2020-03-30", FULL)),
        (DAILY, "2020-03-17", "2020-03-18", ("2020-03-18", "2020-03-18", FULL)),
    ],
)
def test_current_period_after_an_invoice(
    period: InvoicePeriod,
    today: str,
    last_invoice_end: str,
    expected: tuple[str, str, InvoiceType],
) -> None:
    start, end, invoice_type = expected
    assert current_period(period, d(today), d(last_invoice_end)) == BillingPeriod(
        d(start), d(end), invoice_type
    )


# 2026 has 53 ISO weeks: W51 12-14, W52 12-21, W53 12-28..2027-01-03, 2027 W01 01-04,
# W02 01-11, W03 01-18, W04 01-25. Yeti crashes on W52 (12-21..27); the deviation
# continues to W02.
BIWEEKLY_ENDS_AROUND_WEEK_53 = {
    "2026-12-21": days("2026-12-14", "2026-12-20"),
    "2027-01-11": days("2026-12-21", "2027-01-10"),
    "2027-01-25": days("2027-01-11", "2027-01-17"),
}
BIWEEKLY_SPLIT_AROUND_WEEK_53 = {
    # A full bi-week 12-07..12-20 (W50, W51).
    ("2026-12-21", "2026-12-07", FULL): days("2026-12-14", "2026-12-20"),
    # Split at the new year; start is the W52 Monday (W53 is odd).
    ("2027-01-01", "2026-12-21", PARTIAL): days("2026-12-21", "2026-12-31"),
    # Back from W02 past W01 and W53 (both odd) to W52; that block crossed the year.
    ("2027-01-11", "2027-01-01", PARTIAL): days("2027-01-01", "2027-01-10"),
    ("2027-01-25", "2027-01-11", FULL): days("2027-01-11", "2027-01-17"),
}


@pytest.mark.parametrize("today", days("2026-12-14", "2027-01-17"), ids=str)
def test_biweekly_in_a_53_week_year(today: date) -> None:
    end = period_end(BIWEEKLY, today)
    assert end > today
    assert end.weekday() == 0
    assert end.isocalendar().week % 2 == 0
    expected = [e for e, covered in BIWEEKLY_ENDS_AROUND_WEEK_53.items() if today in covered]
    assert [end] == [d(e) for e in expected]


@pytest.mark.parametrize("today", days("2026-12-14", "2027-01-17"), ids=str)
def test_biweekly_split_in_a_53_week_year(today: date) -> None:
    period = current_period(BIWEEKLY_SPLIT, today)
    assert period.end > today
    assert period.end.weekday() == 0 or period.end.day == 1
    assert period.end <= period_end(BIWEEKLY, today)
    assert period.start <= today
    expected = [
        BillingPeriod(d(start), d(end), invoice_type)
        for (end, start, invoice_type), covered in BIWEEKLY_SPLIT_AROUND_WEEK_53.items()
        if today in covered
    ]
    assert [period] == expected


@pytest.mark.parametrize(
    ("today", "end"),
    [
        ("2026-12-23", "2027-01-11"),  # W52 of 2026: Yeti raises here
        ("2026-12-30", "2027-01-11"),  # W53 of 2026: Yeti's own answer
        ("2020-12-23", "2021-01-11"),  # W52 of 2020 (53 weeks)
        ("2020-12-30", "2021-01-11"),
        ("2015-12-23", "2016-01-11"),  # W52 of 2015 (53 weeks)
        ("2015-12-30", "2016-01-11"),
    ],
)
def test_biweekly_end_after_week_52_of_a_53_week_year(today: str, end: str) -> None:
    assert period_end(BIWEEKLY, d(today)) == d(end)
    assert next_invoice(BIWEEKLY, "UTC", utc(today + "T12:00:00")) == (utc(end), FULL)


# Upper bound of end - today, in days; BiWeekly reaches 21 only with the week-53 deviation.
MAX_DAYS_AHEAD = {
    DAILY: 1,
    WEEKLY: 7,
    BIWEEKLY: 21,
    MONTHLY: 31,
    BIWEEKLY_SPLIT: 21,
    WEEKLY_SPLIT: 7,
    SEMIMONTHLY: 16,
}


def _in_week_52_of_a_53_week_year(day: date) -> bool:
    return day.isocalendar().week == 52 and date(day.year, 12, 28).isocalendar().week == 53


@pytest.mark.parametrize("period", list(InvoicePeriod), ids=lambda p: p.name)
def test_today_lies_in_its_period_2019_to_2028(period: InvoicePeriod) -> None:
    exceptions: list[date] = []
    for today in days("2019-01-01", "2028-12-31"):
        end = period_end(period, today)
        start = period_start(period, end)
        assert today < end, today
        assert (end - today).days <= MAX_DAYS_AHEAD[period], today
        if not period.is_split:
            assert current_period(period, today).invoice_type is FULL
        if start <= today:
            continue
        exceptions.append(today)
        if period is BIWEEKLY:
            # Contract start rule (end's Monday - 14d) kept after the week-52 deviation:
            # it lands on the W53 Monday, after today. No effect on the (always full) type.
            assert _in_week_52_of_a_53_week_year(today), today
            assert start == end - timedelta(weeks=2)
        else:
            # The 1st-of-month Monday quirk shown in the test above.
            assert period is BIWEEKLY_SPLIT, today
            assert start == end, today
            assert (end.day, end.weekday(), end.isocalendar().week % 2) == (1, 0, 1), today
    if period is BIWEEKLY:
        assert exceptions == days("2020-12-21", "2020-12-27") + days("2026-12-21", "2026-12-27")
    elif period is BIWEEKLY_SPLIT:
        assert d("2020-05-27") in exceptions
    else:
        assert exceptions == []


@pytest.mark.parametrize(
    ("period", "zone", "now", "expected_at", "expected_type"),
    [
        # contract §4.2 example: weekly, 2020-01-06 00:00 UTC, or 00:00 Kyiv (+02:00).
        (WEEKLY, "UTC", utc("2020-01-01T12:00:00"), "2020-01-06T00:00:00", FULL),
        (WEEKLY, "Europe/Kyiv", utc("2020-01-01T12:00:00"), "2020-01-05T22:00:00", FULL),
        (SEMIMONTHLY, "Europe/Kyiv", utc("2020-07-01T12:00:00"), "2020-07-15T21:00:00", FULL),
        (WEEKLY_SPLIT, "UTC", utc("2020-03-30T12:00:00"), "2020-04-01T00:00:00", PARTIAL),
        (BIWEEKLY_SPLIT, "UTC", utc("2020-03-30T12:00:00"), "2020-04-01T00:00:00", PARTIAL),
        # Los Angeles: PST -08:00 until 2020-03-08 02:00, PDT -07:00 until 2020-11-01 02:00.
        (WEEKLY, "America/Los_Angeles", utc("2020-02-26T20:00:00"), "2020-03-02T08:00:00", FULL),
        (WEEKLY, "America/Los_Angeles", utc("2020-03-04T20:00:00"), "2020-03-09T07:00:00", FULL),
        (DAILY, "America/Los_Angeles", utc("2020-03-07T20:00:00"), "2020-03-08T08:00:00", FULL),
        (DAILY, "America/Los_Angeles", utc("2020-03-08T20:00:00"), "2020-03-09T07:00:00", FULL),
        (DAILY, "America/Los_Angeles", utc("2020-10-31T20:00:00"), "2020-11-01T07:00:00", FULL),
        (DAILY, "America/Los_Angeles", utc("2020-11-01T20:00:00"), "2020-11-02T08:00:00", FULL),
        (MONTHLY, "America/Los_Angeles", utc("2020-10-15T20:00:00"), "2020-11-01T07:00:00", FULL),
        (MONTHLY, "America/Los_Angeles", utc("2020-11-15T20:00:00"), "2020-12-01T08:00:00", FULL),
        # Tokyo (+09:00) is already on the 17th (a Tuesday) at 23:30 UTC on Monday the 16th.
        (DAILY, "Asia/Tokyo", utc("2020-03-16T23:30:00"), "2020-03-17T15:00:00", FULL),
        (DAILY, "UTC", utc("2020-03-16T23:30:00"), "2020-03-17T00:00:00", FULL),
        (WEEKLY, "Asia/Tokyo", utc("2020-03-22T15:30:00"), "2020-03-29T15:00:00", FULL),
        (WEEKLY, "UTC", utc("2020-03-22T15:30:00"), "2020-03-23T00:00:00", FULL),
        # Los Angeles (PDT) is still on the 16th at 03:00 UTC on the 17th.
        (DAILY, "America/Los_Angeles", utc("2020-03-17T03:00:00"), "2020-03-17T07:00:00", FULL),
        # `now` given in another zone: 08:30 in Tokyo is 23:30 UTC the day before.
        (
            DAILY,
            "UTC",
            datetime(2020, 3, 17, 8, 30, tzinfo=ZoneInfo("Asia/Tokyo")),
            "2020-03-17T00:00:00",
            FULL,
        ),
    ],
)
def test_next_invoice(
    period: InvoicePeriod,
    zone: str,
    now: datetime,
    expected_at: str,
    expected_type: InvoiceType,
) -> None:
    at, invoice_type = next_invoice(period, zone, now)
    assert at == utc(expected_at)
    assert at.tzinfo is UTC
    assert invoice_type is expected_type


# Days with no local midnight, checked with zoneinfo: clocks jump from 00:00 to 01:00
# (Santiago -04 to -03, Havana -05 to -04, Beirut +02 to +03); Toronto in 1919 jumped
# from 23:30 to 00:30, so its first instant is 00:30 EDT; Apia skipped 2011-12-30
# entirely, so its first instant is 2011-12-31 00:00 (+14).
@pytest.mark.parametrize(
    ("period", "zone", "now", "end", "expected_at"),
    [
        (DAILY, "America/Santiago", "2022-09-10T15:00:00", "2022-09-11", "2022-09-11T04:00:00"),
        (DAILY, "America/Havana", "2020-03-07T17:00:00", "2020-03-08", "2020-03-08T05:00:00"),
        (DAILY, "Asia/Beirut", "2020-03-28T10:00:00", "2020-03-29", "2020-03-28T22:00:00"),
        (WEEKLY, "America/Toronto", "1919-03-27T17:00:00", "1919-03-31", "1919-03-31T04:30:00"),
        (DAILY, "Pacific/Apia", "2011-12-29T22:00:00", "2011-12-30", "2011-12-30T10:00:00"),
    ],
)
def test_next_invoice_when_local_midnight_does_not_exist(
    period: InvoicePeriod, zone: str, now: str, end: str, expected_at: str
) -> None:
    wall_midnight = datetime.fromisoformat(end)
    round_trip = wall_midnight.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    assert round_trip.astimezone(ZoneInfo(zone)).replace(tzinfo=None) != wall_midnight
    assert next_invoice(period, zone, utc(now)) == (utc(expected_at), FULL)


def test_next_invoice_when_local_midnight_is_ambiguous() -> None:
    # Havana fell back from 01:00 CDT (-04) to 00:00 CST (-05) on 2020-11-01, so midnight
    # happened at 04:00 and 05:00 UTC; the earlier one is used.
    assert next_invoice(DAILY, "America/Havana", utc("2020-10-31T17:00:00")) == (
        utc("2020-11-01T04:00:00"),
        FULL,
    )


def test_next_invoice_rejects_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_invoice(DAILY, "UTC", datetime(2020, 3, 17, 12, 0))
