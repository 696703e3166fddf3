"""The shared directory: snapshots of live workers only, and kill commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.dashboard.board import (
    SnapshotBoard,
    TooManyCommands,
    clear_board,
    process_alive,
    remove_worker,
)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def board(directory: Path, pid: int, clock: Clock, alive: set[int]) -> SnapshotBoard:
    return SnapshotBoard(directory, pid, clock=clock, alive=lambda p: p in alive)


def snapshot(pid: int, at: float) -> dict[str, object]:
    return {"pid": pid, "updated_at": at}


def test_a_worker_sees_the_fresh_snapshots_of_the_other_live_workers(tmp_path: Path) -> None:
    clock, alive = Clock(), {1, 2, 3}
    for pid in alive:
        board(tmp_path, pid, clock, alive).publish(snapshot(pid, clock.now))

    others = board(tmp_path, 1, clock, alive).others()

    assert sorted(s["pid"] for s in others) == [2, 3]


def test_a_dead_workers_snapshot_is_dropped(tmp_path: Path) -> None:
    clock = Clock()
    gone = dead_pid()
    assert not process_alive(gone)
    SnapshotBoard(tmp_path, gone, clock=clock).publish(snapshot(gone, clock.now))
    me = SnapshotBoard(tmp_path, 1, clock=clock)

    assert me.others() == []
    assert not me.is_live_worker(gone)


def test_a_snapshot_not_rewritten_for_a_while_is_dropped(tmp_path: Path) -> None:
    clock, alive = Clock(), {1, 2}
    board(tmp_path, 2, clock, alive).publish(snapshot(2, clock.now))
    clock.now += SnapshotBoard.STALE_AFTER + 0.1

    assert board(tmp_path, 1, clock, alive).others() == []


def test_a_restarted_worker_appears_with_its_new_pid(tmp_path: Path) -> None:
    clock, alive = Clock(), {1, 2}
    board(tmp_path, 2, clock, alive).publish(snapshot(2, clock.now))
    # Worker 2 dies (the master removes its file) and gunicorn forks worker 3.
    alive.discard(2)
    remove_worker(tmp_path, 2)
    alive.add(3)
    clock.now += 1
    board(tmp_path, 3, clock, alive).publish(snapshot(3, clock.now))

    assert [s["pid"] for s in board(tmp_path, 1, clock, alive).others()] == [3]


def test_without_a_directory_a_worker_sees_only_itself() -> None:
    lonely = SnapshotBoard(None, 1)
    lonely.publish(snapshot(1, 0))

    assert lonely.others() == []
    assert lonely.is_live_worker(1) and not lonely.is_live_worker(2)


def test_a_half_written_or_foreign_file_is_ignored(tmp_path: Path) -> None:
    clock, alive = Clock(), {1, 2, 3}
    (tmp_path / "worker-2.json").write_text('{"pid": 2, "upd')
    (tmp_path / "worker-3.json").write_text('{"pid": 4, "updated_at": 1000.0}')
    (tmp_path / "worker-x.json").write_text("{}")

    assert board(tmp_path, 1, clock, alive).others() == []


def test_a_command_reaches_its_worker_once_and_is_answered(tmp_path: Path) -> None:
    clock, alive = Clock(), {1, 2}
    sender, target = board(tmp_path, 1, clock, alive), board(tmp_path, 2, clock, alive)

    nonce = sender.send(2, {"supervisor": "db", "child": "w1"})

    assert board(tmp_path, 3, clock, alive).receive() == []
    taken = target.receive()
    assert [(n, c["child"]) for n, c in taken] == [(nonce, "w1")]
    assert target.receive() == []
    assert sender.take_answer(nonce) is None
    target.answer(nonce, {"killed": "w1", "error": None})
    assert sender.take_answer(nonce) == {"killed": "w1", "error": None}
    assert sender.take_answer(nonce) is None


def test_an_expired_command_is_dropped_unanswered(tmp_path: Path) -> None:
    clock, alive = Clock(), {1, 2}
    board(tmp_path, 1, clock, alive).send(2, {"supervisor": "db", "child": "w1"})
    clock.now += SnapshotBoard.COMMAND_TTL + 1

    assert board(tmp_path, 2, clock, alive).receive() == []
    assert list(tmp_path.glob("kill-*")) == []


def test_commands_waiting_for_one_worker_are_bounded(tmp_path: Path) -> None:
    sender = board(tmp_path, 1, Clock(), {1, 2})
    for _ in range(SnapshotBoard.MAX_PENDING):
        sender.send(2, {"supervisor": "db", "child": "w1"})

    with pytest.raises(TooManyCommands):
        sender.send(2, {"supervisor": "db", "child": "w1"})


def test_remove_worker_also_drops_the_commands_left_for_it(tmp_path: Path) -> None:
    clock, alive = Clock(), {1, 2}
    board(tmp_path, 2, clock, alive).publish(snapshot(2, clock.now))
    board(tmp_path, 1, clock, alive).send(2, {"supervisor": "db", "child": "w1"})

    remove_worker(tmp_path, 2)

    assert list(tmp_path.iterdir()) == []


def test_clear_board_leaves_other_files_alone(tmp_path: Path) -> None:
    directory = tmp_path / "dashboard"
    clear_board(directory)
    (directory / "worker-7.json").write_text("{}")
    (directory / "kill-7-ab.json").write_text("{}")
    (directory / "notes.txt").write_text("mine")

    clear_board(directory)

    assert [p.name for p in directory.iterdir()] == ["notes.txt"]
