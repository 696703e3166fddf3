"""Asking a pykka actor from an asyncio event loop, without blocking it.

``ref.ask(message)`` blocks the calling thread until the actor answers:
in an event loop that would stall every other connection. :func:`ask_async`
puts the message into the actor's inbox with a reply future whose
``set``/``set_exception`` (called in the actor's thread) settle an
:class:`asyncio.Future` through ``loop.call_soon_threadsafe``; the caller
awaits that.

Every ask is answered, however the actor ends: pykka settles the reply
future of every envelope still in the inbox with :class:`pykka.ActorDeadError`
when the actor stops, and an actor found dead as the message is sent (before
or just after it was put in the inbox) answers :class:`pykka.ActorDeadError`
at once. A message put in the inbox after the actor drained it for the
last time is caught by the second check.

pykka's ``Envelope`` is a private type, reached through
:mod:`supervisors._pykka` with every other pykka internal this package uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import pykka

from supervisors._pykka import Envelope

__all__ = ["LoopFuture", "ask_async"]


def _settle(target: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    # In the loop's thread. A waiter that gave up (timeout, cancellation)
    # has a done future: the late answer is dropped.
    if target.done():
        return
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(value)


class LoopFuture(pykka.Future[Any]):
    """A pykka reply future that settles an asyncio future in its loop.

    Set from the actor's thread; never read with ``get`` (await
    :attr:`target` instead).
    """

    __slots__ = ("_loop", "answered", "target")

    def __init__(self, loop: asyncio.AbstractEventLoop, target: asyncio.Future[Any]) -> None:
        super().__init__()
        self._loop = loop
        self.target = target
        self.answered = False
        """Set in the actor's thread the moment it answers (before the loop hears of it)."""

    def get(self, *, timeout: float | None = None) -> Any:
        raise RuntimeError("await LoopFuture.target in the event loop instead")

    def set(self, value: Any | None = None) -> None:
        self._call(value, None)

    def set_exception(self, exc_info: Any = None) -> None:
        exc_type, exc_value, _ = exc_info if exc_info is not None else sys.exc_info()
        if exc_value is None and exc_type is not None:
            exc_value = exc_type()
        self._call(None, exc_value)

    def _call(self, value: Any, error: BaseException | None) -> None:
        self.answered = True
        # The loop may be closed already (the worker process is stopping):
        # nobody is waiting then.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_settle, self.target, value, error)


def ask_async(ref: pykka.ActorRef[Any], message: Any) -> asyncio.Future[Any]:
    """Send ``message`` to ``ref``; the returned future holds the answer.

    Call from a running event loop. The future raises whatever the actor
    raised for the message, or :class:`pykka.ActorDeadError` if the actor
    ended before handling it. It has no timeout of its own: bound the
    wait with :func:`asyncio.timeout` or the like; a message is not
    cancelled by giving up on its answer.
    """
    loop = asyncio.get_running_loop()
    target: asyncio.Future[Any] = loop.create_future()
    if not ref.is_alive():
        target.set_exception(pykka.ActorDeadError(f"{ref} not found"))
        return target
    reply = LoopFuture(loop, target)
    ref.actor_inbox.put(Envelope(message, reply_to=reply))
    if not ref.is_alive() and not reply.answered:
        # It stopped meanwhile, without answering: once an actor is marked
        # stopped it handles nothing more, so the message was not handled,
        # and it may have been put after the inbox was drained for the
        # last time (then nobody else would ever answer it).
        target.set_exception(pykka.ActorDeadError(f"{ref} stopped before handling the message"))
    return target
