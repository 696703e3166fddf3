"""Exceptions raised by supervisors and by supervised actors.

Every error a supervisor raises to a caller derives from `SupervisorError`,
so ``except SupervisorError`` catches all of them. The errors travel back to
the caller through pykka futures, i.e. they are raised in the thread that
calls ``.get()`` on the future returned by a proxy call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pykka import ActorRef

__all__ = [
    "AlreadyPresentError",
    "AlreadyStartedError",
    "ChildNotFoundError",
    "ChildRunningError",
    "CrashError",
    "GiveUpError",
    "MaxChildrenError",
    "StartError",
    "SupervisorError",
]


class SupervisorError(Exception):
    """Base class of the errors a supervisor reports to its callers."""


class StartError(SupervisorError):
    """A child (or the supervisor itself) failed to start.

    Raised by `Supervisor.start` when one of the initial children fails to
    start (after the children already started have been stopped again), and
    by ``start_child``/``restart_child`` when the new child fails to start.

    Attributes:
        child_id: id of the child that failed to start, or ``None`` when the
            supervisor itself failed to initialise.
        cause: the exception raised by the child's ``__init__`` or
            ``on_start`` (also chained as ``__cause__``).
    """

    def __init__(self, child_id: str | None, cause: BaseException | None) -> None:
        self.child_id = child_id
        self.cause = cause
        what = "supervisor" if child_id is None else f"child {child_id!r}"
        super().__init__(f"{what} failed to start: {cause!r}")


class ChildNotFoundError(SupervisorError, LookupError):
    """No child with the given id (or actor ref) is known to the supervisor."""


class ChildRunningError(SupervisorError):
    """The operation needs a stopped child, but it is running or restarting.

    Attributes:
        child_id: id of the child.
        state: ``"running"`` or ``"restarting"`` (a restart is scheduled).
    """

    def __init__(self, child_id: str, state: str) -> None:
        self.child_id = child_id
        self.state = state
        super().__init__(f"child {child_id!r} is {state}")


class AlreadyPresentError(SupervisorError):
    """``start_child`` was given the id of a stopped child that is still kept.

    Use ``restart_child`` to start it, or ``delete_child`` first.
    """

    def __init__(self, child_id: str) -> None:
        self.child_id = child_id
        super().__init__(f"child {child_id!r} is already present")


class AlreadyStartedError(SupervisorError):
    """``start_child`` was given the id of a child that is running.

    Attributes:
        child_id: id of the child.
        ref: the running child's actor ref.
    """

    def __init__(self, child_id: str, ref: ActorRef[Any]) -> None:
        self.child_id = child_id
        self.ref = ref
        super().__init__(f"child {child_id!r} is already started as {ref}")


class MaxChildrenError(SupervisorError):
    """A `DynamicSupervisor` already has ``max_children`` children."""


class GiveUpError(SupervisorError):
    """The exit reason of a supervisor that exceeded its restart intensity.

    Never raised to a caller: it is what the parent of a supervisor that gave
    up sees as the error of that child's abnormal exit.
    """


class CrashError(Exception):
    """Raised inside an actor by `crash` to make it fail like any crash.

    It derives from `Exception`, not `SupervisorError`, because it is an
    ordinary unhandled error of the crashed actor.
    """
