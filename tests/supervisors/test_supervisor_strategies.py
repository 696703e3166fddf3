"""one_for_one, one_for_all and rest_for_one, as in OTP's supervisor_SUITE."""

from __future__ import annotations

from typing import Any

import pykka

from supervisors import Backoff, ChildSpec, Supervisor

from .helpers import Gate, Journal, Worker, child_ref, children, wait_restarted, wait_until


def specs(journal: Journal, *tags: str, **extra: Any) -> list[ChildSpec]:
    return [
        ChildSpec(id=t, actor_class=Worker, kwargs={"tag": t, "journal": journal}, **extra)
        for t in tags
    ]


def urns(sup: pykka.ActorRef[Any]) -> dict[str, str | None]:
    return {cid: None if ref is None else ref.actor_urn for cid, ref in children(sup).items()}


def test_one_for_one_restarts_only_the_child_that_ended() -> None:
    journal = Journal()
    sup = Supervisor.start(strategy="one_for_one", children=specs(journal, "a", "b", "c"))
    before = urns(sup)
    old = child_ref(sup, "b")
    journal.clear()

    old.tell("crash")
    wait_restarted(sup, "b", old)

    after = urns(sup)
    assert after["a"] == before["a"]
    assert after["c"] == before["c"]
    assert after["b"] != before["b"]
    assert journal.entries == [("failure", "b"), ("start", "b")]


def test_one_for_all_stops_the_others_in_reverse_order_and_restarts_all_in_order() -> None:
    journal = Journal()
    sup = Supervisor.start(strategy="one_for_all", children=specs(journal, "a", "b", "c", "d"))
    before = urns(sup)
    journal.clear()

    child_ref(sup, "b").tell("crash")
    wait_until(lambda: all(urns(sup)[c] not in (None, before[c]) for c in "abcd"))

    assert journal.entries == [
        ("failure", "b"),
        ("stop", "d"),
        ("stop", "c"),
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
        ("start", "d"),
    ]


def test_rest_for_one_restarts_the_failed_child_and_those_started_after_it() -> None:
    journal = Journal()
    sup = Supervisor.start(strategy="rest_for_one", children=specs(journal, "a", "b", "c", "d"))
    before = urns(sup)
    journal.clear()

    child_ref(sup, "b").tell("crash")
    wait_until(lambda: all(urns(sup)[c] not in (None, before[c]) for c in "bcd"))

    assert urns(sup)["a"] == before["a"]
    assert journal.entries == [
        ("failure", "b"),
        ("stop", "d"),
        ("stop", "c"),
        ("start", "b"),
        ("start", "c"),
        ("start", "d"),
    ]


def test_rest_for_one_failure_of_the_last_child_restarts_only_it() -> None:
    journal = Journal()
    sup = Supervisor.start(strategy="rest_for_one", children=specs(journal, "a", "b"))
    before = urns(sup)
    old = child_ref(sup, "b")

    old.tell("crash")
    wait_restarted(sup, "b", old)

    assert urns(sup)["a"] == before["a"]


def test_one_for_all_drops_temporary_siblings_it_stops() -> None:
    journal = Journal()
    sup = Supervisor.start(
        strategy="one_for_all",
        children=[
            *specs(journal, "a"),
            *specs(journal, "temp", restart="temporary"),
        ],
    )
    old = child_ref(sup, "a")

    old.tell("crash")
    wait_restarted(sup, "a", old)

    assert list(children(sup)) == ["a"]


def test_one_for_all_leaves_siblings_alone_when_the_ended_child_is_not_restarted() -> None:
    journal = Journal()
    sup = Supervisor.start(
        strategy="one_for_all",
        children=[*specs(journal, "a"), *specs(journal, "t", restart="transient")],
    )
    before = urns(sup)

    child_ref(sup, "t").stop(timeout=2)
    wait_until(lambda: urns(sup)["t"] is None)

    assert urns(sup)["a"] == before["a"]


def test_exception_in_on_start_of_a_restarted_child_is_retried_until_it_starts() -> None:
    gate = Gate()
    sup = Supervisor.start(
        intensity=10,
        children=[ChildSpec(id="w", actor_class=Worker, kwargs={"gate": gate})],
    )
    old = child_ref(sup, "w")
    gate.close()

    old.tell("crash")
    wait_until(lambda: len(gate.attempts) >= 4)
    gate.open()

    assert wait_restarted(sup, "w", old).is_alive()
    assert sup.is_alive()


def test_one_for_all_retry_after_a_failed_start_restarts_everyone_again() -> None:
    journal = Journal()
    gate = Gate()
    sup = Supervisor.start(
        strategy="one_for_all",
        intensity=10,
        children=[
            *specs(journal, "a"),
            ChildSpec(
                id="b",
                actor_class=Worker,
                kwargs={"tag": "b", "journal": journal, "gate": gate},
                backoff=Backoff(min_delay=0.01, max_delay=0.01),
            ),
        ],
    )
    gate.close()
    journal.clear()

    child_ref(sup, "a").tell("crash")
    wait_until(lambda: len(gate.attempts) >= 3)
    gate.open()
    wait_until(lambda: all(ref is not None for ref in children(sup).values()))

    # Each retry of "b" is a one_for_all restart again: "a" is stopped and
    # started around every attempt.
    assert journal.tags("start").count("a") >= 2
    assert journal.tags("start")[-2:] == ["a", "b"]
