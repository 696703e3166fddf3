"""The publisher: a snapshot every interval, soon after an event, never in a storm."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from app.dashboard.board import SnapshotBoard
from app.dashboard.publisher import Publisher
from tests.waiting import wait_until


class Observer:
    """Counts snapshots; kills by answering a fixed error."""

    def __init__(self) -> None:
        self.snapshots = 0
        self.killed: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            self.snapshots += 1
            return {"pid": 1, "updated_at": time.time(), "n": self.snapshots}

    def kill(self, supervisor: str, child: str) -> str | None:
        self.killed.append((supervisor, child))
        return None if child == "w1" else "not running"


def test_it_publishes_at_start_and_then_every_interval(tmp_path: Path) -> None:
    observer = Observer()
    publisher = Publisher(observer, SnapshotBoard(tmp_path, pid=1), interval=0.1)  # type: ignore[arg-type]
    publisher.start()
    try:
        assert publisher.latest is not None and (tmp_path / "worker-1.json").exists()
        wait_until(lambda: observer.snapshots >= 4, timeout=2)
    finally:
        publisher.stop()
    assert not (tmp_path / "worker-1.json").exists()


def test_an_event_is_published_soon_but_a_storm_of_them_at_a_bounded_rate() -> None:
    observer = Observer()
    publisher = Publisher(observer, SnapshotBoard(None, pid=1), interval=60)  # type: ignore[arg-type]
    publisher.start()
    try:
        publisher.wake()
        wait_until(lambda: observer.snapshots == 2, timeout=Publisher.SETTLE + 0.5)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            publisher.wake()
            time.sleep(0.005)
    finally:
        publisher.stop()
    assert observer.snapshots <= 2 + 1.0 / Publisher.MIN_SPACING + 1


def test_with_chaos_it_carries_out_the_commands_left_for_it(tmp_path: Path) -> None:
    observer = Observer()
    publisher = Publisher(observer, SnapshotBoard(tmp_path, pid=1, alive=lambda _: True),  # type: ignore[arg-type]
                          chaos=True, interval=60)
    sender = SnapshotBoard(tmp_path, pid=2, alive=lambda _: True)
    publisher.start()
    try:
        ok = sender.send(1, {"supervisor": "db", "child": "w1"})
        gone = sender.send(1, {"supervisor": "db", "child": "w9"})
        wait_until(lambda: all((tmp_path / f"done-{nonce}.json").exists()
                               for nonce in (ok, gone)), timeout=2)
        assert sender.take_answer(ok) == {"pid": 1, "supervisor": "db", "killed": "w1",
                                          "error": None}
        assert sender.take_answer(gone) == {"pid": 1, "supervisor": "db", "killed": "w9",
                                            "error": "not running"}
    finally:
        publisher.stop()


def test_without_chaos_commands_are_left_alone(tmp_path: Path) -> None:
    observer = Observer()
    publisher = Publisher(observer, SnapshotBoard(tmp_path, pid=1), interval=0.05)  # type: ignore[arg-type]
    SnapshotBoard(tmp_path, pid=2, alive=lambda _: True).send(1, {"supervisor": "db",
                                                                  "child": "w1"})
    publisher.start()
    try:
        wait_until(lambda: observer.snapshots >= 4, timeout=2)
    finally:
        publisher.stop()
    assert observer.killed == []
