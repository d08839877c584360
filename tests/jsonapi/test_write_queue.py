"""Writes to one record take turns in the worker (jsonapi/write_queue.py)."""

from __future__ import annotations

import asyncio

import pytest

from accounts_api.jsonapi.errors import LockTimeout
from accounts_api.jsonapi.write_queue import WriteQueues


def test_writers_of_one_record_take_turns_in_arrival_order() -> None:
    async def main() -> list[str]:
        queues = WriteQueues(wait_limit=10)
        order: list[str] = []

        async def write(name: str) -> None:
            async with queues.turn("accounts:1"):
                order.append(f"{name} starts")
                await asyncio.sleep(0.01)
                order.append(f"{name} ends")

        await asyncio.gather(*(write(name) for name in "abc"))
        assert len(queues) == 0  # nothing kept once every writer is through
        return order

    assert asyncio.run(main()) == [
        "a starts", "a ends", "b starts", "b ends", "c starts", "c ends"
    ]  # fmt: skip


def test_writers_of_other_records_and_unqueued_requests_do_not_wait() -> None:
    async def main() -> None:
        queues = WriteQueues(wait_limit=10)
        async with queues.turn("accounts:1"):
            async with asyncio.timeout(5):  # a hang detector: these pass straight through
                async with queues.turn("accounts:2"):
                    pass
                async with queues.turn(None):
                    pass
            assert len(queues) == 1

    asyncio.run(main())


def test_a_writer_whose_turn_does_not_come_within_the_limit_gets_a_lock_timeout() -> None:
    async def main() -> None:
        queues = WriteQueues(wait_limit=0.05)
        async with queues.turn("accounts:1"):
            with pytest.raises(LockTimeout):
                async with queues.turn("accounts:1"):
                    pytest.fail("the turn was given while the record was busy")
        # the one that gave up left no trace; the record is free again
        assert len(queues) == 0
        async with queues.turn("accounts:1"):
            pass

    asyncio.run(main())
