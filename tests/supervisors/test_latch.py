"""LatchFuture keeps pykka's future contract; the inbox is a plain FIFO."""

from __future__ import annotations

import queue
import threading
import time

import pykka
import pytest

from supervisors.latch import LatchFuture, new_inbox


def test_get_waits_for_the_value_set_by_another_thread() -> None:
    future: LatchFuture[int] = LatchFuture()
    setter = threading.Timer(0.05, future.set, args=(42,))
    setter.start()
    assert future.get(timeout=5) == 42
    assert future.get(timeout=0) == 42  # and again, at once
    setter.join(timeout=5)


def test_every_waiting_thread_gets_the_value() -> None:
    future: LatchFuture[str] = LatchFuture()
    got: list[str] = []
    readers = [threading.Thread(target=lambda: got.append(future.get(timeout=5))) for _ in range(4)]
    for reader in readers:
        reader.start()
    future.set("v")
    for reader in readers:
        reader.join(timeout=5)
    assert got == ["v"] * 4


def test_get_times_out_with_pykka_timeout() -> None:
    future: LatchFuture[int] = LatchFuture()
    started = time.monotonic()
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0.05)
    assert 0.04 <= time.monotonic() - started < 2
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0)


def test_the_exception_set_is_the_one_get_raises() -> None:
    future: LatchFuture[int] = LatchFuture()
    original = KeyError("gone")
    try:
        raise original
    except KeyError:
        future.set_exception()
    with pytest.raises(KeyError) as raised:
        future.get(timeout=1)
    assert raised.value is original


def test_an_exception_class_alone_is_instantiated() -> None:
    future: LatchFuture[int] = LatchFuture()
    future.set_exception((ValueError, None, None))
    with pytest.raises(ValueError):
        future.get(timeout=1)


def test_a_future_is_set_only_once() -> None:
    future: LatchFuture[int] = LatchFuture()
    future.set(1)
    with pytest.raises(queue.Full):
        future.set(2)
    with pytest.raises(queue.Full):
        future.set_exception((ValueError, ValueError("x"), None))
    assert future.get(timeout=1) == 1


def test_map_and_join_work_through_get_hooks() -> None:
    first: LatchFuture[int] = LatchFuture()
    second: LatchFuture[int] = LatchFuture()
    doubled = first.map(lambda v: v * 2)
    both = first.join(second)
    first.set(3)
    second.set(4)
    assert doubled.get(timeout=1) == 6
    assert list(both.get(timeout=1)) == [3, 4]


def test_actors_asked_through_a_latch_future_answer_and_stop() -> None:
    from supervisors.monitor import monitored_class

    class Echo(pykka.ThreadingActor):
        def on_receive(self, message: object) -> object:
            if message == "boom":
                raise RuntimeError("boom")
            return message

    ref = monitored_class(Echo).start()
    try:
        assert ref.ask("hi", timeout=5) == "hi"
        with pytest.raises(RuntimeError, match="boom"):
            ref.ask("boom", timeout=5)
        assert ref.proxy().on_receive("via proxy").get(timeout=5) == "via proxy"
    finally:
        ref.stop(timeout=5)
    assert not ref.is_alive()


def test_the_inbox_is_first_in_first_out() -> None:
    inbox = new_inbox()
    for n in range(3):
        inbox.put(n)
    assert inbox.qsize() == 3
    assert [inbox.get(), inbox.get(), inbox.get()] == [0, 1, 2]
    assert inbox.empty()
