"""A supervisor stays responsive, whatever its children do."""

from __future__ import annotations

import time

import pykka

from supervisors import ChildSpec, Supervisor

from .helpers import CrashOnStart, Gate, Worker, wait_until


def test_child_crashing_in_a_tight_loop_does_not_hang_the_supervisor() -> None:
    sup = Supervisor.start(
        intensity=100_000,
        period=1.0,
        children=[
            ChildSpec(id="loop", actor_class=CrashOnStart),
            ChildSpec(id="ok", actor_class=Worker),
        ],
    )

    for _ in range(5):
        started = time.monotonic()
        listed = sup.proxy().which_children().get(timeout=1)
        assert time.monotonic() - started < 0.5
        assert [cid for cid, _, _ in listed] == ["loop", "ok"]

    started = time.monotonic()
    assert sup.stop(timeout=2)
    assert time.monotonic() - started < 1.0


def test_child_crashing_in_a_tight_loop_makes_the_supervisor_give_up_by_intensity() -> None:
    sup = Supervisor.start(children=[ChildSpec(id="loop", actor_class=CrashOnStart)])

    wait_until(lambda: not sup.is_alive())

    wait_until(lambda: pykka.ActorRegistry.get_all() == [])


def test_child_that_never_starts_again_is_retried_until_the_intensity_is_exceeded() -> None:
    gate = Gate()
    sup = Supervisor.start(
        intensity=3, children=[ChildSpec(id="w", actor_class=Worker, kwargs={"gate": gate})]
    )
    gate.close()

    pykka.ActorRegistry.get_by_class(Worker)[0].tell("crash")

    wait_until(lambda: not sup.is_alive())
    assert len(gate.attempts) == 1 + 3
