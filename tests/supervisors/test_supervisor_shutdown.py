"""Stopping children: reverse order, shutdown timeouts, kill hooks, brutal_kill."""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka
import pytest

from supervisors import ChildSpec, Supervisor

from .helpers import Blocker, Events, Journal, Worker, child_ref, children, wait_until


class SlowStop(Worker):
    def on_stop(self) -> None:
        time.sleep(0.1)
        super().on_stop()


def blocked_child(
    shutdown: float | str, kill: Any = None, release: threading.Event | None = None
) -> tuple[pykka.ActorRef[Any], threading.Event, threading.Event]:
    """A supervisor whose only child is stuck in a handler."""
    release = release or threading.Event()
    entered = threading.Event()
    sup = Supervisor.start(
        children=[
            ChildSpec(
                id="stuck",
                actor_class=Blocker,
                kwargs={"release": release, "entered": entered},
                shutdown=shutdown,  # type: ignore[arg-type]
                kill=kill,
            )
        ],
    )
    child_ref(sup, "stuck").proxy().block.defer()
    assert entered.wait(timeout=2)
    return sup, release, entered


def test_stopping_a_supervisor_stops_its_children_in_reverse_start_order() -> None:
    journal = Journal()
    sup = Supervisor.start(
        children=[
            ChildSpec(id=t, actor_class=Worker, kwargs={"tag": t, "journal": journal})
            for t in ("a", "b", "c")
        ]
    )

    assert sup.stop(timeout=2)

    assert journal.tags("stop") == ["c", "b", "a"]
    assert pykka.ActorRegistry.get_all() == []


def test_nested_supervisor_stops_its_own_children_before_earlier_siblings_stop() -> None:
    journal = Journal()

    def w(tag: str) -> ChildSpec:
        return ChildSpec(id=tag, actor_class=Worker, kwargs={"tag": tag, "journal": journal})

    sup = Supervisor.start(
        children=[
            w("first"),
            ChildSpec(id="pool", actor_class=Supervisor, kwargs={"children": [w("x"), w("y")]}),
            w("last"),
        ]
    )

    sup.stop(timeout=2)

    assert journal.tags("stop") == ["last", "y", "x", "first"]


def test_child_that_stops_slowly_within_its_shutdown_time_is_not_killed() -> None:
    killed: list[pykka.ActorRef[Any]] = []
    events = Events()
    sup = Supervisor.start(
        event_hook=events,
        children=[ChildSpec(id="slow", actor_class=SlowStop, shutdown=2.0, kill=killed.append)],
    )

    sup.stop(timeout=3)

    assert killed == []
    assert events.of("exit", "slow")[-1].reason == "shutdown"


def test_child_ignoring_its_stop_is_killed_via_the_kill_hook_after_its_shutdown_time() -> None:
    release = threading.Event()
    killed: list[pykka.ActorRef[Any]] = []

    def kill(ref: pykka.ActorRef[Any]) -> None:
        killed.append(ref)
        release.set()  # e.g. cancel the query the child is blocked in

    sup, _, _ = blocked_child(shutdown=0.2, kill=kill, release=release)
    stuck = child_ref(sup, "stuck")

    started = time.monotonic()
    sup.stop(timeout=3)
    elapsed = time.monotonic() - started

    assert 0.2 <= elapsed < 1.0
    assert killed == [stuck]
    # Released by the kill hook, the child gets to its stop request and ends.
    wait_until(lambda: not stuck.is_alive())


def test_killed_child_is_reported_as_killed() -> None:
    events = Events()
    release = threading.Event()
    entered = threading.Event()
    sup = Supervisor.start(
        event_hook=events,
        children=[
            ChildSpec(
                id="stuck",
                actor_class=Blocker,
                kwargs={"release": release, "entered": entered},
                shutdown=0.05,
                kill=lambda ref: release.set(),
            )
        ],
    )
    child_ref(sup, "stuck").proxy().block.defer()
    assert entered.wait(timeout=2)

    sup.proxy().terminate_child("stuck").get(timeout=2)

    assert events.of("exit", "stuck")[-1].reason == "killed"
    assert children(sup) == {"stuck": None}


def test_child_without_kill_hook_is_abandoned_after_its_shutdown_time() -> None:
    sup, release, _ = blocked_child(shutdown=0.1)
    stuck = child_ref(sup, "stuck")

    started = time.monotonic()
    sup.stop(timeout=3)

    assert time.monotonic() - started < 1.0
    assert stuck.is_alive()  # Python cannot kill it; its daemon thread lives on
    assert stuck.actor_class.use_daemon_thread
    release.set()
    wait_until(lambda: not stuck.is_alive())


def test_brutal_kill_calls_the_kill_hook_without_waiting_for_a_clean_stop() -> None:
    release = threading.Event()
    killed: list[pykka.ActorRef[Any]] = []

    def kill(ref: pykka.ActorRef[Any]) -> None:
        killed.append(ref)
        release.set()

    sup, _, _ = blocked_child(shutdown="brutal_kill", kill=kill, release=release)
    stuck = child_ref(sup, "stuck")

    started = time.monotonic()
    sup.stop(timeout=3)

    assert time.monotonic() - started < 0.5
    assert killed == [stuck]
    # The stop request was still sent: the child ends once released.
    wait_until(lambda: not stuck.is_alive())


def test_brutal_kill_still_asks_an_idle_child_to_stop() -> None:
    sup = Supervisor.start(children=[ChildSpec(id="w", actor_class=Worker, shutdown="brutal_kill")])
    child = child_ref(sup, "w")

    sup.stop(timeout=2)

    wait_until(lambda: not child.is_alive())


def test_failing_kill_hook_is_logged_and_shutdown_moves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_kill(ref: pykka.ActorRef[Any]) -> None:
        raise RuntimeError("kill hook is broken")

    sup, release, _ = blocked_child(shutdown=0.05, kill=broken_kill)

    assert sup.stop(timeout=3)

    assert any("kill hook" in r.getMessage() for r in caplog.records)
    release.set()


def test_terminate_child_blocks_the_supervisor_only_for_that_childs_shutdown_time() -> None:
    sup, release, _ = blocked_child(shutdown=0.1, kill=lambda ref: None)

    started = time.monotonic()
    sup.proxy().terminate_child("stuck").get(timeout=2)

    assert time.monotonic() - started < 1.0
    assert sup.proxy().which_children().get(timeout=1)[0][1] is None
    release.set()
