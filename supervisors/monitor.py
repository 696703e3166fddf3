"""How a supervisor starts a child, learns how it ended, and makes it end.

Erlang links a supervisor to its children and gets an ``EXIT`` signal with a
reason. Pykka has neither, so an unmodified actor class is run as a generated
subclass (`monitored_class`) that overrides a few pykka 4 internals to record
exactly how the actor ends and to tell its parent with a `ChildExit`
message. The ways an actor can end, and the reason reported:

* an exception while handling a ``tell`` (pykka calls ``on_failure``):
  ``abnormal``;
* an exception in ``on_start`` (pykka calls no ``on_failure`` then):
  ``abnormal``, and the start itself fails (`Link.start_error`);
* a ``BaseException`` (``SystemExit``...) anywhere: ``abnormal``. Stock pykka
  would call ``ActorRegistry.stop_all()`` and take every actor in the process
  down; a monitored actor only ends itself;
* ``stop()`` by anyone but its supervisor: ``normal``;
* ``stop()`` by its supervisor (`shutdown`): ``shutdown``;
* `crash`: ``abnormal``, as any other crash.

An exception raised while handling an ``ask`` still goes back to the caller
and the actor keeps running, as in pykka; an exception in ``on_stop`` turns a
``normal`` exit into an ``abnormal`` one (as an exception in an Erlang
``terminate/2`` does).

The generated subclass keeps the class name (so thread names, logs and
``ActorRegistry.get_by_class_name`` are unchanged), is a subclass of the
original (so ``get_by_class`` and ``isinstance`` work) and runs on a daemon
thread, so a child stuck in a blocking call never keeps the process alive.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, TypeVar, cast

import pykka
from pykka import ActorDeadError, ActorRegistry

from supervisors.errors import CrashError
from supervisors.latch import LatchFuture, new_inbox

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "ChildExit",
    "ExitReason",
    "KillFn",
    "Link",
    "MonitoredActor",
    "crash",
    "monitored_class",
    "shutdown",
    "spawn",
]

KillFn: TypeAlias = Callable[[pykka.ActorRef[Any]], None]
"""Called with a child's ref when it must be killed; see `ChildSpec.kill`."""

logger = logging.getLogger("supervisors")
_pykka_logger = logging.getLogger("pykka")

A = TypeVar("A", bound=pykka.ThreadingActor)


class ExitReason(StrEnum):
    """How a child ended, as its supervisor reports it."""

    NORMAL = "normal"
    """Stopped by someone other than its supervisor."""

    SHUTDOWN = "shutdown"
    """Stopped by its supervisor."""

    ABNORMAL = "abnormal"
    """Unhandled exception, failed ``on_start``, or `crash`."""

    KILLED = "killed"
    """Did not stop in time (or brutal_kill): the kill hook was called and the
    thread abandoned. Only ever decided by the supervisor."""


@dataclass(frozen=True, slots=True)
class ChildExit:
    """Message a monitored actor tells its parent as its thread ends.

    Attributes:
        urn: the ended actor's URN.
        reason: how it ended.
        error: the exception behind an abnormal exit, if any.
    """

    urn: str
    reason: ExitReason
    error: BaseException | None


class Link:
    """What one monitored actor and the actor that started it share.

    Written only by the child's thread (except `shutdown_requested`, written
    by the parent before it asks the child to stop); the parent reads the
    other fields only after waiting on `started` or `exited`, which orders the
    reads after the writes.

    Attributes:
        parent: where to tell the `ChildExit`; ``None`` for a root.
        started: set once ``on_start`` has finished, successfully or not.
        exited: set once the actor's thread has finished its work.
        start_error: the exception from ``on_start``, if it failed.
        reason: how the actor ended, once it has.
        error: the exception behind an abnormal exit, if any.
        shutdown_requested: the parent asked the actor to stop.
    """

    __slots__ = (
        "error",
        "exited",
        "parent",
        "reason",
        "shutdown_requested",
        "start_error",
        "started",
    )

    def __init__(self, parent: pykka.ActorRef[Any] | None) -> None:
        self.parent = parent
        self.started = threading.Event()
        self.exited = threading.Event()
        self.start_error: BaseException | None = None
        self.reason: ExitReason | None = None
        self.error: BaseException | None = None
        self.shutdown_requested = False

    def record(self, reason: ExitReason, error: BaseException | None) -> None:
        """Record how the actor ends; the first reason wins, with one exception.

        Runs in the child's thread. A failing ``on_stop`` turns a ``normal``
        exit into an ``abnormal`` one; a ``shutdown`` stays a shutdown (its
        supervisor is stopping it anyway) but keeps the error for the logs.
        """
        if self.reason is None or (
            self.reason is ExitReason.NORMAL and reason is ExitReason.ABNORMAL
        ):
            self.reason, self.error = reason, error
        elif self.error is None:
            self.error = error


class _Crash(NamedTuple):
    reason: str


class MonitoredActor(pykka.ThreadingActor):
    """Mixin placed before a user's actor class by `monitored_class`.

    Never instantiated directly. All overridden methods run in the actor's
    own thread.
    """

    _monitor_link: Link | None = None
    _monitored_origin: type[pykka.ThreadingActor] = pykka.ThreadingActor

    # Lighter than pykka's queue.Queue and Condition-based future; see supervisors.latch.
    @staticmethod
    def _create_actor_inbox() -> Any:
        return new_inbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return LatchFuture()

    def _link(self) -> Link:
        if self._monitor_link is None:
            # Started with plain Actor.start() instead of spawn(): still
            # isolate BaseExceptions, just report to nobody.
            self._monitor_link = Link(None)
        return self._monitor_link

    def _actor_loop(self) -> None:
        link = self._link()
        try:
            try:
                self._actor_loop_setup()
            except BaseException:  # pykka's setup only catches Exception
                self._handle_failure(*sys.exc_info())
            if self.actor_stopped.is_set():
                link.start_error = link.error or ActorDeadError(f"{self} stopped in on_start")
            link.started.set()
            self._actor_loop_running()
        except BaseException:  # e.g. a BaseException from on_failure
            self._handle_failure(*sys.exc_info())
        finally:
            try:
                self._actor_loop_teardown()
            finally:
                self._report_exit(link)

    def _report_exit(self, link: Link) -> None:
        if link.reason is None:
            link.record(ExitReason.ABNORMAL, RuntimeError(f"{self} ended without a reason"))
        link.started.set()
        link.exited.set()
        if link.parent is None:
            return
        assert link.reason is not None
        # If the parent stopped first, nobody is left to care.
        with contextlib.suppress(ActorDeadError):
            link.parent.tell(ChildExit(self.actor_urn, link.reason, link.error))

    def _actor_loop_running(self) -> None:
        # Same loop as pykka 4's Actor._actor_loop_running except for the
        # BaseException branch, where pykka stops every actor in the registry.
        while not self.actor_stopped.is_set():
            envelope = self.actor_inbox.get()
            try:
                response = self._handle_receive(envelope.message)
                if envelope.reply_to is not None:
                    envelope.reply_to.set(response)
            except Exception:
                if envelope.reply_to is not None:
                    _pykka_logger.info(
                        f"Exception returned from {self} to caller:", exc_info=sys.exc_info()
                    )
                    envelope.reply_to.set_exception()
                else:
                    self._handle_failure(*sys.exc_info())
                    self._call_on_failure(*sys.exc_info())
            except BaseException:
                exc_type, exc_value, exc_tb = sys.exc_info()
                self._handle_failure(exc_type, exc_value, exc_tb)
                if envelope.reply_to is not None:
                    # Re-raising a SystemExit in the caller's thread would be
                    # worse than useless; tell it the actor died instead.
                    dead = ActorDeadError(f"{self} ended by {exc_value!r}")
                    envelope.reply_to.set_exception(exc_info=(ActorDeadError, dead, None))
                self._call_on_failure(exc_type, exc_value, exc_tb)

    def _call_on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.on_failure(exception_type, exception_value, traceback)
        except Exception:
            self._handle_failure(*sys.exc_info())

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._link().record(ExitReason.ABNORMAL, exception_value)
        super()._handle_failure(exception_type, exception_value, traceback)

    def _stop(self) -> None:
        link = self._link()
        link.record(ExitReason.SHUTDOWN if link.shutdown_requested else ExitReason.NORMAL, None)
        super()._stop()

    def _handle_receive(self, message: Any) -> Any:
        if isinstance(message, _Crash):
            raise CrashError(message.reason)
        return super()._handle_receive(message)


_classes: dict[tuple[type[pykka.ThreadingActor], bool], type[MonitoredActor]] = {}
_classes_lock = threading.Lock()


def monitored_class(
    actor_class: type[pykka.ThreadingActor], *, daemon: bool = True
) -> type[MonitoredActor]:
    """Return the monitored subclass of ``actor_class``, creating it once.

    Thread-safe; any thread may call it.

    Args:
        actor_class: a `pykka.ThreadingActor` subclass, or a class this
            function returned (its original class is used then).
        daemon: value of ``use_daemon_thread`` for the generated class.
    """
    if issubclass(actor_class, MonitoredActor):
        actor_class = actor_class._monitored_origin
    if not issubclass(actor_class, pykka.ThreadingActor):
        raise TypeError(f"{actor_class!r} is not a pykka.ThreadingActor subclass")
    key = (actor_class, daemon)
    with _classes_lock:
        cls = _classes.get(key)
        if cls is None:
            namespace = {
                "use_daemon_thread": daemon,
                "_monitored_origin": actor_class,
                "__module__": actor_class.__module__,
                "__qualname__": actor_class.__qualname__,
                "__doc__": actor_class.__doc__,
            }
            cls = cast(
                "type[MonitoredActor]",
                type(actor_class.__name__, (MonitoredActor, actor_class), namespace),
            )
            _classes[key] = cls
    return cls


def spawn(
    actor_class: type[A],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    parent: pykka.ActorRef[Any] | None,
    daemon: bool = True,
) -> tuple[pykka.ActorRef[A], Link]:
    """Start a monitored ``actor_class`` and wait until its ``on_start`` ends.

    Runs in the caller's thread (a supervisor's, or the one calling
    ``Supervisor.start``): ``__init__`` runs there, ``on_start`` in the new
    actor's thread, and this blocks, without a timeout as in OTP, until
    ``on_start`` has returned or raised. A child whose ``on_start`` waits on
    its own supervisor therefore deadlocks, exactly as in Erlang.

    Args:
        actor_class: the unmodified actor class.
        args: positional arguments for its constructor.
        kwargs: keyword arguments for its constructor.
        parent: actor told the `ChildExit` when the new actor ends.
        daemon: whether the actor runs on a daemon thread.

    Returns:
        The actor's ref and its `Link`. If ``link.start_error`` is set,
        ``on_start`` failed and the actor has already ended.

    Raises:
        Exception: whatever ``actor_class.__init__`` raises.
    """
    cls = monitored_class(actor_class, daemon=daemon)
    actor = cls(*args, **(kwargs or {}))
    link = Link(parent)
    actor._monitor_link = link
    # Same steps as pykka.Actor.start(), which cannot hand over the link.
    ActorRegistry.register(actor.actor_ref)
    actor._start_actor_loop()
    link.started.wait()
    return cast("pykka.ActorRef[A]", actor.actor_ref), link


def shutdown(
    ref: pykka.ActorRef[Any],
    link: Link,
    *,
    timeout: float | None,
    brutal: bool = False,
    kill: KillFn | None = None,
) -> tuple[ExitReason, BaseException | None]:
    """Stop a monitored actor as its supervisor, within ``timeout`` seconds.

    Runs in the supervisor's thread and blocks it for at most ``timeout``
    seconds (forever if ``None``). The stop request queues behind messages
    already in the child's inbox, as any pykka stop does.

    If the actor has not ended in time, or at once when ``brutal``, ``kill``
    is called with its ref (exceptions logged and ignored) and the actor is
    considered gone: its daemon thread is abandoned and will end whenever it
    gets to the stop request.

    Returns:
        How the actor ended: usually ``shutdown``; ``killed`` if it had to be
        killed; ``normal``/``abnormal`` if it was already ending otherwise.
    """
    link.shutdown_requested = True
    ref.stop(block=False)
    if link.exited.wait(0 if brutal else timeout):
        return link.reason or ExitReason.SHUTDOWN, link.error
    if kill is not None:
        try:
            kill(ref)
        except Exception:
            logger.exception("kill hook for %s failed", ref)
    return ExitReason.KILLED, None


def crash(ref: pykka.ActorRef[Any], reason: str = "killed") -> None:
    """Make a supervised actor fail exactly as an unhandled exception does.

    The actor raises `CrashError(reason)` when it gets to the message (after
    the messages already in its inbox), so pykka calls its ``on_failure``
    and its supervisor sees an abnormal exit and applies its restart policy.
    Meant for chaos tooling and tests. Any thread may call it.

    Raises:
        TypeError: if the actor was not started by a supervisor.
        pykka.ActorDeadError: if the actor is not running.
    """
    if not issubclass(ref.actor_class, MonitoredActor):
        raise TypeError(f"{ref} was not started by a supervisor; crash() cannot reach it")
    ref.tell(_Crash(reason))
