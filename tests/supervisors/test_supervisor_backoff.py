"""Backoff: the delay arithmetic, and restarts retried through timers."""

from __future__ import annotations

import logging
import random
import threading
import time

import pykka
import pytest

from supervisors import Backoff, ChildSpec, Supervisor

from .helpers import Gate, Worker, child_ref, children, wait_until


def test_delays_stay_between_min_and_max_delay() -> None:
    backoff = Backoff(min_delay=0.1, max_delay=2.0)
    rng = random.Random(7)

    delays = [backoff.delay(n, rng) for n in range(50) for _ in range(5)]

    assert all(0.1 <= d <= 2.0 for d in delays)


def test_delay_ceiling_grows_exponentially_up_to_max_delay() -> None:
    backoff = Backoff(min_delay=0.1, max_delay=1.0)

    assert [backoff.ceiling(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_jitter_randomises_at_most_its_fraction_of_the_delay() -> None:
    backoff = Backoff(min_delay=0.1, max_delay=10.0, jitter=0.25)
    rng = random.Random(1)

    delays = [backoff.delay(4, rng) for _ in range(200)]

    assert min(delays) >= 1.6 * 0.75
    assert max(delays) <= 1.6
    assert len(set(delays)) > 1


def test_zero_jitter_gives_deterministic_delays() -> None:
    backoff = Backoff(min_delay=0.5, max_delay=4.0, jitter=0.0)

    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    backoff = Backoff(min_delay=0.1, max_delay=3.0, factor=10.0)

    assert backoff.delay(10_000) <= 3.0


def test_max_attempts_within_counts_the_densest_window() -> None:
    backoff = Backoff(min_delay=0.1, max_delay=1.0, jitter=0.0)

    # Attempts at 0, 0.2, 0.6, 1.4, 2.4, 3.4, ... (gaps 0.2, 0.4, 0.8, 1, 1, ...).
    assert backoff.max_attempts_within(0.1) == 1
    assert backoff.max_attempts_within(0.6) == 3
    assert backoff.max_attempts_within(3.5) == 6
    assert backoff.max_attempts_within(1000.0) == 4 + 998


def test_max_attempts_within_uses_the_smallest_jittered_delays() -> None:
    backoff = Backoff(min_delay=1.0, max_delay=4.0, jitter=0.5)

    # Smallest gaps: 1 (floor of 2 * 0.5 = 1), 2, 2, 2, ...
    assert backoff.max_attempts_within(5.0) == 4


def test_constant_backoff_counts_attempts_without_looping_forever() -> None:
    backoff = Backoff(min_delay=0.5, max_delay=2.0, factor=1.0)

    assert backoff.max_attempts_within(2.0) == 5


def test_failed_restart_is_retried_by_timer_until_the_child_starts() -> None:
    database = Gate()
    root = Supervisor.start(
        intensity=20,
        children=[
            ChildSpec(
                id="db",
                actor_class=Worker,
                kwargs={"gate": database},
                backoff=Backoff(min_delay=0.02, max_delay=0.05, jitter=0.0),
            )
        ],
    )
    database.close()
    child_ref(root, "db").tell("crash")
    wait_until(lambda: len(database.attempts) >= 4)

    database.open()
    wait_until(lambda: children(root)["db"] is not None)

    gaps = [b - a for a, b in zip(database.attempts[1:], database.attempts[2:], strict=False)]
    assert all(gap >= 0.02 for gap in gaps)
    assert root.is_alive()


def test_supervisor_answers_which_children_while_a_restart_waits() -> None:
    root = Supervisor.start(
        children=[
            ChildSpec(id="slow", actor_class=Worker, backoff=Backoff(min_delay=5, max_delay=5)),
            ChildSpec(id="other", actor_class=Worker),
        ]
    )
    child_ref(root, "slow").tell("crash")
    wait_until(lambda: children(root)["slow"] is None)

    started = time.monotonic()
    state = root.proxy().which_children().get(timeout=1)
    counts = root.proxy().count_children().get(timeout=1)

    assert time.monotonic() - started < 0.5
    assert [(cid, ref is None) for cid, ref, _ in state] == [("slow", True), ("other", False)]
    assert counts["active"] == 1


def test_stopping_the_supervisor_cancels_a_pending_restart() -> None:
    gate = Gate()
    root = Supervisor.start(
        children=[
            ChildSpec(
                id="w",
                actor_class=Worker,
                kwargs={"gate": gate},
                backoff=Backoff(min_delay=1.0, max_delay=1.0),
            )
        ]
    )
    child_ref(root, "w").tell("crash")
    wait_until(lambda: children(root)["w"] is None)

    started = time.monotonic()
    root.stop(timeout=2)

    assert time.monotonic() - started < 0.5
    wait_until(lambda: not any(isinstance(t, threading.Timer) for t in threading.enumerate()))
    assert len(gate.attempts) == 1
    assert pykka.ActorRegistry.get_all() == []


def test_with_backoff_a_steady_failure_is_retried_forever_when_intensity_covers_it() -> None:
    backoff = Backoff(min_delay=0.02, max_delay=0.05, jitter=0.0)
    period = 0.2
    database = Gate()
    given_up: list[bool] = []
    root = Supervisor.start(
        intensity=backoff.max_attempts_within(period),
        period=period,
        on_give_up=lambda: given_up.append(True),
        children=[
            ChildSpec(id="db", actor_class=Worker, kwargs={"gate": database}, backoff=backoff)
        ],
    )
    database.close()
    child_ref(root, "db").tell("crash")

    # Several periods' worth of failed attempts, spaced by the backoff.
    wait_until(lambda: len(database.attempts) >= 12)
    database.open()
    wait_until(lambda: children(root)["db"] is not None)

    assert root.is_alive()
    assert given_up == []


def test_with_backoff_each_failed_attempt_counts_toward_intensity() -> None:
    database = Gate()
    given_up: list[bool] = []
    root = Supervisor.start(
        intensity=2,
        period=5.0,
        on_give_up=lambda: given_up.append(True),
        children=[
            ChildSpec(
                id="db",
                actor_class=Worker,
                kwargs={"gate": database},
                backoff=Backoff(min_delay=0.01, max_delay=0.02),
            )
        ],
    )
    database.close()
    child_ref(root, "db").tell("crash")

    wait_until(lambda: not root.is_alive())

    # The initial start, then three attempts: the third exceeds intensity 2
    # and is never made.
    assert len(database.attempts) == 1 + 2
    assert given_up == [True]


def test_backoff_grows_while_starts_fail_and_resets_once_the_child_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="supervisors")
    database = Gate()
    root = Supervisor.start(
        intensity=20,
        children=[
            ChildSpec(
                id="db",
                actor_class=Worker,
                kwargs={"gate": database},
                backoff=Backoff(min_delay=0.01, max_delay=1.0, jitter=0.0),
            )
        ],
    )
    database.close()
    child_ref(root, "db").tell("crash")
    wait_until(lambda: len(database.attempts) >= 3)
    database.open()
    wait_until(lambda: children(root)["db"] is not None)
    child_ref(root, "db").tell("crash")
    wait_until(lambda: len(database.attempts) >= 5)

    delays = [
        r.__dict__["delay"]
        for r in caplog.records
        if r.__dict__.get("event") == "restart_scheduled"
    ]
    assert delays[:3] == pytest.approx([0.01, 0.02, 0.04])
    assert delays[-1] == pytest.approx(0.01)
