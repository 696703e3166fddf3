"""Invalidation stamps: shared with forked processes, changed by every bump."""

from __future__ import annotations

import os

import pytest

from actors.stamps import Stamps, StampTable, shared


def test_a_bump_gives_the_key_a_stamp_it_never_had() -> None:
    table = StampTable(1 << 10)
    seen = {table.current(5)}
    for _ in range(1000):
        table.bump(5)
        assert table.current(5) not in seen
        seen.add(table.current(5))


def test_keys_are_independent_unless_they_share_a_word() -> None:
    table = StampTable(1 << 4)
    before = table.current(3), table.current(3 + 16)
    table.bump(4)
    assert (table.current(3), table.current(3 + 16)) == before
    table.bump(3)
    # 3 and 19 share a word: a bump of one makes the other miss once (never serve stale).
    assert table.current(3) == table.current(19) != before[0]


def test_a_forked_child_writes_the_same_memory_and_bumps_with_its_own_randomness() -> None:
    table = StampTable(1 << 10)
    table.bump(1)
    parent_stamp = table.current(1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: bump key 2 and report what it sees of key 1
        try:
            table.bump(2)
            os.write(write, f"{table.current(1)} {table.current(2)}".encode())
        finally:
            os._exit(0)
    os.close(write)
    seen_parent, child_value = (int(v) for v in os.read(read, 100).split())
    os.close(read)
    os.waitpid(pid, 0)
    assert seen_parent == parent_stamp
    assert table.current(2) == child_value != 0
    table.bump(3)
    assert table.current(3) != child_value  # the generators were reseeded apart


@pytest.mark.parametrize("slots", [0, 3, 1000])
def test_the_table_size_must_be_a_power_of_two(slots: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        StampTable(slots)


def test_the_shared_stamps_are_made_once_per_process_tree() -> None:
    assert shared() is shared()
    assert isinstance(shared(), Stamps)
