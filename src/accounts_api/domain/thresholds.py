"""Balance thresholds (contract §7): the state an account's balance is in, and the events a
change of balance or of thresholds causes. Pure: the caller reads the settings row under the
account's lock and writes what this returns in the same transaction.

- States: NONE (0), LOW (1), HIGH (2).
- Comparisons are strict: low is reached when balance < low, high when balance > high; a NULL
  threshold is never reached.
- First clearing (low, else high), then reaching (low, else high); the new state is LOW if low
  is reached, else HIGH if high is reached, else NONE. A jump from low straight to high gives
  two events: low cleared, then high reached.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal


class State(enum.IntEnum):
    NONE = 0
    LOW = 1
    HIGH = 2


class Event(enum.IntEnum):
    """contract §7: the log's event ids; `name` is Yeti's spelling of the event."""

    LOW_CLEARED = 1
    HIGH_CLEARED = 2
    LOW_REACHED = 3
    HIGH_REACHED = 4

    @property
    def event_name(self) -> str:
        return EVENT_NAMES[self]

    @property
    def subject_suffix(self) -> str:
        """contract §7: `Account with id <id> <suffix>`."""
        return _SUBJECT_SUFFIXES[self]


# contract §7: "The event names really are spelled 'Theshold'."
EVENT_NAMES = {
    Event.LOW_CLEARED: "AccountLowThesholdCleared",
    Event.HIGH_CLEARED: "AccountHighThesholdCleared",
    Event.LOW_REACHED: "AccountLowThesholdReached",
    Event.HIGH_REACHED: "AccountHighThesholdReached",
}
EVENTS_BY_NAME = {name: event for event, name in EVENT_NAMES.items()}
_SUBJECT_SUFFIXES = {
    Event.LOW_CLEARED: "low balance cleared",
    Event.HIGH_CLEARED: "high balance cleared",
    Event.LOW_REACHED: "low balance",
    Event.HIGH_REACHED: "high balance",
}


def subject(event: Event, account_id: int) -> str:
    return f"Account with id {account_id} {event.subject_suffix}"


@dataclass(frozen=True)
class Thresholds:
    low: Decimal | None
    high: Decimal | None

    def low_reached(self, balance: Decimal) -> bool:
        return self.low is not None and balance < self.low

    def high_reached(self, balance: Decimal) -> bool:
        return self.high is not None and balance > self.high


@dataclass(frozen=True)
class Outcome:
    events: tuple[Event, ...]
    state: State


def evaluate(state: State, thresholds: Thresholds, balance: Decimal) -> Outcome:
    """contract §7, `check_threshold`: the events, in order, and the state after."""
    low, high = thresholds.low_reached(balance), thresholds.high_reached(balance)
    events: list[Event] = []
    if state == State.LOW and not low:
        events.append(Event.LOW_CLEARED)
    elif state == State.HIGH and not high:
        events.append(Event.HIGH_CLEARED)
    if state != State.LOW and low:
        events.append(Event.LOW_REACHED)
    elif state != State.HIGH and high:
        events.append(Event.HIGH_REACHED)
    new_state = State.LOW if low else State.HIGH if high else State.NONE
    return Outcome(tuple(events), new_state)
