"""The pykka internals the supervision library uses are still there, as they were."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pykka

from supervisors._pykka import ACTOR_LOOP, TESTED_PYKKA, Envelope


def test_the_installed_pykka_is_one_these_internals_were_checked_against() -> None:
    installed = tuple(int(part) for part in version("pykka").split(".")[:2])
    low, high = TESTED_PYKKA
    assert low <= installed < high, f"pykka {installed}: check supervisors/_pykka.py, then bump"


def test_every_private_actor_method_the_monitor_uses_exists() -> None:
    missing = [name for name in ACTOR_LOOP if not callable(getattr(pykka.Actor, name, None))]
    assert missing == []


def test_the_actor_loop_is_still_setup_running_teardown() -> None:
    source = inspect.getsource(pykka.Actor._actor_loop)
    assert source.index("_actor_loop_setup") < source.index("_actor_loop_running") < (
        source.index("_actor_loop_teardown"))


def test_an_envelope_still_carries_a_message_and_its_reply_future() -> None:
    future = pykka.ThreadingFuture[int]()
    envelope = Envelope("message", reply_to=future)
    assert envelope.message == "message" and envelope.reply_to is future
    assert list(inspect.signature(Envelope).parameters) == ["message", "reply_to"]


def test_ask_still_puts_an_envelope_with_its_future_in_the_inbox() -> None:
    source = inspect.getsource(pykka.ActorRef.ask)
    assert "Envelope(message, reply_to=future)" in source
    assert "actor_inbox.put" in source
