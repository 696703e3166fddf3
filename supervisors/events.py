"""What supervisors report: one log line and one hook call per event.

Every child start, child exit, restart, give-up and escalation is logged as a
single record on the ``"supervisors"`` logger, with the fields in ``extra``
(``event``, ``supervisor``, ``child``, ``reason``, ``error``, ``urn``) so a
JSON formatter can render them as fields, and passed to the supervisor's
``event_hook`` (metrics) as a `SupervisorEvent`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

__all__ = ["EventHook", "EventKind", "SupervisorEvent", "emit", "logger"]

logger = logging.getLogger("supervisors")


class EventKind(StrEnum):
    """The kinds of `SupervisorEvent`."""

    START = "start"
    """A child started (initially, by a restart, or through the API)."""

    EXIT = "exit"
    """A child ended, or failed to start; ``reason`` is an `ExitReason` value."""

    RESTART = "restart"
    """The supervisor counted a restart attempt for ``child`` and is acting on
    it; ``reason``/``error`` describe the exit that caused it."""

    GIVE_UP = "give_up"
    """A restart of ``child`` exceeded the intensity; all children are being
    stopped."""

    ESCALATE = "escalate"
    """The supervisor, having given up, now ends abnormally, so its own
    supervisor (if any) applies its strategy."""


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """One thing that happened in a supervisor.

    Attributes:
        kind: what happened.
        supervisor: name of the supervisor reporting it.
        child: id of the child concerned; ``None`` for ``escalate``.
        reason: for ``exit`` and ``restart``: ``"normal"`` (stopped by
            someone), ``"shutdown"`` (stopped by its supervisor),
            ``"abnormal"`` (unhandled exception, failed start, `crash`) or
            ``"killed"`` (did not stop within its shutdown time, or
            brutal_kill). For ``give_up``/``escalate``:
            ``"reached_max_restart_intensity"``. ``None`` for ``start``.
        error: ``repr()`` of the exception behind an abnormal exit, if any.
        urn: URN of the child actor concerned, if there is one.
    """

    kind: EventKind
    supervisor: str
    child: str | None
    reason: str | None = None
    error: str | None = None
    urn: str | None = None


EventHook: TypeAlias = Callable[[SupervisorEvent], None]

_MESSAGES = {
    EventKind.START: "supervisor %s: child %s started",
    EventKind.EXIT: "supervisor %s: child %s exited",
    EventKind.RESTART: "supervisor %s: restarting child %s",
    EventKind.GIVE_UP: "supervisor %s: giving up after child %s",
    EventKind.ESCALATE: "supervisor %s: escalating to its supervisor",
}


def emit(event: SupervisorEvent, hook: EventHook | None, level: int = logging.INFO) -> None:
    """Log ``event`` and pass it to ``hook``; never raises from the hook.

    Runs in the reporting supervisor's thread, so a slow hook delays that
    supervisor: hooks should only record (increment a counter, enqueue).

    Args:
        event: the event to report.
        hook: the supervisor's event hook, if any. Any exception it raises is
            logged and swallowed so metrics can never break supervision.
        level: logging level of the record.
    """
    fields = {
        "event": event.kind.value,
        "supervisor": event.supervisor,
        "child": event.child,
        "reason": event.reason,
        "error": event.error,
        "urn": event.urn,
    }
    message = _MESSAGES[event.kind]
    args: tuple[object, ...] = (event.supervisor,)
    if event.kind is not EventKind.ESCALATE:
        args += (event.child,)
    if event.reason is not None:
        message += " (%s)"
        args += (event.reason if event.error is None else f"{event.reason}: {event.error}",)
    logger.log(level, message, *args, extra=fields)
    if hook is None:
        return
    try:
        hook(event)
    except BaseException:  # a hook raising even SystemExit must not end the supervisor
        logger.exception(
            "supervisor %s: event_hook failed on %s", event.supervisor, event.kind, extra=fields
        )
