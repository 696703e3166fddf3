"""The supervision journal: recent events, restarts and last exits per child."""

from __future__ import annotations

from app.dashboard.journal import SupervisionJournal
from supervisors import EventKind, SupervisorEvent


def event(kind: EventKind, child: str | None = "w1", reason: str | None = None,
          error: str | None = None, supervisor: str = "db") -> SupervisorEvent:
    return SupervisorEvent(kind, supervisor, child, reason, error)


def test_restarts_count_the_starts_after_the_first() -> None:
    journal = SupervisionJournal(clock=lambda: 100.0)
    journal.record(event(EventKind.START))
    assert journal.child("db", "w1").restarts == 0
    journal.record(event(EventKind.EXIT, reason="abnormal", error="CrashError('chaos')"))
    journal.record(event(EventKind.RESTART, reason="abnormal"))
    journal.record(event(EventKind.START))

    record = journal.child("db", "w1")

    assert record.restarts == 1
    assert record.last_exit is not None
    assert (record.last_exit.reason, record.last_exit.error, record.last_exit.at) == (
        "abnormal", "CrashError('chaos')", 100.0)


def test_a_child_that_never_started_has_an_empty_record() -> None:
    record = SupervisionJournal().child("db", "nobody")

    assert (record.starts, record.restarts, record.last_exit, record.gave_up) == (0, 0, None, False)


def test_a_supervisor_that_ended_by_giving_up_is_told_apart() -> None:
    journal = SupervisionJournal()
    journal.record(event(EventKind.EXIT, child="db", supervisor="root", reason="abnormal",
                         error="GiveUpError('supervisor db gave up: ...')"))

    assert journal.child("root", "db").gave_up


def test_only_the_most_recent_events_are_kept_oldest_first() -> None:
    journal = SupervisionJournal(capacity=3)
    for n in range(5):
        journal.record(event(EventKind.START, child=f"w{n}"))

    assert [e.child for e in journal.recent()] == ["w2", "w3", "w4"]


def test_every_event_is_announced_after_it_is_recorded() -> None:
    journal = SupervisionJournal()
    seen: list[int] = []
    journal.on_event = lambda: seen.append(len(journal.recent()))
    journal.record(event(EventKind.START))
    journal.record(event(EventKind.ESCALATE, child=None, reason="reached_max_restart_intensity"))

    assert seen == [1, 2]
    assert journal.recent()[-1].as_json() == {
        "at": journal.recent()[-1].at, "kind": "escalate", "supervisor": "db", "child": None,
        "reason": "reached_max_restart_intensity", "error": None}
