"""Machinery shared by `Supervisor` and `DynamicSupervisor`.

A supervisor is a pykka `ThreadingActor`. All of its state (the children,
the restart timestamps, the pending restarts) lives in its own thread: the
public methods are called through a proxy or ref (pykka turns them into
messages), children report their exits with a ``tell`` (`ChildExit`), and
delayed restarts arrive as a ``tell`` from a `threading.Timer`. Nothing else
touches the state, so no locks are needed. The flip side, as in OTP: while
the supervisor starts a child (waiting for its ``on_start``) or stops one
(waiting up to its shutdown time), it answers nothing else.

The restart algorithm follows OTP's ``supervisor.erl``:

1. A child's exit is ignored unless it is a current child (a child the
   supervisor has itself stopped or killed, or replaced, is forgotten first).
2. ``permanent`` children are restarted after any exit, ``transient`` ones
   after an abnormal exit only, ``temporary`` ones never (their spec is
   dropped).
3. Each restart attempt is recorded with `exceeds_intensity`; over the limit
   the supervisor gives up: it stops all children in reverse start order,
   calls ``on_give_up``, and ends abnormally (`GiveUpError`), which its own
   supervisor sees as an abnormal exit of that child (escalation).
4. Otherwise the children the strategy designates are stopped in reverse start
   order and started again in start order (for ``one_for_all`` and
   ``rest_for_one`` that includes designated children that were not running,
   e.g. stopped with ``terminate_child``, as in OTP). If a start fails, the restart is
   tried again through a message to the supervisor itself (OTP's
   ``try_again_restart``), so other requests are served in between; every
   attempt counts toward the intensity.
5. With a `Backoff`, each attempt waits its delay on a timer first; the
   children it would restart with the failed one are stopped at once, so that
   dependants do not run without it meanwhile.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self, TypedDict, Unpack

import pykka
from pykka import ActorDeadError

from supervisors.errors import GiveUpError, StartError
from supervisors.events import EventHook, EventKind, SupervisorEvent, emit, logger
from supervisors.intensity import exceeds_intensity
from supervisors.monitor import ChildExit, ExitReason, Link, shutdown, spawn
from supervisors.spec import ChildSpec, ChildType, Restart, Strategy, StrategyName

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ChildInfo", "SupervisorBase", "SupervisorOptions"]

ChildInfo = tuple[str, pykka.ActorRef[Any] | None, ChildType]


class SupervisorOptions(TypedDict, total=False):
    """What every supervisor takes, whatever decides its children.

    Attributes:
        intensity: restarts allowed within ``period``; ``>= 0`` (default 3).
        period: seconds of the restart window; ``> 0`` (default 5).
        name: used in logs and events; a short unique id by default.
        on_give_up: called (in the supervisor's thread, after all children
            are stopped) when the intensity is exceeded. Exceptions are
            logged and ignored.
        event_hook: receives every `SupervisorEvent`; inherited by child
            supervisors started from specs unless their kwargs set one.
    """

    intensity: int
    period: float
    name: str | None
    on_give_up: Callable[[], None] | None
    event_hook: EventHook | None
"""One entry of ``which_children()``: id, ref (``None`` when not running) and type."""

_GIVE_UP_REASON = "reached_max_restart_intensity"

_EXIT_LEVELS: dict[str, int] = {
    ExitReason.NORMAL: logging.INFO,
    ExitReason.SHUTDOWN: logging.INFO,
    ExitReason.ABNORMAL: logging.ERROR,
    ExitReason.KILLED: logging.WARNING,
}


class _RestartDue(NamedTuple):
    """Told to the supervisor itself: try restarting the child ``key`` now."""

    key: int
    token: int


@dataclass(eq=False, slots=True)
class _Child:
    """One child as its supervisor sees it; only used in the supervisor's thread."""

    key: int
    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    link: Link | None = None
    # A restart is pending (timer running, or a try-again message queued).
    restarting: bool = False
    # Bumped whenever pending restarts must be forgotten; stale _RestartDue
    # messages carry an old token and are ignored.
    token: int = 0
    timer: threading.Timer | None = None
    backoff_attempt: int = 0
    started_at: float = 0.0
    removed: bool = False
    # The exit that made the pending restart necessary, for events and logs.
    cause: tuple[ExitReason, BaseException | None] = field(default=(ExitReason.ABNORMAL, None))


def _deliver(ref: pykka.ActorRef[Any], message: object) -> None:
    # Runs in a Timer thread: it may only talk to the supervisor, not touch it.
    with contextlib.suppress(ActorDeadError):
        ref.tell(message)


class SupervisorBase(pykka.ThreadingActor):
    """Common core of `Supervisor` and `DynamicSupervisor`; not used directly.

    Subclasses decide which children exist and how callers address them;
    this class starts, stops and restarts them.
    """

    child_type: ClassVar[ChildType] = ChildType.SUPERVISOR
    """What a `ChildSpec` of a supervisor class is (see ``spec._detect_type``)."""

    # Like its children, a supervisor never keeps a process alive: a process
    # that must exit (its parent died, it was told to stop) must not hang on
    # a tree nobody will stop. Stop the tree explicitly for a clean shutdown.
    use_daemon_thread = True

    def __init__(
        self,
        *,
        strategy: Strategy | StrategyName = Strategy.ONE_FOR_ONE,
        **options: Unpack[SupervisorOptions],
    ) -> None:
        """Validate the settings (see `SupervisorOptions`); runs in the thread calling ``start``.

        Raises:
            ValueError: for an unknown strategy, a negative intensity or a
                period that is not positive.
        """
        super().__init__()
        intensity = options.get("intensity", 3)
        period = options.get("period", 5.0)
        if isinstance(intensity, bool) or not isinstance(intensity, int) or intensity < 0:
            raise ValueError(f"intensity must be an int >= 0, got {intensity!r}")
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period!r}")
        name = options.get("name")
        self.name: str = name if name is not None else f"supervisor-{self.actor_urn[9:17]}"
        self._strategy = Strategy(strategy)
        self._intensity = intensity
        self._period = float(period)
        self._on_give_up = options.get("on_give_up")
        self._event_hook = options.get("event_hook")
        self._children: list[_Child] = []
        self._by_urn: dict[str, _Child] = {}
        self._restarts: list[float] = []
        self._keys = itertools.count()

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> pykka.ActorRef[Self]:
        """Start the supervisor and all its children, in order, then return.

        Runs in the caller's thread and blocks until every initial child's
        ``on_start`` has finished. The supervisor runs as a monitored actor
        (see `supervisors.monitor`) on a daemon thread unless a subclass sets
        ``use_daemon_thread = False``.

        Raises:
            StartError: if a child failed to start; the children already
                started were stopped in reverse order and the supervisor is
                not running.
            ValueError: for invalid arguments.
        """
        ref, link = spawn(cls, args, kwargs, parent=None, daemon=cls.use_daemon_thread)
        error = link.start_error
        if error is None:
            return ref
        if isinstance(error, StartError):
            raise error
        raise StartError(None, error) from error

    # -- pykka hooks: all run in the supervisor's thread -----------------------

    def on_start(self) -> None:
        """Start the initial children in order; roll back if one fails.

        Raises:
            StartError: naming the first child that failed to start, after
                the ones already started were stopped in reverse order.
        """
        for child in list(self._children):
            error = self._start(child)
            if error is not None:
                self._terminate_all()
                raise StartError(child.spec.id, error) from error

    def on_stop(self) -> None:
        """Stop all children in reverse start order, each within its shutdown."""
        self._terminate_all()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """A bug in the supervisor itself: do not leave its children orphaned."""
        self._terminate_all()

    def on_receive(self, message: Any) -> Any:
        """Handle child exits and the supervisor's own delayed restarts."""
        if isinstance(message, ChildExit):
            self._on_child_exit(message)
            return None
        if isinstance(message, _RestartDue):
            self._on_restart_due(message)
            return None
        return super().on_receive(message)

    # -- queries ----------------------------------------------------------------

    def which_children(self) -> list[ChildInfo]:
        """List the children in start order as ``(id, ref or None, type)``.

        The ref is ``None`` while a child is not running, including while a
        restart is pending (OTP's ``restarting``).
        """
        return [(c.spec.id, c.ref, c.spec.child_type) for c in self._children]

    def count_children(self) -> dict[str, int]:
        """Count the children as OTP does.

        Returns:
            ``specs``: all children, running or not; ``active``: running
            ones; ``supervisors``/``workers``: children of each type, running
            or not.
        """
        supervisors = sum(c.spec.child_type is ChildType.SUPERVISOR for c in self._children)
        return {
            "specs": len(self._children),
            "active": sum(c.ref is not None and c.ref.is_alive() for c in self._children),
            "supervisors": supervisors,
            "workers": len(self._children) - supervisors,
        }

    # -- for subclasses -----------------------------------------------------------

    def _start_new(self, spec: ChildSpec) -> _Child:
        """Start a child from ``spec`` (not a restart); the caller keeps it.

        Raises:
            StartError: the child failed to start.
        """
        child = self._new_child(spec)
        error = self._start(child)
        if error is not None:
            raise StartError(spec.id, error) from error
        return child

    def _new_child(self, spec: ChildSpec) -> _Child:
        return _Child(key=next(self._keys), spec=spec)

    def _keeps_stopped_child(self, child: _Child) -> bool:
        """Whether the spec of a child that ended and is not restarted stays."""
        return child.spec.restart is not Restart.TEMPORARY

    def _start(self, child: _Child) -> BaseException | None:
        """Start ``child`` and wait for its ``on_start``.

        Returns:
            ``None`` on success, else the exception from the child's
            ``__init__`` or ``on_start`` (already reported as an exit).
        """
        spec = child.spec
        error: BaseException | None
        urn: str | None = None
        try:
            ref, link = spawn(
                spec.actor_class, spec.args, self._child_kwargs(spec), parent=self.actor_ref
            )
        except Exception as exc:
            error = exc
        else:
            error, urn = link.start_error, ref.actor_urn
            if error is None:
                self._cancel_restart(child)
                child.ref, child.link = ref, link
                child.started_at = time.monotonic()
                if spec.backoff is not None and spec.backoff.reset_after is None:
                    child.backoff_attempt = 0
                self._by_urn[ref.actor_urn] = child
                self._emit(EventKind.START, child)
                return None
        self._emit(EventKind.EXIT, child, ExitReason.ABNORMAL, error, urn=urn)
        return error

    def _terminate(self, child: _Child) -> None:
        """Stop ``child`` (if running) and forget any restart pending for it.

        Blocks for at most the child's shutdown time. A temporary child's spec
        is dropped, as OTP does.
        """
        self._cancel_restart(child)
        ref, link = child.ref, child.link
        if ref is not None and link is not None:
            # Forget the child before stopping it so that its ChildExit,
            # which arrives later, is ignored rather than restarted.
            self._by_urn.pop(ref.actor_urn, None)
            child.ref = child.link = None
            spec = child.spec
            reason, error = shutdown(
                ref, link, timeout=spec.shutdown_timeout, brutal=spec.brutal_kill, kill=spec.kill
            )
            self._emit(EventKind.EXIT, child, reason, error, urn=ref.actor_urn)
        if child.spec.restart is Restart.TEMPORARY:
            self._remove(child)

    def _terminate_all(self) -> None:
        for child in reversed(list(self._children)):
            self._terminate(child)

    def _remove(self, child: _Child) -> None:
        self._cancel_restart(child)
        if not child.removed:
            child.removed = True
            self._children.remove(child)

    def _find_ref(self, ref: pykka.ActorRef[Any]) -> _Child | None:
        return self._by_urn.get(ref.actor_urn)

    # -- restarts -------------------------------------------------------------------

    def _on_child_exit(self, message: ChildExit) -> None:
        child = self._by_urn.pop(message.urn, None)
        if child is None:
            return  # stopped, killed or replaced by this supervisor already
        child.ref = child.link = None
        self._emit(EventKind.EXIT, child, message.reason, message.error, urn=message.urn)
        if not self._must_restart(child.spec.restart, message.reason):
            if not self._keeps_stopped_child(child):
                self._remove(child)
            return
        backoff = child.spec.backoff
        if (
            backoff is not None
            and backoff.reset_after is not None
            and time.monotonic() - child.started_at >= backoff.reset_after
        ):
            child.backoff_attempt = 0
        self._schedule_restart(child, (message.reason, message.error), now=True)

    @staticmethod
    def _must_restart(restart: Restart, reason: ExitReason) -> bool:
        if restart is Restart.PERMANENT:
            return True
        if restart is Restart.TRANSIENT:
            return reason is ExitReason.ABNORMAL
        return False

    def _schedule_restart(
        self, child: _Child, cause: tuple[ExitReason, BaseException | None], *, now: bool
    ) -> None:
        """Arrange the next restart attempt for ``child``.

        Args:
            child: the child to restart (with the strategy's siblings).
            cause: the exit that made the restart necessary.
            now: attempt at once, in this handler (an exit without backoff);
                otherwise go through the inbox first, so that other messages
                are served between attempts.
        """
        child.cause = cause
        backoff = child.spec.backoff
        delay = 0.0
        if backoff is not None:
            delay = backoff.delay(child.backoff_attempt)
            child.backoff_attempt += 1
        if now and delay == 0.0:
            self._attempt_restart(child)
            return
        self._cancel_restart(child)
        child.restarting = True
        due = _RestartDue(child.key, child.token)
        if delay == 0.0:
            self.actor_ref.tell(due)
            return
        for sibling in reversed(self._affected(child)):
            if sibling is not child:
                self._terminate(sibling)
        logger.info(
            "supervisor %s: restart of child %s in %.3f s",
            self.name,
            child.spec.id,
            delay,
            extra={
                "event": "restart_scheduled",
                "supervisor": self.name,
                "child": child.spec.id,
                "reason": str(cause[0]),
                "error": None if cause[1] is None else repr(cause[1]),
                "delay": delay,
            },
        )
        timer = threading.Timer(delay, _deliver, args=(self.actor_ref, due))
        timer.daemon = True
        child.timer = timer
        timer.start()

    def _on_restart_due(self, message: _RestartDue) -> None:
        child = next((c for c in self._children if c.key == message.key), None)
        if child is None or not child.restarting or child.token != message.token:
            return  # cancelled by terminate_child, a later restart, or removal
        child.timer = None
        self._attempt_restart(child)

    def _attempt_restart(self, child: _Child) -> None:
        reason, error = child.cause
        self._restarts, exceeded = exceeds_intensity(
            self._restarts, time.monotonic(), self._intensity, self._period
        )
        if exceeded:
            self._give_up(child)
            return
        self._emit(EventKind.RESTART, child, reason, error)
        affected = self._affected(child)
        for sibling in reversed(affected):
            self._terminate_for_restart(sibling)
        for target in affected:
            if target.removed or target.ref is not None:
                continue
            start_error = self._start(target)
            if start_error is not None:
                self._schedule_restart(target, (ExitReason.ABNORMAL, start_error), now=False)
                return

    def _terminate_for_restart(self, child: _Child) -> None:
        if child.ref is not None:
            self._terminate(child)
        elif child.spec.restart is Restart.TEMPORARY:
            self._remove(child)
        else:
            self._cancel_restart(child)

    def _affected(self, child: _Child) -> list[_Child]:
        """The children a restart of ``child`` restarts, in start order."""
        if self._strategy is Strategy.ONE_FOR_ALL:
            return list(self._children)
        if self._strategy is Strategy.REST_FOR_ONE:
            return self._children[self._children.index(child) :]
        return [child]

    def _cancel_restart(self, child: _Child) -> None:
        child.restarting = False
        child.token += 1
        if child.timer is not None:
            child.timer.cancel()
            child.timer = None

    def _give_up(self, child: _Child) -> None:
        reason, error = child.cause
        self._emit(EventKind.GIVE_UP, child, _GIVE_UP_REASON, error, level=logging.ERROR)
        self._terminate_all()
        if self._on_give_up is not None:
            try:
                self._on_give_up()
            except Exception:
                logger.exception("supervisor %s: on_give_up failed", self.name)
        failure = GiveUpError(
            f"supervisor {self.name} gave up: more than {self._intensity} restarts "
            f"within {self._period:g} s (last: child {child.spec.id!r}, {reason})"
        )
        self._emit(EventKind.ESCALATE, None, _GIVE_UP_REASON, failure, level=logging.ERROR)
        # End abnormally from whatever handler got here: pykka's failure path
        # unregisters the actor and stops its loop, and the monitor records
        # the abnormal exit that the parent supervisor will act on.
        self._handle_failure(GiveUpError, failure, None)

    # -- helpers ----------------------------------------------------------------------

    def _child_kwargs(self, spec: ChildSpec) -> dict[str, Any]:
        kwargs = dict(spec.kwargs)
        if issubclass(spec.actor_class, SupervisorBase):
            kwargs.setdefault("name", f"{self.name}/{spec.id}")
            if self._event_hook is not None:
                kwargs.setdefault("event_hook", self._event_hook)
        return kwargs

    def _emit(
        self,
        kind: EventKind,
        child: _Child | None,
        reason: str | None = None,
        error: BaseException | None = None,
        *,
        urn: str | None = None,
        level: int | None = None,
    ) -> None:
        if urn is None and child is not None and child.ref is not None:
            urn = child.ref.actor_urn
        if level is None:
            level = logging.INFO
            if kind is EventKind.EXIT and reason is not None:
                level = _EXIT_LEVELS.get(reason, logging.INFO)
        event = SupervisorEvent(
            kind=kind,
            supervisor=self.name,
            child=None if child is None else child.spec.id,
            reason=None if reason is None else str(reason),
            error=None if error is None else repr(error),
            urn=urn,
        )
        emit(event, self._event_hook, level)

    def _add_children(self, specs: Iterable[ChildSpec]) -> None:
        for spec in specs:
            self._children.append(self._new_child(spec))
