"""ask_async: asking a pykka actor from an event loop, answered however the actor ends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from supervisors.aio import ask_async


class Echo(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self._gate = gate

    def on_receive(self, message: Any) -> Any:
        if self._gate is not None:
            self._gate.wait(5)
        if isinstance(message, Exception):
            raise message
        return ("echo", message)


@pytest.fixture
def echo() -> Iterator[pykka.ActorRef[Any]]:
    ref = Echo.start()
    yield ref
    if ref.is_alive():
        ref.stop()


def test_the_answer_arrives_in_the_loop(echo: pykka.ActorRef[Any]) -> None:
    async def ask() -> Any:
        return await asyncio.wait_for(ask_async(echo, 42), 5)

    assert asyncio.run(ask()) == ("echo", 42)


def test_an_exception_raised_for_the_message_reaches_the_caller(
        echo: pykka.ActorRef[Any]) -> None:
    async def ask() -> Any:
        return await asyncio.wait_for(ask_async(echo, LookupError("nope")), 5)

    with pytest.raises(LookupError, match="nope"):
        asyncio.run(ask())
    assert echo.is_alive()


def test_a_dead_actor_answers_actor_dead_error_at_once(echo: pykka.ActorRef[Any]) -> None:
    echo.stop()

    async def ask() -> Any:
        return await asyncio.wait_for(ask_async(echo, 1), 5)

    with pytest.raises(pykka.ActorDeadError):
        asyncio.run(ask())


def test_messages_left_in_the_inbox_of_a_stopping_actor_are_answered_actor_dead_error() -> None:
    gate = threading.Event()
    ref = Echo.start(gate)

    async def ask_while_it_stops() -> tuple[Any, Any]:
        first = ask_async(ref, 1)  # taken by the actor, which then waits at the gate
        await asyncio.sleep(0.05)
        ref.tell(pykka.messages._ActorStop())
        pending = ask_async(ref, 2)
        gate.set()
        return await asyncio.wait_for(
            asyncio.gather(first, pending, return_exceptions=True), 5)

    first, pending = asyncio.run(ask_while_it_stops())
    assert first == ("echo", 1)
    assert isinstance(pending, pykka.ActorDeadError)


def test_the_loop_keeps_running_while_the_actor_works() -> None:
    gate = threading.Event()
    ref = Echo.start(gate)

    async def ask_and_tick() -> int:
        ticks = 0
        answer = ask_async(ref, 1)
        threading.Timer(0.1, gate.set).start()
        while not answer.done():
            ticks += 1
            await asyncio.sleep(0.005)
        assert await answer == ("echo", 1)
        return ticks

    try:
        assert asyncio.run(ask_and_tick()) >= 5
    finally:
        ref.stop()
