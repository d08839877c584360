"""When a failed delivery is tried again, and what its log says."""

from __future__ import annotations

from accounts_api.delivery import retries


def test_the_delay_doubles_per_attempt_jittered_down_by_at_most_half() -> None:
    for attempts, ceiling in ((1, 5.0), (2, 10.0), (3, 20.0), (10, 2560.0)):
        delays = [retries.delay(attempts, 5.0) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1


def test_the_delay_is_at_most_an_hour() -> None:
    assert all(retries.delay(n, 5.0) <= retries.MAX_DELAY for n in (12, 13, 50, 10_000))
    assert retries.delay(10_000, 5.0) >= retries.MAX_DELAY / 2


def test_an_error_is_described_by_its_class_and_text() -> None:
    assert retries.describe(ConnectionRefusedError(111, "refused")) == (
        "ConnectionRefusedError: [Errno 111] refused"
    )
    assert retries.describe(TimeoutError()) == "TimeoutError"
    assert len(retries.describe(ValueError("x" * 5000))) == retries.MAX_ERROR
