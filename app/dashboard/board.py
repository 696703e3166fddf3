"""The directory through which worker processes see each other.

gunicorn's workers share no memory, so each one publishes a small JSON
snapshot of itself, ``worker-<pid>.json``, in a directory beside the
Prometheus multiprocess files (``usermgmt serve`` creates and empties it
before gunicorn starts), and whichever worker answers the dashboard reads
them all. A file is written whole to a temporary name and renamed, so a
reader never sees half of one.

A snapshot counts only while its process is alive and it is fresh: the
master removes a dead worker's file (gunicorn's ``child_exit``), and a
reader also skips a file whose pid is gone or which has not been rewritten
for :attr:`SnapshotBoard.STALE_AFTER` seconds (a worker killed with its
master, or a pid reused by an unrelated process).

Commands travel the same way: ``kill-<pid>-<nonce>.json`` asks worker
``pid`` to crash one of its actors; it answers with ``done-<nonce>.json``.
Commands older than :attr:`SnapshotBoard.COMMAND_TTL` are ignored, and at
most :attr:`SnapshotBoard.MAX_PENDING` wait for one worker.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

__all__ = ["SnapshotBoard", "TooManyCommands", "clear_board", "process_alive", "remove_worker"]


class TooManyCommands(Exception):
    """A worker already has as many commands waiting as it may."""


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _load(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def remove_worker(directory: Path, pid: int) -> None:
    """Forget a worker that exited: its snapshot and the commands sent to it."""
    with contextlib.suppress(OSError):
        (directory / f"worker-{pid}.json").unlink(missing_ok=True)
        for command in directory.glob(f"kill-{pid}-*.json"):
            command.unlink(missing_ok=True)


def clear_board(directory: Path) -> None:
    """Create ``directory`` and remove every file a board writes there."""
    directory.mkdir(parents=True, exist_ok=True)
    for pattern in ("worker-*.json", "kill-*.json", "done-*.json", ".*.tmp"):
        for stale in directory.glob(pattern):
            stale.unlink(missing_ok=True)


class SnapshotBoard:
    """One worker's view of the shared directory.

    Args:
        directory: the shared directory; ``None`` when there is none (a
            single process, tests): then only this worker is seen.
        pid: this worker's pid.
        clock: wall clock (tests pass a fake one).
        alive: tells whether a pid is alive (tests pass a fake one).
    """

    STALE_AFTER = 5.0
    COMMAND_TTL = 10.0
    MAX_PENDING = 8

    def __init__(self, directory: Path | None, pid: int | None = None,
                 clock: Callable[[], float] = time.time,
                 alive: Callable[[int], bool] = process_alive) -> None:
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid
        self._clock = clock
        self._alive = alive

    # -- snapshots -----------------------------------------------------------

    def publish(self, snapshot: dict[str, Any]) -> None:
        """Write this worker's snapshot (whole, atomically)."""
        if self.directory is not None:
            _write_atomically(self.directory / f"worker-{self.pid}.json", orjson.dumps(snapshot))

    def withdraw(self) -> None:
        """Remove this worker's snapshot (it is stopping)."""
        if self.directory is not None:
            remove_worker(self.directory, self.pid)

    def others(self) -> list[dict[str, Any]]:
        """The fresh snapshots of the other live workers."""
        if self.directory is None:
            return []
        now = self._clock()
        found = []
        for path in self.directory.glob("worker-*.json"):
            try:
                pid = int(path.stem.removeprefix("worker-"))
            except ValueError:
                continue
            if pid == self.pid or not self.is_live_worker(pid):
                continue
            snapshot = _load(path)
            if (isinstance(snapshot, dict) and snapshot.get("pid") == pid
                    and now - float(snapshot.get("updated_at", 0)) <= self.STALE_AFTER):
                found.append(snapshot)
        return found

    def is_live_worker(self, pid: int) -> bool:
        """Whether ``pid`` is this worker or another live one that published."""
        if pid == self.pid:
            return True
        if self.directory is None or not self._alive(pid):
            return False
        return (self.directory / f"worker-{pid}.json").exists()

    # -- commands ------------------------------------------------------------

    def send(self, pid: int, command: dict[str, Any]) -> str:
        """Leave ``command`` for worker ``pid``; returns the nonce its answer carries.

        Raises:
            TooManyCommands: if ``MAX_PENDING`` commands already wait for it.
        """
        assert self.directory is not None, "no shared directory to send through"
        now = self._clock()
        for late in self.directory.glob("done-*.json"):  # answers nobody waited for
            with contextlib.suppress(OSError):
                if now - late.stat().st_mtime > self.COMMAND_TTL:
                    late.unlink()
        if len(list(self.directory.glob(f"kill-{pid}-*.json"))) >= self.MAX_PENDING:
            raise TooManyCommands(f"worker {pid} has {self.MAX_PENDING} commands waiting")
        nonce = secrets.token_hex(8)
        _write_atomically(self.directory / f"kill-{pid}-{nonce}.json",
                          orjson.dumps({**command, "sent_at": now}))
        return nonce

    def receive(self) -> list[tuple[str, dict[str, Any]]]:
        """Take the commands left for this worker: ``[(nonce, command), ...]``.

        Each is removed as it is taken; expired ones are dropped unanswered.
        """
        if self.directory is None:
            return []
        now = self._clock()
        taken = []
        for path in sorted(self.directory.glob(f"kill-{self.pid}-*.json")):
            command = _load(path)
            path.unlink(missing_ok=True)
            if (isinstance(command, dict)
                    and now - float(command.get("sent_at", 0)) <= self.COMMAND_TTL):
                taken.append((path.stem.rpartition("-")[2], command))
        return taken

    def answer(self, nonce: str, result: dict[str, Any]) -> None:
        """Answer the command ``nonce``."""
        if self.directory is not None:
            _write_atomically(self.directory / f"done-{nonce}.json", orjson.dumps(result))

    def take_answer(self, nonce: str) -> dict[str, Any] | None:
        """The answer to command ``nonce`` if it came (and remove it)."""
        assert self.directory is not None
        path = self.directory / f"done-{nonce}.json"
        answer = _load(path)
        if answer is None:
            return None
        path.unlink(missing_ok=True)
        return answer if isinstance(answer, dict) else None

    def forget(self, nonce: str, pid: int) -> None:
        """Give up on command ``nonce``: remove it, or its late answer."""
        if self.directory is not None:
            (self.directory / f"kill-{pid}-{nonce}.json").unlink(missing_ok=True)
            (self.directory / f"done-{nonce}.json").unlink(missing_ok=True)
