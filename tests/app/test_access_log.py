"""Access lines: gathered per turn of the event loop, written in atomic pieces."""

from __future__ import annotations

import asyncio
import os

import pytest

from app.middleware import AccessLog


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    written: list[bytes] = []

    def record(fd: int, data: bytes) -> int:
        written.append(bytes(data))
        return len(data)

    monkeypatch.setattr(os, "write", record)
    return written


def test_the_lines_of_one_loop_turn_go_out_in_one_write(writes: list[bytes]) -> None:
    log = AccessLog(fd=99)

    async def requests() -> None:
        for n in range(5):
            log.write(b'{"n":%d}\n' % n)
        assert writes == []  # nothing yet: the loop has not turned
        await asyncio.sleep(0)

    asyncio.run(requests())
    assert writes == [b"".join(b'{"n":%d}\n' % n for n in range(5))]


def test_no_write_exceeds_pipe_buf_or_splits_a_line(writes: list[bytes]) -> None:
    log = AccessLog(fd=99)
    line = b"x" * 299 + b"\n"

    async def many() -> None:
        for _ in range(100):
            log.write(line)
        await asyncio.sleep(0)

    asyncio.run(many())
    assert b"".join(writes) == line * 100
    assert all(len(w) <= AccessLog.PIPE_BUF and w.endswith(b"\n") for w in writes)
    assert len(writes) == -(-100 * len(line) // (AccessLog.PIPE_BUF // len(line) * len(line)))


def test_outside_an_event_loop_a_line_is_written_at_once(writes: list[bytes]) -> None:
    AccessLog(fd=99).write(b"now\n")
    assert writes == [b"now\n"]
