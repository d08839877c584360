"""Writes to one record take turns in the worker, those that queued up together in one batch
(jsonapi/write_queue.py)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.responses import Response

from accounts_api.jsonapi.errors import LockTimeout
from accounts_api.jsonapi.write_queue import Queued, WriteQueues


class Recorder:
    """A batch runner that answers each write with its name after `pause` seconds, and
    records the batches it was given."""

    def __init__(self, pause: float = 0.01, release: asyncio.Event | None = None):
        self.pause = pause
        self.release = release
        self.batches: list[list[str]] = []

    async def __call__(self, batch: list[Queued[str]]) -> None:
        self.batches.append([queued.item for queued in batch])
        if self.release is not None:
            await self.release.wait()
        await asyncio.sleep(self.pause)
        for queued in batch:
            queued.settle(Response(queued.item))


def test_writes_queued_while_the_record_is_busy_form_one_batch_in_arrival_order() -> None:
    async def main() -> None:
        queues: WriteQueues[str] = WriteQueues(wait_limit=10)
        run = Recorder()
        first = asyncio.create_task(queues.write("accounts:1", "a", run))
        await asyncio.sleep(0)  # `a` finds the record idle: a batch of one
        others = [queues.write("accounts:1", name, run) for name in "bcd"]
        answers = await asyncio.gather(first, *others)
        assert [bytes(answer.body) for answer in answers] == [b"a", b"b", b"c", b"d"]
        assert run.batches == [["a"], ["b", "c", "d"]]
        assert len(queues) == 0  # nothing kept once every writer is through

    asyncio.run(main())


def test_a_batch_takes_at_most_the_limit() -> None:
    async def main() -> None:
        queues: WriteQueues[str] = WriteQueues(wait_limit=10, batch_limit=2)
        run = Recorder()
        await asyncio.gather(*(queues.write("accounts:1", name, run) for name in "abcde"))
        assert run.batches == [["a", "b"], ["c", "d"], ["e"]]

    asyncio.run(main())


def test_writes_of_other_records_do_not_wait() -> None:
    async def main() -> None:
        queues: WriteQueues[str] = WriteQueues(wait_limit=10)
        release = asyncio.Event()
        busy = Recorder(release=release)
        held = asyncio.create_task(queues.write("accounts:1", "a", busy))
        await asyncio.sleep(0.01)
        async with asyncio.timeout(5):  # a hang detector: this passes straight through
            answer = await queues.write("accounts:2", "b", Recorder())
        assert answer.body == b"b"
        assert len(queues) == 1
        release.set()
        await held

    asyncio.run(main())


def test_a_writer_whose_turn_does_not_come_within_the_limit_gets_a_lock_timeout() -> None:
    async def main() -> None:
        queues: WriteQueues[str] = WriteQueues(wait_limit=0.05)
        release = asyncio.Event()
        run = Recorder(release=release)
        held = asyncio.create_task(queues.write("accounts:1", "a", run))
        await asyncio.sleep(0.01)
        with pytest.raises(LockTimeout):
            await queues.write("accounts:1", "b", run)
        release.set()
        await held
        # the one that gave up left no trace: it was never given to a batch
        assert run.batches == [["a"]]
        assert len(queues) == 0
        assert (await queues.write("accounts:1", "c", run)).body == b"c"

    asyncio.run(main())


def test_a_batch_runner_that_fails_answers_its_writes_with_its_error() -> None:
    async def main() -> None:
        queues: WriteQueues[str] = WriteQueues(wait_limit=10)

        async def broken(batch: list[Queued[str]]) -> None:
            raise RuntimeError("broken")

        with pytest.raises(RuntimeError, match="broken"):
            await queues.write("accounts:1", "a", broken)
        assert len(queues) == 0

    asyncio.run(main())
