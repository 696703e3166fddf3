"""A one-shot pykka future on a bare lock, and the inbox that goes with it.

Every ``ask`` creates a future, and on the request path every request asks
at least one actor. pykka's ``ThreadingFuture`` waits on a
``threading.Condition`` (a lock, an RLock and a waiter list, plus a fresh
lock per wait); its default inbox is a ``queue.Queue`` (three conditions
around a deque). A future that is set exactly once needs only a lock
created held and released by the setter, and an actor's inbox needs only
``put``/``get``/``empty``/``qsize``, which ``queue.SimpleQueue`` (written
in C) provides with a fraction of the work.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Any, TypeVar

from pykka import Future, Timeout

__all__ = ["LatchFuture", "new_inbox"]

T = TypeVar("T")


def new_inbox() -> Any:
    """An actor inbox (``Actor._create_actor_inbox``)."""
    return queue.SimpleQueue()


class LatchFuture(Future[T]):
    """A future that is set once and read by any number of threads.

    Same contract as ``pykka.ThreadingFuture``: ``get`` waits up to
    ``timeout`` (None: for ever) and raises :class:`pykka.Timeout`, returns
    the value, or re-raises the exception that was set; a second ``set``
    raises ``queue.Full``; ``map``/``join``/``filter``/``reduce`` work
    through pykka's get hooks.
    """

    def __init__(self) -> None:
        super().__init__()
        self._latch = threading.Lock()
        self._latch.acquire()  # released once, by the setter
        self._result: tuple[Any, Any] | None = None  # (value, exc_info)

    def get(self, *, timeout: float | None = None) -> Any:
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        if self._result is None:
            if not self._latch.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
                raise Timeout(f"{timeout} seconds")
            self._latch.release()  # every other getter passes too
        assert self._result is not None
        value, exc_info = self._result
        if exc_info is not None:
            exc_type, exc_value, exc_traceback = exc_info
            if exc_value is None:
                exc_value = exc_type()
            if exc_value.__traceback__ is not exc_traceback:
                raise exc_value.with_traceback(exc_traceback)
            raise exc_value
        return value

    def set(self, value: Any | None = None) -> None:
        self._settle((value, None))

    def set_exception(self, exc_info: Any = None) -> None:
        assert exc_info is None or len(exc_info) == 3
        self._settle((None, exc_info if exc_info is not None else sys.exc_info()))

    def set_get_hook(self, func: Any) -> None:
        if self._result is not None:
            raise queue.Full
        super().set_get_hook(func)

    def _settle(self, result: tuple[Any, Any]) -> None:
        # One setter per future (the actor that handles the message), so
        # the check needs no lock.
        if self._result is not None or self._get_hook is not None:
            raise queue.Full
        self._result = result
        self._latch.release()
