"""The thread that keeps this worker's snapshot fresh and obeys kill commands.

Every :attr:`Publisher.DEFAULT_INTERVAL` seconds, and shortly after any
supervisor event (so a restart shows at once, not a second later), it takes
a snapshot, keeps it in memory for the worker's own answers and writes it
to the shared directory for the others. With chaos enabled it also looks
for kill commands addressed to this worker every
:attr:`Publisher.COMMAND_POLL` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from app.dashboard.board import SnapshotBoard
from app.dashboard.snapshot import WorkerObserver

__all__ = ["Publisher"]

logger = logging.getLogger(__name__)


class Publisher:
    """Publishes snapshots of one worker; a daemon thread.

    Args:
        observer: builds the snapshots and carries out kills.
        board: where snapshots and commands go.
        chaos: obey kill commands.
        interval: seconds between snapshots when nothing happens.
    """

    DEFAULT_INTERVAL = 1.0
    COMMAND_POLL = 0.2
    # Supervisor events come in bursts (exit, restart, start): wait this
    # long after the first before publishing, to show the burst's outcome.
    SETTLE = 0.05
    # ...and publish at most this often, however stormy the restarts.
    MIN_SPACING = 0.2

    def __init__(self, observer: WorkerObserver, board: SnapshotBoard, *, chaos: bool = False,
                 interval: float = DEFAULT_INTERVAL) -> None:
        self._observer = observer
        self._board = board
        self._chaos = chaos
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-publisher",
                                        daemon=True)
        self.latest: dict[str, Any] | None = None
        """The last snapshot taken (replaced whole; any thread may read it)."""

    def start(self) -> None:
        """Publish a first snapshot now, then keep publishing in the thread."""
        self._publish()
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and withdraw this worker's snapshot."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._board.withdraw()

    def wake(self) -> None:
        """Publish soon (something changed). Any thread; never blocks."""
        self._wake.set()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stopping.is_set():
            due = last + self._interval
            wait = max(0.0, due - time.monotonic())
            if self._chaos:
                wait = min(wait, self.COMMAND_POLL)
            woken = self._wake.wait(wait)
            if self._stopping.is_set():
                return
            if woken:
                self._stopping.wait(max(self.SETTLE, last + self.MIN_SPACING - time.monotonic()))
            if self._chaos:
                self._obey()
            if woken or time.monotonic() >= due:
                self._wake.clear()
                self._publish()
                last = time.monotonic()

    def _publish(self) -> None:
        try:
            snapshot = self._observer.snapshot()
            self.latest = snapshot
            self._board.publish(snapshot)
        except Exception:
            # The dashboard must never take the worker down; the next tick retries.
            logger.exception("could not publish the dashboard snapshot",
                             extra={"event": "dashboard_publish_failed"})

    def _obey(self) -> None:
        try:
            commands = self._board.receive()
        except OSError:
            logger.exception("could not read dashboard commands")
            return
        for nonce, command in commands:
            supervisor, child = str(command.get("supervisor")), str(command.get("child"))
            try:
                error = self._observer.kill(supervisor, child)
                self._board.answer(nonce, {"pid": self._board.pid, "supervisor": supervisor,
                                           "killed": child, "error": error})
            except Exception:
                logger.exception("could not carry out a dashboard kill command")
