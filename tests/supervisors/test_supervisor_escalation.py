"""Restart intensity, giving up, and escalation through a nested tree."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from supervisors import ChildSpec, GiveUpError, Supervisor

from .helpers import Events, Journal, Worker, child_ref, wait_restarted, wait_until


def crash_and_wait(sup: pykka.ActorRef[Any], child_id: str) -> pykka.ActorRef[Any]:
    old = child_ref(sup, child_id)
    old.tell("crash")
    return wait_restarted(sup, child_id, old)


def test_restarts_within_intensity_keep_the_supervisor_running() -> None:
    sup = Supervisor.start(
        intensity=3, period=5.0, children=[ChildSpec(id="w", actor_class=Worker)]
    )

    for _ in range(3):
        crash_and_wait(sup, "w")

    assert sup.is_alive()


def test_restart_beyond_intensity_stops_children_in_reverse_order_and_ends_the_supervisor() -> None:
    journal = Journal()
    sup = Supervisor.start(
        intensity=1,
        period=5.0,
        children=[
            ChildSpec(id=t, actor_class=Worker, kwargs={"tag": t, "journal": journal})
            for t in ("a", "b", "c")
        ],
    )
    crash_and_wait(sup, "b")
    journal.clear()

    child_ref(sup, "b").tell("crash")
    wait_until(lambda: not sup.is_alive())

    assert journal.entries == [("failure", "b"), ("stop", "c"), ("stop", "a")]
    wait_until(lambda: pykka.ActorRegistry.get_all() == [])


def test_intensity_zero_means_the_first_restart_gives_up() -> None:
    sup = Supervisor.start(intensity=0, children=[ChildSpec(id="w", actor_class=Worker)])

    child_ref(sup, "w").tell("crash")

    wait_until(lambda: not sup.is_alive())


def test_on_give_up_is_called_once_after_all_children_are_stopped() -> None:
    journal = Journal()
    calls: list[list[tuple[str, str]]] = []
    sup = Supervisor.start(
        intensity=0,
        on_give_up=lambda: calls.append(journal.entries),
        children=[
            ChildSpec(id=t, actor_class=Worker, kwargs={"tag": t, "journal": journal})
            for t in ("a", "b")
        ],
    )

    child_ref(sup, "a").tell("crash")
    wait_until(lambda: not sup.is_alive())

    assert calls == [[("start", "a"), ("start", "b"), ("failure", "a"), ("stop", "b")]]


def test_failing_on_give_up_does_not_keep_the_supervisor_alive() -> None:
    def broken() -> None:
        raise RuntimeError("on_give_up is broken")

    sup = Supervisor.start(
        intensity=0, on_give_up=broken, children=[ChildSpec(id="w", actor_class=Worker)]
    )

    child_ref(sup, "w").tell("crash")

    wait_until(lambda: not sup.is_alive())


def test_give_up_and_escalate_are_reported_in_that_order() -> None:
    events = Events()
    sup = Supervisor.start(
        name="top", intensity=0, event_hook=events, children=[ChildSpec(id="w", actor_class=Worker)]
    )

    child_ref(sup, "w").tell("crash")
    wait_until(lambda: not sup.is_alive())

    kinds = [e.kind for e in events.all]
    assert kinds[-2:] == ["give_up", "escalate"]
    give_up, escalate = events.all[-2:]
    assert (give_up.supervisor, give_up.child, give_up.reason) == (
        "top",
        "w",
        "reached_max_restart_intensity",
    )
    assert escalate.child is None
    assert escalate.error is not None
    assert "GiveUpError" in escalate.error


def nested_tree(
    parent_intensity: int, events: Events, on_give_up: Any = None
) -> pykka.ActorRef[Any]:
    return Supervisor.start(
        name="root",
        intensity=parent_intensity,
        event_hook=events,
        on_give_up=on_give_up,
        children=[
            ChildSpec(id="sibling", actor_class=Worker),
            ChildSpec(
                id="pool",
                actor_class=Supervisor,
                kwargs={"intensity": 0, "children": [ChildSpec(id="w", actor_class=Worker)]},
            ),
        ],
    )


def test_child_supervisor_that_gives_up_is_restarted_by_its_parent() -> None:
    events = Events()
    root = nested_tree(parent_intensity=3, events=events)
    pool = child_ref(root, "pool")
    sibling = child_ref(root, "sibling")

    child_ref(pool, "w").tell("crash")
    new_pool = wait_restarted(root, "pool", pool)

    assert child_ref(new_pool, "w").is_alive()
    assert child_ref(root, "sibling") == sibling
    pool_exit = events.of("exit", "pool")[-1]
    assert pool_exit.supervisor == "root"
    assert pool_exit.reason == "abnormal"
    assert pool_exit.error is not None
    assert GiveUpError.__name__ in pool_exit.error
    assert [e.supervisor for e in events.of("escalate")] == ["root/pool"]


def test_parent_gives_up_too_when_escalations_exceed_its_own_intensity() -> None:
    events = Events()
    root_gave_up = threading.Event()
    root = nested_tree(parent_intensity=0, events=events, on_give_up=root_gave_up.set)

    child_ref(child_ref(root, "pool"), "w").tell("crash")

    assert root_gave_up.wait(timeout=2)
    wait_until(lambda: not root.is_alive())
    assert [e.supervisor for e in events.of("escalate")] == ["root/pool", "root"]
    wait_until(lambda: pykka.ActorRegistry.get_all() == [])


def test_restarts_are_counted_per_supervisor_not_per_child() -> None:
    sup = Supervisor.start(
        intensity=2,
        children=[ChildSpec(id=c, actor_class=Worker) for c in ("a", "b", "c")],
    )
    crash_and_wait(sup, "a")
    crash_and_wait(sup, "b")

    child_ref(sup, "c").tell("crash")

    wait_until(lambda: not sup.is_alive())
