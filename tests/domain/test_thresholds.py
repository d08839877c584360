"""contract §7: every row of the threshold state machine, written out as the contract reads
(strict comparisons, clearing before reaching, NULL thresholds never reached)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts_api.domain.thresholds import (
    EVENT_NAMES,
    Event,
    State,
    Thresholds,
    evaluate,
    subject,
)

NONE, LOW, HIGH = State.NONE, State.LOW, State.HIGH
LOW_CLEARED, HIGH_CLEARED = Event.LOW_CLEARED, Event.HIGH_CLEARED
LOW_REACHED, HIGH_REACHED = Event.LOW_REACHED, Event.HIGH_REACHED
BOTH = Thresholds(Decimal("10"), Decimal("100"))

# (state before, balance, events in order, state after), thresholds low 10, high 100
ROWS = [
    # from None
    (NONE, "9.99", [LOW_REACHED], LOW),
    (NONE, "10", [], NONE),  # strict: equal is not reached
    (NONE, "50", [], NONE),
    (NONE, "100", [], NONE),
    (NONE, "100.01", [HIGH_REACHED], HIGH),
    # from Low
    (LOW, "-5", [], LOW),
    (LOW, "9.99", [], LOW),
    (LOW, "10", [LOW_CLEARED], NONE),
    (LOW, "50", [LOW_CLEARED], NONE),
    (LOW, "100", [LOW_CLEARED], NONE),
    (LOW, "100.01", [LOW_CLEARED, HIGH_REACHED], HIGH),  # low to high in one step: two events
    # from High
    (HIGH, "1000", [], HIGH),
    (HIGH, "100.01", [], HIGH),
    (HIGH, "100", [HIGH_CLEARED], NONE),
    (HIGH, "50", [HIGH_CLEARED], NONE),
    (HIGH, "10", [HIGH_CLEARED], NONE),
    (HIGH, "9.99", [HIGH_CLEARED, LOW_REACHED], LOW),  # high to low in one step
]


@pytest.mark.parametrize(("state", "balance", "events", "after"), ROWS)
def test_state_machine_row(state: State, balance: str, events: list[Event], after: State) -> None:
    outcome = evaluate(state, BOTH, Decimal(balance))
    assert list(outcome.events) == events
    assert outcome.state == after


@pytest.mark.parametrize(
    ("state", "thresholds", "balance", "events", "after"),
    [
        # a NULL threshold is never reached
        (NONE, Thresholds(None, None), "-1000000", [], NONE),
        (NONE, Thresholds(None, Decimal(100)), "-1000000", [], NONE),
        (NONE, Thresholds(Decimal(10), None), "1000000", [], NONE),
        # a threshold set to NULL clears the state it caused
        (LOW, Thresholds(None, Decimal(100)), "-5", [LOW_CLEARED], NONE),
        (HIGH, Thresholds(Decimal(10), None), "500", [HIGH_CLEARED], NONE),
        (LOW, Thresholds(None, None), "-5", [LOW_CLEARED], NONE),
        # thresholds moved past the balance: the state follows at once
        (NONE, Thresholds(Decimal(10), Decimal(20)), "0", [LOW_REACHED], LOW),
        (LOW, Thresholds(Decimal(-10), Decimal(-5)), "0", [LOW_CLEARED, HIGH_REACHED], HIGH),
        # negative thresholds compare as numbers
        (NONE, Thresholds(Decimal("-0.5"), None), "-0.51", [LOW_REACHED], LOW),
    ],
)
def test_null_and_moved_thresholds(
    state: State, thresholds: Thresholds, balance: str, events: list[Event], after: State
) -> None:
    outcome = evaluate(state, thresholds, Decimal(balance))
    assert list(outcome.events) == events
    assert outcome.state == after


def test_event_ids_names_and_subjects_are_yetis() -> None:
    assert {int(event): EVENT_NAMES[event] for event in Event} == {
        1: "AccountLowThesholdCleared",
        2: "AccountHighThesholdCleared",
        3: "AccountLowThesholdReached",
        4: "AccountHighThesholdReached",
    }
    assert [subject(event, 42) for event in Event] == [
        "Account with id 42 low balance cleared",
        "Account with id 42 high balance cleared",
        "Account with id 42 low balance",
        "Account with id 42 high balance",
    ]
