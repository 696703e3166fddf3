"""Actors and waiting helpers shared by the supervisor tests.

Every wait here is bounded; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from supervisors import SupervisorEvent
from tests import waiting

TIMEOUT = 2.0


def wait_until(
    predicate: Callable[[], object],
    timeout: float = TIMEOUT,
    description: str | Callable[[], str] | None = None,
) -> float:
    """:func:`tests.waiting.wait_until`, polling often: supervisors react in milliseconds."""
    return waiting.wait_until(predicate, timeout, description, interval=0.002)


class Journal:
    """Thread-safe record of what actors did, in the order they did it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[str, str]] = []

    def add(self, what: str, tag: str) -> None:
        with self._lock:
            self._entries.append((what, tag))

    @property
    def entries(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._entries)

    def tags(self, what: str) -> list[str]:
        return [tag for kind, tag in self.entries if kind == what]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Events:
    """An event_hook that keeps every SupervisorEvent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[SupervisorEvent] = []

    def __call__(self, event: SupervisorEvent) -> None:
        with self._lock:
            self._events.append(event)

    @property
    def all(self) -> list[SupervisorEvent]:
        with self._lock:
            return list(self._events)

    def of(self, kind: str, child: str | None = None) -> list[SupervisorEvent]:
        return [e for e in self.all if e.kind == kind and (child is None or e.child == child)]


class Gate:
    """A shared switch, e.g. "the database is up", plus a count of attempts."""

    def __init__(self, is_open: bool = True) -> None:
        self._open = threading.Event()
        if is_open:
            self._open.set()
        self._lock = threading.Lock()
        self.attempts: list[float] = []

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def enter(self) -> None:
        """Record an attempt; raise ConnectionError while closed."""
        with self._lock:
            self.attempts.append(time.monotonic())
        if not self._open.is_set():
            raise ConnectionError("gate closed")


class Worker(pykka.ThreadingActor):
    """A plain actor, unaware of supervision, that reports its lifecycle."""

    def __init__(
        self, tag: str = "w", journal: Journal | None = None, gate: Gate | None = None
    ) -> None:
        super().__init__()
        self.tag = tag
        self._journal = journal or Journal()
        self._gate = gate

    def on_start(self) -> None:
        if self._gate is not None:
            self._gate.enter()
        self._journal.add("start", self.tag)

    def on_stop(self) -> None:
        self._journal.add("stop", self.tag)

    def on_failure(self, *exc_info: Any) -> None:
        self._journal.add("failure", self.tag)

    def ping(self) -> str:
        return "pong"

    def fail(self) -> None:
        raise ValueError("asked to fail")

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("told to crash")
        if message == "exit":
            raise SystemExit(3)
        return super().on_receive(message)


class Blocker(Worker):
    """A worker whose ``block`` handler ignores everything until released."""

    def __init__(self, release: threading.Event, entered: threading.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._release = release
        self._entered = entered

    def block(self) -> None:
        self._entered.set()
        self._release.wait(timeout=10)


class CrashOnStart(Worker):
    """Starts fine, then crashes at once: a child in a tight crash loop."""

    def on_start(self) -> None:
        super().on_start()
        self.actor_ref.tell("crash")


def children(sup: pykka.ActorRef[Any]) -> dict[str, pykka.ActorRef[Any] | None]:
    """Map child id to its current ref (None when not running)."""
    return {cid: ref for cid, ref, _ in sup.proxy().which_children().get(timeout=TIMEOUT)}


def child_ref(sup: pykka.ActorRef[Any], child_id: str) -> pykka.ActorRef[Any]:
    """The running ref of ``child_id``; fails if it is not running."""
    ref = children(sup)[child_id]
    assert ref is not None, f"{child_id} is not running"
    return ref


def wait_restarted(
    sup: pykka.ActorRef[Any], child_id: str, old: pykka.ActorRef[Any]
) -> pykka.ActorRef[Any]:
    """Wait until ``child_id`` runs as an actor other than ``old``; return it."""

    def replaced() -> bool:
        ref = children(sup)[child_id]
        return ref is not None and ref.actor_urn != old.actor_urn and ref.is_alive()

    wait_until(replaced)
    return child_ref(sup, child_id)
