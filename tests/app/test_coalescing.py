"""Read coalescing: concurrent reads of single users share batches, fail together, expire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from actors.errors import DatabaseUnavailable, NoWorkerAvailable
from actors.messages import GetUsers, UserRow
from app.coalescing import ReadCoalescer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def user(user_id: int) -> UserRow:
    return (user_id, f"u{user_id}", f"u{user_id}@example.com", "member", 1, NOW, NOW)


class FakeDatabase:
    """Answers GetUsers after a gate opens; records every batch."""

    def __init__(self, existing: set[int]) -> None:
        self.existing = existing
        self.batches: list[tuple[int, ...]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.error: Exception | None = None

    async def ask(self, message: GetUsers) -> dict[int, UserRow]:
        self.batches.append(message.user_ids)
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return {i: user(i) for i in message.user_ids if i in self.existing}


def test_a_lone_read_is_sent_at_once_as_a_batch_of_one() -> None:
    async def scenario() -> tuple[UserRow | None, list[tuple[int, ...]]]:
        db = FakeDatabase({1})
        reads = ReadCoalescer(db.ask, lambda: 4)
        return await asyncio.wait_for(reads.load(1), 2), db.batches

    found, batches = asyncio.run(scenario())
    assert found is not None and found[0] == 1
    assert batches == [(1,)]


def test_reads_asked_for_together_go_in_one_batch_and_missing_ids_answer_none() -> None:
    async def scenario() -> tuple[list[UserRow | None], list[tuple[int, ...]]]:
        db = FakeDatabase({1, 3})
        reads = ReadCoalescer(db.ask, lambda: 4)
        results = await asyncio.wait_for(asyncio.gather(*(reads.load(i) for i in (1, 2, 3))), 2)
        return results, db.batches

    results, batches = asyncio.run(scenario())
    assert [u[0] if u else None for u in results] == [1, None, 3]
    assert batches == [(1, 2, 3)]


def test_while_every_worker_is_busy_new_reads_wait_and_then_go_together() -> None:
    async def scenario() -> list[tuple[int, ...]]:
        db = FakeDatabase({1, 2, 3, 4})
        db.gate.clear()
        reads = ReadCoalescer(db.ask, lambda: 1)  # one DbWorker
        first = reads.load(1)
        await asyncio.sleep(0)  # the first batch is out, holding the only worker
        await asyncio.sleep(0)
        later = [reads.load(i) for i in (2, 3, 4)]
        await asyncio.sleep(0.01)
        assert db.batches == [(1,)], "nothing more may be sent while the worker is busy"
        db.gate.set()
        await asyncio.wait_for(asyncio.gather(first, *later), 2)
        return db.batches

    assert asyncio.run(scenario()) == [(1,), (2, 3, 4)]


def test_reads_of_the_same_id_share_one_entry() -> None:
    async def scenario() -> tuple[list[UserRow | None], list[tuple[int, ...]]]:
        db = FakeDatabase({7})
        reads = ReadCoalescer(db.ask, lambda: 4)
        results = await asyncio.wait_for(asyncio.gather(*(reads.load(7) for _ in range(5))), 2)
        return results, db.batches

    results, batches = asyncio.run(scenario())
    assert all(u is not None and u[0] == 7 for u in results)
    assert batches == [(7,)]


def test_batches_hold_at_most_max_batch_ids() -> None:
    async def scenario() -> list[tuple[int, ...]]:
        db = FakeDatabase(set(range(10)))
        reads = ReadCoalescer(db.ask, lambda: 8, max_batch=4)
        await asyncio.wait_for(asyncio.gather(*(reads.load(i) for i in range(10))), 2)
        return db.batches

    assert [len(b) for b in asyncio.run(scenario())] == [4, 4, 2]


def test_a_failed_batch_fails_every_read_of_it_each_with_its_own_exception() -> None:
    async def scenario() -> tuple[BaseException | UserRow | None, BaseException | UserRow | None]:
        db = FakeDatabase({1, 2})
        db.error = DatabaseUnavailable("down")
        reads = ReadCoalescer(db.ask, lambda: 4)
        return await asyncio.wait_for(
            asyncio.gather(reads.load(1), reads.load(2), return_exceptions=True), 2)

    first, second = asyncio.run(scenario())
    assert isinstance(first, DatabaseUnavailable) and isinstance(second, DatabaseUnavailable)
    assert first is not second


def test_a_read_that_could_not_be_sent_within_max_wait_fails_with_503() -> None:
    now = [0.0]

    async def scenario() -> BaseException | UserRow | None:
        db = FakeDatabase({1, 2})
        db.gate.clear()
        reads = ReadCoalescer(db.ask, lambda: 1, max_wait=1.0, clock=lambda: now[0])
        busy = reads.load(1)
        await asyncio.sleep(0)
        waiting = reads.load(2)
        now[0] = 5.0  # the worker stayed busy far longer than max_wait
        db.gate.set()
        await asyncio.wait_for(busy, 2)
        results = await asyncio.wait_for(asyncio.gather(waiting, return_exceptions=True), 2)
        return results[0]

    assert isinstance(asyncio.run(scenario()), NoWorkerAvailable)


def test_one_reader_giving_up_does_not_cancel_a_shared_read() -> None:
    async def scenario() -> UserRow | None:
        db = FakeDatabase({3})
        db.gate.clear()
        reads = ReadCoalescer(db.ask, lambda: 4)
        first = asyncio.ensure_future(reads.load(3))
        second = reads.load(3)
        await asyncio.sleep(0)
        first.cancel()
        db.gate.set()
        return await asyncio.wait_for(second, 2)

    found = asyncio.run(scenario())
    assert found is not None and found[0] == 3


@pytest.mark.parametrize("limit", [0, -1])
def test_at_least_one_batch_is_always_allowed(limit: int) -> None:
    async def scenario() -> UserRow | None:
        db = FakeDatabase({1})
        reads = ReadCoalescer(db.ask, lambda: limit)
        return await asyncio.wait_for(reads.load(1), 2)

    assert asyncio.run(scenario()) is not None
