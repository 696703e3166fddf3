"""Trying again later, as an actor does: a timer that messages the actor itself.

A DbWorker that cannot get a connection, or a change listener that cannot
LISTEN, does not fail its start (that would be a restart storm while the
database is down): it stays alive and tries again after a delay, through a
message to itself, so that it keeps handling its other messages meanwhile
(OTP's ``try_again_restart``, DBConnection's reconnect). Both use this.

The delays are the caller's (``delay(attempt)``, attempt counting from 0):
the service hands in :class:`supervisors.Backoff`'s, the one jittered
exponential backoff of the code base.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import pykka

__all__ = ["RetryLater"]

logger = logging.getLogger(__name__)


class RetryLater:
    """Schedules ``message`` to ``ref`` after a growing delay; used from the actor's thread.

    Args:
        delay: seconds to wait before attempt ``n`` (0-based) after a failure.
        message: what to send to the actor when it is time to try again.
        event: the log event's name (``db_connect_retry``, ...).
        what: how the log line names the actor's trouble.
    """

    def __init__(self, delay: Callable[[int], float], message: object, *, event: str,
                 what: str) -> None:
        self._delay = delay
        self._message = message
        self._event = event
        self._what = what
        self.attempts = 0
        """Failed attempts in a row."""
        self._timer: threading.Timer | None = None

    def failed(self, ref: pykka.ActorRef[Any], error: BaseException) -> None:
        """An attempt failed: log it and send the message again after the next delay."""
        delay = self._delay(self.attempts)
        self.attempts += 1
        logger.info("%s: %s; retrying in %.2f s", self._what, error, delay,
                    extra={"event": self._event, "attempt": self.attempts})
        timer = threading.Timer(delay, self._send, args=(ref,))
        timer.daemon = True
        self._timer = timer
        timer.start()

    def succeeded(self) -> None:
        """An attempt worked: the next failure starts from the shortest delay."""
        self.attempts = 0

    def cancel(self) -> None:
        """No more attempts (the actor is stopping)."""
        timer = self._timer
        if timer is not None:
            timer.cancel()

    def _send(self, ref: pykka.ActorRef[Any]) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(self._message)
