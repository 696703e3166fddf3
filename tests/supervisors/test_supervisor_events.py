"""Structured log lines and the event_hook."""

from __future__ import annotations

import logging

import pytest

from supervisors import ChildSpec, Supervisor, SupervisorEvent

from .helpers import Events, Worker, child_ref, wait_restarted


def test_event_hook_receives_start_exit_and_restart_events_with_their_fields() -> None:
    events = Events()
    sup = Supervisor.start(
        name="root", event_hook=events, children=[ChildSpec(id="w", actor_class=Worker)]
    )
    old = child_ref(sup, "w")

    old.tell("crash")
    new = wait_restarted(sup, "w", old)

    assert events.all == [
        SupervisorEvent(kind="start", supervisor="root", child="w", urn=old.actor_urn),  # type: ignore[arg-type]
        SupervisorEvent(
            kind="exit",  # type: ignore[arg-type]
            supervisor="root",
            child="w",
            reason="abnormal",
            error="RuntimeError('told to crash')",
            urn=old.actor_urn,
        ),
        SupervisorEvent(
            kind="restart",  # type: ignore[arg-type]
            supervisor="root",
            child="w",
            reason="abnormal",
            error="RuntimeError('told to crash')",
        ),
        SupervisorEvent(kind="start", supervisor="root", child="w", urn=new.actor_urn),  # type: ignore[arg-type]
    ]


def test_every_event_is_one_structured_log_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="supervisors")
    sup = Supervisor.start(name="root", children=[ChildSpec(id="w", actor_class=Worker)])
    old = child_ref(sup, "w")

    old.tell("crash")
    wait_restarted(sup, "w", old)

    records = [r for r in caplog.records if r.name == "supervisors"]
    assert [(r.event, r.supervisor, r.child, r.reason) for r in records] == [  # type: ignore[attr-defined]
        ("start", "root", "w", None),
        ("exit", "root", "w", "abnormal"),
        ("restart", "root", "w", "abnormal"),
        ("start", "root", "w", None),
    ]
    assert records[1].levelno == logging.ERROR
    assert records[1].error == "RuntimeError('told to crash')"  # type: ignore[attr-defined]
    assert "child w exited (abnormal: RuntimeError('told to crash'))" in records[1].getMessage()


def test_failing_event_hook_never_breaks_the_supervisor(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: SupervisorEvent) -> None:
        raise SystemExit("metrics are down")

    sup = Supervisor.start(event_hook=broken, children=[ChildSpec(id="w", actor_class=Worker)])
    old = child_ref(sup, "w")

    old.tell("crash")

    assert wait_restarted(sup, "w", old).is_alive()
    assert any("event_hook failed" in r.getMessage() for r in caplog.records)


def test_child_supervisors_inherit_the_event_hook_and_a_path_name() -> None:
    events = Events()
    sup = Supervisor.start(
        name="root",
        event_hook=events,
        children=[
            ChildSpec(
                id="pool",
                actor_class=Supervisor,
                kwargs={"children": [ChildSpec(id="w", actor_class=Worker)]},
            )
        ],
    )

    assert [(e.supervisor, e.child) for e in events.of("start")] == [
        ("root/pool", "w"),
        ("root", "pool"),
    ]
    assert child_ref(sup, "pool").proxy().name.get(timeout=2) == "root/pool"


def test_child_supervisor_kwargs_override_the_inherited_hook_and_name() -> None:
    parent_events, own_events = Events(), Events()
    Supervisor.start(
        name="root",
        event_hook=parent_events,
        children=[
            ChildSpec(
                id="pool",
                actor_class=Supervisor,
                kwargs={
                    "name": "db",
                    "event_hook": own_events,
                    "children": [ChildSpec(id="w", actor_class=Worker)],
                },
            )
        ],
    )

    assert [(e.supervisor, e.child) for e in own_events.all] == [("db", "w")]
    assert [(e.supervisor, e.child) for e in parent_events.all] == [("root", "pool")]


def test_supervisor_without_a_name_gets_a_short_unique_one() -> None:
    first = Supervisor.start().proxy().name.get(timeout=2)
    second = Supervisor.start().proxy().name.get(timeout=2)

    assert first != second
    assert first.startswith("supervisor-")
