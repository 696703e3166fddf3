"""The tests' one way of waiting: bounded, loud on timeout, timed."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import wait_until


def test_it_returns_how_long_the_condition_took() -> None:
    answers = itertools.chain([False, False, False], itertools.repeat(True))
    elapsed = wait_until(lambda: next(answers), 2.0, interval=0.02)
    assert 0.05 <= elapsed < 2.0


def test_a_condition_that_already_holds_takes_no_time() -> None:
    assert wait_until(lambda: True) < 0.01


def test_on_timeout_it_fails_naming_what_it_waited_for_and_how_long() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05 s waiting for the moon"):
        wait_until(lambda: False, 0.05, "the moon")


def test_a_description_can_be_made_only_when_it_is_needed() -> None:
    made: list[str] = []

    def describe() -> str:
        made.append("log")
        return "the log"

    wait_until(lambda: True, 0.05, describe)
    assert made == []
    with pytest.raises(AssertionError, match="waiting for the log"):
        wait_until(lambda: False, 0.05, describe)
    assert made == ["log"]


def test_without_a_description_it_names_the_predicate() -> None:
    def server_is_up() -> bool:
        return False

    with pytest.raises(AssertionError, match=r"waiting for .*server_is_up"):
        wait_until(server_is_up, 0.02)
    with pytest.raises(AssertionError, match="waiting for a condition"):
        wait_until(lambda: False, 0.02)


def test_the_condition_is_asked_once_more_at_the_deadline() -> None:
    calls = itertools.count()
    # Asked at 0, then not before the deadline (the interval is longer): true then.
    assert wait_until(lambda: next(calls) >= 1, 0.05, interval=1.0) >= 0.05
