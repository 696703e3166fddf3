"""Starting a supervisor: children in order, all or nothing."""

from __future__ import annotations

from typing import Any

import pykka
import pytest

from supervisors import ChildSpec, StartError, Supervisor

from .helpers import Gate, Journal, Worker, children


def worker(tag: str, journal: Journal, **kwargs: Any) -> ChildSpec:
    return ChildSpec(id=tag, actor_class=Worker, kwargs={"tag": tag, "journal": journal, **kwargs})


def test_start_returns_once_every_child_has_started_in_list_order() -> None:
    journal = Journal()

    root = Supervisor.start(children=[worker(t, journal) for t in ("a", "b", "c")])

    assert journal.tags("start") == ["a", "b", "c"]
    assert all(ref is not None and ref.is_alive() for ref in children(root).values())


def test_supervisor_without_children_starts_and_stops() -> None:
    root = Supervisor.start()

    assert root.proxy().which_children().get(timeout=2) == []
    assert root.stop(timeout=2)


def test_start_failure_stops_started_children_in_reverse_and_names_the_child() -> None:
    journal = Journal()
    broken = Gate(is_open=False)

    with pytest.raises(StartError) as raised:
        Supervisor.start(
            children=[
                worker("a", journal),
                worker("b", journal),
                worker("c", journal, gate=broken),
                worker("d", journal),
            ]
        )

    assert raised.value.child_id == "c"
    assert isinstance(raised.value.cause, ConnectionError)
    assert isinstance(raised.value.__cause__, ConnectionError)
    assert "'c'" in str(raised.value)
    assert journal.tags("start") == ["a", "b"]
    assert journal.tags("stop") == ["b", "a"]


def test_failed_start_leaves_no_actor_running() -> None:
    with pytest.raises(StartError):
        Supervisor.start(
            children=[
                ChildSpec(id="a", actor_class=Worker),
                ChildSpec(id="b", actor_class=Worker, kwargs={"gate": Gate(is_open=False)}),
            ]
        )

    assert pykka.ActorRegistry.get_all() == []


def test_exception_in_child_constructor_is_a_start_error() -> None:
    with pytest.raises(StartError) as raised:
        Supervisor.start(children=[ChildSpec(id="bad", actor_class=Worker, args=(1, 2, 3, 4))])

    assert raised.value.child_id == "bad"
    assert isinstance(raised.value.cause, TypeError)


def test_start_failure_deep_in_a_nested_tree_names_each_level() -> None:
    journal = Journal()

    with pytest.raises(StartError) as raised:
        Supervisor.start(
            name="root",
            children=[
                worker("first", journal),
                ChildSpec(
                    id="pool",
                    actor_class=Supervisor,
                    kwargs={"children": [worker("inner", journal, gate=Gate(is_open=False))]},
                ),
            ],
        )

    assert raised.value.child_id == "pool"
    inner = raised.value.cause
    assert isinstance(inner, StartError)
    assert inner.child_id == "inner"
    assert journal.tags("stop") == ["first"]
    assert pykka.ActorRegistry.get_all() == []


def test_base_exception_in_child_on_start_is_a_start_error_not_a_global_stop() -> None:
    class ExitsOnStart(pykka.ThreadingActor):
        def on_start(self) -> None:
            raise SystemExit(1)

    bystander = Worker.start()

    with pytest.raises(StartError) as raised:
        Supervisor.start(children=[ChildSpec(id="x", actor_class=ExitsOnStart)])

    assert isinstance(raised.value.cause, SystemExit)
    assert bystander.is_alive()
