"""A failed attempt at a delivery: what its log says, and when the next one is made."""

from __future__ import annotations

import random

# the longest pause between two attempts
MAX_DELAY = 60 * 60.0
# the longest error text kept
MAX_ERROR = 1000


def delay(attempts: int, base: float) -> float:
    """Seconds from the `attempts`-th failed attempt to the next: base * 2^(attempts - 1), at
    most an hour, of which a random part of up to half is left out, so that deliveries that
    failed together (a receiver that was down) do not all come back at the same moment."""
    exponent = min(max(attempts - 1, 0), 32)
    ceiling = min(base * 2.0**exponent, MAX_DELAY)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def describe(error: BaseException) -> str:
    """`ConnectError: [Errno 111] Connection refused`; the class alone when it says nothing."""
    text = str(error).strip()
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return described[:MAX_ERROR]
