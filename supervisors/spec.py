"""Child specifications: what a supervisor starts, and how it treats it.

The vocabulary is OTP's (``supervisor:child_spec()``). The enums are
`enum.StrEnum` so that plain strings (``restart="transient"``) work wherever
an enum member is expected and compare equal to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import pykka

from supervisors.monitor import KillFn

if TYPE_CHECKING:
    from supervisors.backoff import Backoff

__all__ = [
    "BRUTAL_KILL",
    "INFINITY",
    "ChildSpec",
    "ChildType",
    "KillFn",
    "Restart",
    "RestartName",
    "Shutdown",
    "Strategy",
    "StrategyName",
]


class Strategy(StrEnum):
    """What a supervisor restarts when one of its children has to be restarted."""

    ONE_FOR_ONE = "one_for_one"
    """Only the child that ended."""

    ONE_FOR_ALL = "one_for_all"
    """Every child: the others are stopped in reverse start order, then all are
    started again in start order."""

    REST_FOR_ONE = "rest_for_one"
    """The child that ended and every child started after it."""


StrategyName: TypeAlias = Literal["one_for_one", "one_for_all", "rest_for_one"]


class Restart(StrEnum):
    """When a child that ended is restarted."""

    PERMANENT = "permanent"
    """Always."""

    TRANSIENT = "transient"
    """Only after an abnormal exit (an unhandled exception)."""

    TEMPORARY = "temporary"
    """Never; its spec is forgotten once it ends."""


RestartName: TypeAlias = Literal["permanent", "transient", "temporary"]


class ChildType(StrEnum):
    """Whether a child is itself a supervisor (reported by ``which_children``)."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"


BRUTAL_KILL: Literal["brutal_kill"] = "brutal_kill"
"""Shutdown value: do not wait for a clean stop, call the kill hook at once."""

INFINITY: Literal["infinity"] = "infinity"
"""Shutdown value: wait for the child to stop however long it takes."""

Shutdown: TypeAlias = float | Literal["brutal_kill", "infinity"]


_WORKER_SHUTDOWN = 5.0


@dataclass(frozen=True, init=False)
class ChildSpec:
    """How to start one child and how to treat it when it ends.

    A spec is immutable and may be reused: every (re)start creates a fresh
    actor, ``actor_class(*args, **kwargs)``, with a new URN.

    Attributes:
        id: name of the child, unique within a `Supervisor` (a
            `DynamicSupervisor` does not require unique ids).
        actor_class: any `pykka.ThreadingActor` subclass, unchanged. The
            supervisor runs it as a generated subclass (same name) that
            reports how the actor ended, on a daemon thread.
        args: positional arguments for ``actor_class``.
        kwargs: keyword arguments for ``actor_class``. A child supervisor
            inherits its parent's ``event_hook`` and gets the name
            ``"<parent>/<id>"`` unless these keys are given here.
        restart: `Restart` policy (or its string value).
        shutdown: seconds to wait for the child to stop before killing it,
            ``"infinity"`` to wait forever, or ``"brutal_kill"`` to kill at
            once. Defaults to 5 seconds for workers and ``"infinity"`` for
            supervisors, as in OTP, so a child supervisor has time to stop its
            own children.
        kill: optional hook called, in the supervisor's thread, when the
            child must be killed (its shutdown timed out, or
            ``"brutal_kill"``). Python cannot kill a thread, so this is the
            only way to release one stuck in a blocking call: e.g. cancel the
            child's database query and close its connection. Either way the
            supervisor then considers the child gone and abandons its daemon
            thread. Exceptions from the hook are logged and ignored.
        backoff: optional `Backoff` delaying this child's restarts.
        child_type: `ChildType`; detected from ``actor_class`` (a
            `SupervisorBase` subclass is a supervisor) when omitted.
    """

    id: str
    actor_class: type[pykka.ThreadingActor]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    restart: Restart
    shutdown: Shutdown
    kill: KillFn | None
    backoff: Backoff | None
    child_type: ChildType

    def __init__(
        self,
        id: str,
        actor_class: type[pykka.ThreadingActor],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        restart: Restart | RestartName = Restart.PERMANENT,
        shutdown: Shutdown | None = None,
        kill: KillFn | None = None,
        backoff: Backoff | None = None,
        child_type: ChildType | Literal["worker", "supervisor"] | None = None,
    ) -> None:
        """Validate and normalise a spec; runs in the caller's thread.

        Raises:
            TypeError: if ``actor_class`` is not a ThreadingActor subclass.
            ValueError: for an unknown restart or child_type, or a bad shutdown.
        """
        if not (isinstance(actor_class, type) and issubclass(actor_class, pykka.ThreadingActor)):
            raise TypeError(
                f"actor_class must be a pykka.ThreadingActor subclass, got {actor_class!r}"
            )
        resolved_type = (
            ChildType(child_type) if child_type is not None else _detect_type(actor_class)
        )
        if shutdown is None:
            shutdown = INFINITY if resolved_type is ChildType.SUPERVISOR else _WORKER_SHUTDOWN
        _check_shutdown(shutdown)
        fields: dict[str, Any] = {
            "id": id,
            "actor_class": actor_class,
            "args": tuple(args),
            "kwargs": MappingProxyType(dict(kwargs or {})),
            "restart": Restart(restart),
            "shutdown": shutdown,
            "kill": kill,
            "backoff": backoff,
            "child_type": resolved_type,
        }
        for name, value in fields.items():
            # Frozen dataclasses can only be initialised through object.__setattr__.
            object.__setattr__(self, name, value)

    @property
    def brutal_kill(self) -> bool:
        """Whether the child is killed without waiting for a clean stop."""
        return self.shutdown == BRUTAL_KILL

    @property
    def shutdown_timeout(self) -> float | None:
        """Seconds to wait for a clean stop; ``None`` waits forever.

        Meaningless (0) for ``brutal_kill``.
        """
        if self.shutdown == INFINITY:
            return None
        if self.shutdown == BRUTAL_KILL:
            return 0.0
        return float(self.shutdown)


def _detect_type(actor_class: type[pykka.ThreadingActor]) -> ChildType:
    # A supervisor class says so (SupervisorBase.child_type); any other
    # actor is a worker. Read as an attribute, so that this module needs
    # none of the supervisor modules (they import it).
    declared = getattr(actor_class, "child_type", ChildType.WORKER)
    return ChildType.SUPERVISOR if declared == ChildType.SUPERVISOR else ChildType.WORKER


def _check_shutdown(shutdown: object) -> None:
    if shutdown in (BRUTAL_KILL, INFINITY):
        return
    if isinstance(shutdown, bool) or not isinstance(shutdown, int | float):
        raise ValueError(f"shutdown must be seconds, 'brutal_kill' or 'infinity', got {shutdown!r}")
    if math.isnan(shutdown) or shutdown < 0:
        raise ValueError(f"shutdown must be >= 0 seconds, got {shutdown!r}")
