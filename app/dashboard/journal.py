"""What this worker's supervisors reported: recent events and each child's record.

The supervision tree's event hook feeds :class:`SupervisionJournal`. It keeps
the last :attr:`SupervisionJournal.DEFAULT_CAPACITY` events (the dashboard's
log) and, per ``(supervisor, child)``, how often the child started and how
it last ended: a supervisor knows its children's policies and states, not
their history, and a child supervisor restarted by its parent forgets even
that.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from supervisors import EventKind, SupervisorEvent

__all__ = ["ChildRecord", "JournalEntry", "SupervisionJournal"]

# How a supervisor that gave up ends (see supervisors.base): its parent
# records that exit with this error.
_GIVE_UP_ERROR = "GiveUpError("


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One supervisor event and when it happened (Unix time)."""

    at: float
    kind: str
    supervisor: str
    child: str | None
    reason: str | None
    error: str | None

    def as_json(self) -> dict[str, object]:
        return {"at": self.at, "kind": self.kind, "supervisor": self.supervisor,
                "child": self.child, "reason": self.reason, "error": self.error}


@dataclass(slots=True)
class ChildRecord:
    """One child's history in this worker process.

    Attributes:
        starts: times it started (the first start included).
        last_exit: its last exit or failed start, if any.
    """

    starts: int = 0
    last_exit: JournalEntry | None = None

    @property
    def restarts(self) -> int:
        """Times it started again after its first start."""
        return max(0, self.starts - 1)

    @property
    def gave_up(self) -> bool:
        """Whether it (a supervisor) last ended by giving up."""
        error = self.last_exit.error if self.last_exit is not None else None
        return error is not None and error.startswith(_GIVE_UP_ERROR)


class SupervisionJournal:
    """Recent supervisor events and per-child records; any thread may use it.

    Args:
        capacity: events kept for the log.
        on_event: called after each event is recorded (e.g. to publish a
            fresh snapshot at once); must not block.
        clock: wall clock (tests pass a fake one).
    """

    DEFAULT_CAPACITY = 100

    def __init__(self, capacity: int = DEFAULT_CAPACITY,
                 on_event: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._events: deque[JournalEntry] = deque(maxlen=capacity)
        self._children: dict[tuple[str, str], ChildRecord] = {}
        self._clock = clock
        self.on_event = on_event

    def record(self, event: SupervisorEvent) -> None:
        """The supervision tree's event hook (runs in a supervisor's thread)."""
        entry = JournalEntry(self._clock(), event.kind.value, event.supervisor, event.child,
                             event.reason, event.error)
        with self._lock:
            self._events.append(entry)
            if event.child is not None and event.kind in (EventKind.START, EventKind.EXIT):
                # Bounded: a static tree has a fixed set of (supervisor, child) pairs.
                record = self._children.setdefault((event.supervisor, event.child), ChildRecord())
                if event.kind is EventKind.START:
                    record.starts += 1
                else:
                    record.last_exit = entry
        if self.on_event is not None:
            self.on_event()

    def recent(self) -> list[JournalEntry]:
        """The events kept, oldest first."""
        with self._lock:
            return list(self._events)

    def child(self, supervisor: str, child: str) -> ChildRecord:
        """A copy of the record of ``child`` of ``supervisor`` (empty if none)."""
        with self._lock:
            record = self._children.get((supervisor, child))
            return ChildRecord() if record is None else ChildRecord(record.starts,
                                                                    record.last_exit)
