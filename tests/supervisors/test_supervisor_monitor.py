"""How a supervisor observes its children's exits, for unmodified actor classes."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest

from supervisors import ChildSpec, CrashError, Supervisor, crash

from .helpers import Events, Journal, Worker, child_ref, children, wait_restarted, wait_until


def supervised(events: Events, restart: str = "permanent", **kwargs: Any) -> pykka.ActorRef[Any]:
    return Supervisor.start(
        event_hook=events,
        children=[
            ChildSpec(id="w", actor_class=Worker, restart=restart, kwargs=kwargs),  # type: ignore[arg-type]
            ChildSpec(id="sibling", actor_class=Worker),
        ],
    )


def last_exit(events: Events) -> tuple[str | None, str | None]:
    event = events.of("exit", "w")[-1]
    return event.reason, event.error


def test_unhandled_exception_in_a_tell_is_an_abnormal_exit() -> None:
    events = Events()
    sup = supervised(events)
    old = child_ref(sup, "w")

    old.tell("crash")
    wait_restarted(sup, "w", old)

    assert last_exit(events) == ("abnormal", "RuntimeError('told to crash')")


def test_exception_in_an_ask_goes_back_to_the_caller_and_the_child_keeps_running() -> None:
    events = Events()
    sup = supervised(events)
    child = child_ref(sup, "w")

    with pytest.raises(ValueError, match="asked to fail"):
        child.proxy().fail().get(timeout=2)

    assert child.proxy().ping().get(timeout=2) == "pong"
    assert events.of("exit", "w") == []


def test_stop_by_someone_else_is_a_normal_exit() -> None:
    events = Events()
    sup = supervised(events, restart="transient")

    child_ref(sup, "w").stop(timeout=2)

    wait_until(lambda: events.of("exit", "w"))
    assert last_exit(events) == ("normal", None)


def test_stop_by_its_supervisor_is_a_shutdown_exit() -> None:
    events = Events()
    sup = supervised(events)

    sup.proxy().terminate_child("w").get(timeout=2)

    assert last_exit(events) == ("shutdown", None)


def test_failing_on_stop_turns_a_normal_exit_into_an_abnormal_one() -> None:
    class FailsOnStop(Worker):
        def on_stop(self) -> None:
            raise OSError("cannot flush")

    events = Events()
    sup = Supervisor.start(
        event_hook=events,
        children=[ChildSpec(id="w", actor_class=FailsOnStop, restart="transient")],
    )
    old = child_ref(sup, "w")

    old.stop(timeout=2)

    wait_restarted(sup, "w", old)
    assert last_exit(events) == ("abnormal", "OSError('cannot flush')")


def test_base_exception_in_one_actor_leaves_all_other_actors_alive() -> None:
    events = Events()
    bystander = Worker.start()
    sup = supervised(events)
    sibling = child_ref(sup, "sibling")
    old = child_ref(sup, "w")

    old.tell("exit")  # raises SystemExit in the child's thread
    wait_restarted(sup, "w", old)

    assert bystander.is_alive()
    assert sibling.is_alive()
    assert sup.is_alive()
    assert last_exit(events) == ("abnormal", "SystemExit(3)")


def test_base_exception_in_an_ask_ends_the_actor_and_the_caller_gets_actor_dead_error() -> None:
    class ExitsOnAsk(Worker):
        def leave(self) -> None:
            raise KeyboardInterrupt

    events = Events()
    sup = Supervisor.start(event_hook=events, children=[ChildSpec(id="w", actor_class=ExitsOnAsk)])
    old = child_ref(sup, "w")

    with pytest.raises(pykka.ActorDeadError):
        old.proxy().leave().get(timeout=2)

    wait_restarted(sup, "w", old)
    assert last_exit(events) == ("abnormal", "KeyboardInterrupt()")


def test_on_failure_of_the_crashed_child_is_still_called() -> None:
    journal = Journal()
    sup = Supervisor.start(
        children=[ChildSpec(id="w", actor_class=Worker, kwargs={"journal": journal})]
    )

    child_ref(sup, "w").tell("crash")

    wait_until(lambda: ("failure", "w") in journal.entries)


def test_crash_produces_an_abnormal_exit_and_a_restart() -> None:
    events = Events()
    journal = Journal()
    sup = supervised(events, journal=journal)
    old = child_ref(sup, "w")

    crash(old, reason="chaos monkey")
    new = wait_restarted(sup, "w", old)

    assert new.is_alive()
    assert last_exit(events) == ("abnormal", repr(CrashError("chaos monkey")))
    assert ("failure", "w") in journal.entries


def test_crash_refuses_an_actor_no_supervisor_started() -> None:
    plain = Worker.start()

    with pytest.raises(TypeError):
        crash(plain)

    assert plain.is_alive()


def test_child_runs_unmodified_class_under_its_own_name_on_a_daemon_thread() -> None:
    ran_on: list[threading.Thread] = []

    class Probe(pykka.ThreadingActor):
        def on_start(self) -> None:
            ran_on.append(threading.current_thread())

    sup = Supervisor.start(children=[ChildSpec(id="p", actor_class=Probe)])
    ref = child_ref(sup, "p")

    assert ref.actor_class.__name__ == "Probe"
    assert issubclass(ref.actor_class, Probe)
    assert pykka.ActorRegistry.get_by_class(Probe) == [ref]
    assert ran_on[0].daemon
    assert ran_on[0].name.startswith("Probe-")
    assert Probe.use_daemon_thread is False


def test_generated_subclass_is_reused_for_every_start_of_a_class() -> None:
    sup = Supervisor.start(
        children=[ChildSpec(id="a", actor_class=Worker), ChildSpec(id="b", actor_class=Worker)]
    )
    a, b = children(sup).values()
    assert a is not None
    assert b is not None

    assert a.actor_class is b.actor_class


def test_supervisor_threads_are_daemons_so_they_never_keep_a_process_alive() -> None:
    sup = Supervisor.start(children=[ChildSpec(id="pool", actor_class=Supervisor)])

    assert sup.actor_class.use_daemon_thread is True
    assert child_ref(sup, "pool").actor_class.use_daemon_thread is True


def test_a_subclass_may_ask_for_a_non_daemon_root_thread() -> None:
    class Steadfast(Supervisor):
        use_daemon_thread = False

    sup = Steadfast.start()

    assert sup.actor_class.use_daemon_thread is False
