"""which_children, count_children and the child management calls."""

from __future__ import annotations

from typing import Any

import pykka
import pytest

from supervisors import (
    AlreadyPresentError,
    AlreadyStartedError,
    Backoff,
    ChildNotFoundError,
    ChildRunningError,
    ChildSpec,
    StartError,
    Supervisor,
)

from .helpers import Gate, Journal, Worker, child_ref, children, wait_until


def tree() -> pykka.ActorRef[Any]:
    return Supervisor.start(
        children=[
            ChildSpec(id="a", actor_class=Worker),
            ChildSpec(id="pool", actor_class=Supervisor, kwargs={"children": []}),
            ChildSpec(id="b", actor_class=Worker),
        ]
    )


def test_which_children_lists_id_ref_and_type_in_start_order() -> None:
    sup = tree()

    listed = sup.proxy().which_children().get(timeout=2)

    assert [(cid, kind) for cid, _, kind in listed] == [
        ("a", "worker"),
        ("pool", "supervisor"),
        ("b", "worker"),
    ]
    assert all(isinstance(ref, pykka.ActorRef) and ref.is_alive() for _, ref, _ in listed)


def test_count_children_counts_specs_active_supervisors_and_workers() -> None:
    sup = tree()
    sup.proxy().terminate_child("b").get(timeout=2)

    counts = sup.proxy().count_children().get(timeout=2)

    assert counts == {"specs": 3, "active": 2, "supervisors": 1, "workers": 2}


def test_terminate_child_keeps_the_spec_and_restart_child_starts_it_again() -> None:
    journal = Journal()
    sup = Supervisor.start(
        children=[ChildSpec(id="w", actor_class=Worker, kwargs={"journal": journal})]
    )
    proxy = sup.proxy()

    proxy.terminate_child("w").get(timeout=2)
    assert children(sup) == {"w": None}
    ref = proxy.restart_child("w").get(timeout=2)

    assert ref.is_alive()
    assert children(sup) == {"w": ref}
    assert journal.entries == [("start", "w"), ("stop", "w"), ("start", "w")]


def test_restart_child_of_a_running_child_is_refused() -> None:
    sup = tree()

    with pytest.raises(ChildRunningError) as raised:
        sup.proxy().restart_child("a").get(timeout=2)

    assert raised.value.state == "running"


def test_restart_and_delete_of_a_child_waiting_for_its_restart_are_refused() -> None:
    sup = Supervisor.start(
        children=[ChildSpec(id="w", actor_class=Worker, backoff=Backoff(5.0, 5.0))]
    )
    child_ref(sup, "w").tell("crash")
    wait_until(lambda: children(sup)["w"] is None)

    for call in (sup.proxy().restart_child, sup.proxy().delete_child):
        with pytest.raises(ChildRunningError) as raised:
            call("w").get(timeout=2)
        assert raised.value.state == "restarting"


def test_terminate_child_cancels_a_pending_restart() -> None:
    gate = Gate()
    sup = Supervisor.start(
        children=[
            ChildSpec(id="w", actor_class=Worker, kwargs={"gate": gate}, backoff=Backoff(0.1, 0.1))
        ]
    )
    child_ref(sup, "w").tell("crash")
    wait_until(lambda: children(sup)["w"] is None)

    sup.proxy().terminate_child("w").get(timeout=2)

    with pytest.raises(AssertionError):
        wait_until(lambda: len(gate.attempts) > 1, timeout=0.3)
    assert children(sup) == {"w": None}


def test_delete_child_forgets_a_stopped_child_but_refuses_a_running_one() -> None:
    sup = tree()
    proxy = sup.proxy()

    with pytest.raises(ChildRunningError):
        proxy.delete_child("a").get(timeout=2)
    proxy.terminate_child("a").get(timeout=2)
    proxy.delete_child("a").get(timeout=2)

    assert list(children(sup)) == ["pool", "b"]


@pytest.mark.parametrize("call", ["terminate_child", "restart_child", "delete_child"])
def test_unknown_child_id_raises_not_found(call: str) -> None:
    sup = tree()

    with pytest.raises(ChildNotFoundError):
        getattr(sup.proxy(), call)("nope").get(timeout=2)


def test_start_child_adds_a_child_at_the_end_and_returns_its_ref() -> None:
    sup = tree()

    ref = sup.proxy().start_child(ChildSpec(id="c", actor_class=Worker)).get(timeout=2)

    assert list(children(sup)) == ["a", "pool", "b", "c"]
    assert children(sup)["c"] == ref
    assert ref.proxy().ping().get(timeout=2) == "pong"


def test_start_child_with_the_id_of_a_running_child_is_refused() -> None:
    sup = tree()

    with pytest.raises(AlreadyStartedError) as raised:
        sup.proxy().start_child(ChildSpec(id="a", actor_class=Worker)).get(timeout=2)

    assert raised.value.ref == children(sup)["a"]


def test_start_child_with_the_id_of_a_stopped_child_is_refused() -> None:
    sup = tree()
    sup.proxy().terminate_child("a").get(timeout=2)

    with pytest.raises(AlreadyPresentError):
        sup.proxy().start_child(ChildSpec(id="a", actor_class=Worker)).get(timeout=2)


def test_start_child_that_fails_to_start_is_not_kept() -> None:
    sup = tree()
    broken = ChildSpec(id="c", actor_class=Worker, kwargs={"gate": Gate(is_open=False)})

    with pytest.raises(StartError):
        sup.proxy().start_child(broken).get(timeout=2)

    assert list(children(sup)) == ["a", "pool", "b"]


def test_restart_child_that_fails_to_start_stays_stopped() -> None:
    gate = Gate()
    sup = Supervisor.start(children=[ChildSpec(id="w", actor_class=Worker, kwargs={"gate": gate})])
    sup.proxy().terminate_child("w").get(timeout=2)
    gate.close()

    with pytest.raises(StartError):
        sup.proxy().restart_child("w").get(timeout=2)

    assert children(sup) == {"w": None}
    assert sup.is_alive()


def test_started_child_is_supervised_like_the_initial_ones() -> None:
    sup = tree()
    ref = sup.proxy().start_child(ChildSpec(id="c", actor_class=Worker)).get(timeout=2)

    ref.tell("crash")

    wait_until(lambda: children(sup)["c"] not in (None, ref))
