"""describe() and describe_tree(): the running tree as an operator sees it."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from supervisors import (
    Backoff,
    ChildSpec,
    ChildState,
    Describe,
    Supervisor,
    crash,
    describe_tree,
)

from .helpers import Blocker, Gate, Worker, child_ref, wait_until


def tree(**worker_kwargs: Any) -> pykka.ActorRef[Any]:
    return Supervisor.start(
        strategy="rest_for_one",
        intensity=5,
        period=7.0,
        name="top",
        children=[
            ChildSpec(id="a", actor_class=Worker, kwargs=worker_kwargs, restart="transient",
                      shutdown=2.5),
            ChildSpec(id="pool", actor_class=Supervisor,
                      kwargs={"children": [ChildSpec(id="p1", actor_class=Worker)]}),
        ],
    )


def test_describe_lists_the_children_of_which_children_with_their_specs() -> None:
    sup = tree()

    described = sup.proxy().describe().get(timeout=2)

    assert (described.name, described.strategy, described.intensity, described.period) == (
        "top", "rest_for_one", 5, 7.0)
    listed = sup.proxy().which_children().get(timeout=2)
    assert [(c.id, c.ref, c.child_type) for c in described.children] == listed
    a, pool = described.children
    assert (a.actor_class, a.restart, a.shutdown, a.state) == ("Worker", "transient", 2.5, "running")
    assert (pool.actor_class, pool.child_type, pool.shutdown) == ("Supervisor", "supervisor",
                                                                   "infinity")
    assert described.recent_restarts == 0


def test_a_describe_message_answers_the_same_without_a_proxy() -> None:
    sup = tree()

    assert sup.ask(Describe(), timeout=2) == sup.proxy().describe().get(timeout=2)


def test_a_restart_counts_in_the_current_window() -> None:
    sup = tree()
    old = child_ref(sup, "a")

    crash(old)

    wait_until(lambda: sup.proxy().describe().get(timeout=2).recent_restarts == 1)
    wait_until(lambda: sup.proxy().describe().get(timeout=2).children[0].state == "running")


def test_a_terminated_child_is_stopped() -> None:
    sup = tree()
    sup.proxy().terminate_child("a").get(timeout=2)

    a = sup.proxy().describe().get(timeout=2).children[0]

    assert (a.state, a.ref, a.mailbox) == (ChildState.STOPPED, None, 0)


def test_a_child_waiting_for_its_backoff_is_backing_off() -> None:
    gate = Gate()
    sup = Supervisor.start(intensity=10, children=[ChildSpec(
        id="w", actor_class=Worker, kwargs={"gate": gate},
        backoff=Backoff(min_delay=5.0, max_delay=5.0, jitter=0.0))])
    gate.close()
    crash(child_ref(sup, "w"))

    wait_until(lambda: sup.proxy().describe().get(timeout=2).children[0].state == "backing_off")


def test_mailbox_counts_the_messages_waiting() -> None:
    release, entered = threading.Event(), threading.Event()
    sup = Supervisor.start(children=[ChildSpec(
        id="b", actor_class=Blocker, kwargs={"release": release, "entered": entered})])
    blocker = child_ref(sup, "b")
    blocker.proxy().block()
    assert entered.wait(2)
    for _ in range(3):
        blocker.tell("ping")
    try:
        assert sup.proxy().describe().get(timeout=2).children[0].mailbox == 3
    finally:
        release.set()


def test_describe_tree_walks_into_running_child_supervisors() -> None:
    sup = tree()

    node = describe_tree(sup, timeout=2)

    assert list(node.subtrees) == ["pool"]
    pool = node.subtrees["pool"]
    assert pool.supervisor.name == "top/pool"
    assert [c.id for c in pool.supervisor.children] == ["p1"]
    assert pool.subtrees == {}


def test_describe_tree_leaves_out_a_child_supervisor_that_is_not_running() -> None:
    sup = tree()
    sup.proxy().terminate_child("pool").get(timeout=2)

    node = describe_tree(sup, timeout=2)

    assert node.subtrees == {}
    assert node.supervisor.children[1].state == "stopped"
