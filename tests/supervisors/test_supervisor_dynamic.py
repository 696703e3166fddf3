"""DynamicSupervisor: children added at run time, addressed by ref."""

from __future__ import annotations

import pykka
import pytest

from supervisors import (
    ChildNotFoundError,
    ChildSpec,
    DynamicSupervisor,
    MaxChildrenError,
    StartError,
    Supervisor,
)

from .helpers import Gate, Journal, Worker, child_ref, wait_until


def spec(tag: str = "w", journal: Journal | None = None, **extra: object) -> ChildSpec:
    return ChildSpec(
        id=tag,
        actor_class=Worker,
        kwargs={"tag": tag, "journal": journal},
        **extra,  # type: ignore[arg-type]
    )


def test_start_child_returns_the_running_child_ref() -> None:
    sup = DynamicSupervisor.start()

    ref = sup.proxy().start_child(spec()).get(timeout=2)

    assert ref.proxy().ping().get(timeout=2) == "pong"
    assert sup.proxy().which_children().get(timeout=2) == [("w", ref, "worker")]


def test_children_may_share_a_spec_id() -> None:
    sup = DynamicSupervisor.start()

    first = sup.proxy().start_child(spec()).get(timeout=2)
    second = sup.proxy().start_child(spec()).get(timeout=2)

    assert first != second
    assert sup.proxy().count_children().get(timeout=2) == {
        "specs": 2,
        "active": 2,
        "supervisors": 0,
        "workers": 2,
    }


def test_start_child_beyond_max_children_is_refused_until_one_is_terminated() -> None:
    sup = DynamicSupervisor.start(max_children=2)
    proxy = sup.proxy()
    first = proxy.start_child(spec("a")).get(timeout=2)
    proxy.start_child(spec("b")).get(timeout=2)

    with pytest.raises(MaxChildrenError):
        proxy.start_child(spec("c")).get(timeout=2)

    proxy.terminate_child(first).get(timeout=2)
    assert proxy.start_child(spec("c")).get(timeout=2).is_alive()


def test_terminate_child_stops_and_removes_it() -> None:
    journal = Journal()
    sup = DynamicSupervisor.start()
    ref = sup.proxy().start_child(spec(journal=journal)).get(timeout=2)

    sup.proxy().terminate_child(ref).get(timeout=2)

    assert not ref.is_alive()
    assert journal.tags("stop") == ["w"]
    assert sup.proxy().which_children().get(timeout=2) == []


def test_terminate_child_of_an_unknown_ref_raises_not_found() -> None:
    sup = DynamicSupervisor.start()
    stranger = Worker.start()

    with pytest.raises(ChildNotFoundError):
        sup.proxy().terminate_child(stranger).get(timeout=2)


def test_crashed_dynamic_child_is_restarted_as_a_new_actor() -> None:
    sup = DynamicSupervisor.start()
    old = sup.proxy().start_child(spec()).get(timeout=2)

    old.tell("crash")

    def restarted() -> bool:
        [(_, ref, _)] = sup.proxy().which_children().get(timeout=2)
        return ref is not None and ref != old

    wait_until(restarted)


def test_dynamic_child_that_is_not_restarted_is_removed() -> None:
    sup = DynamicSupervisor.start()
    ref = sup.proxy().start_child(spec(restart="transient")).get(timeout=2)

    ref.stop(timeout=2)

    wait_until(lambda: sup.proxy().which_children().get(timeout=2) == [])


def test_failed_dynamic_start_raises_start_error_and_keeps_nothing() -> None:
    sup = DynamicSupervisor.start()

    with pytest.raises(StartError) as raised:
        broken = ChildSpec(id="w", actor_class=Worker, kwargs={"gate": Gate(is_open=False)})
        sup.proxy().start_child(broken).get(timeout=2)

    assert raised.value.child_id == "w"
    assert sup.proxy().which_children().get(timeout=2) == []


def test_dynamic_supervisor_gives_up_beyond_its_intensity() -> None:
    sup = DynamicSupervisor.start(intensity=0)
    ref = sup.proxy().start_child(spec()).get(timeout=2)

    ref.tell("crash")

    wait_until(lambda: not sup.is_alive())


def test_dynamic_supervisor_is_a_supervisor_child_of_a_static_tree() -> None:
    journal = Journal()
    root = Supervisor.start(children=[ChildSpec(id="pool", actor_class=DynamicSupervisor)])
    pool = child_ref(root, "pool")
    for tag in ("a", "b"):
        pool.proxy().start_child(spec(tag, journal)).get(timeout=2)

    assert root.proxy().which_children().get(timeout=2)[0][2] == "supervisor"
    root.stop(timeout=2)

    assert journal.tags("stop") == ["b", "a"]
    assert pykka.ActorRegistry.get_all() == []
