"""`Supervisor`: a static OTP supervisor for pykka ``ThreadingActor``s."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

import pykka

from supervisors.base import SupervisorBase, SupervisorOptions, _Child
from supervisors.errors import (
    AlreadyPresentError,
    AlreadyStartedError,
    ChildNotFoundError,
    ChildRunningError,
    StartError,
)
from supervisors.spec import ChildSpec, Strategy, StrategyName

__all__ = ["Supervisor"]


class Supervisor(SupervisorBase):
    """Starts children from specs, restarts them per strategy, stops them in order.

    Start it like any pykka actor; ``start`` returns once every child has
    started, and raises `StartError` otherwise::

        root = Supervisor.start(strategy="rest_for_one", children=[db, api], name="root")
        root.proxy().which_children().get()

    Public methods are meant to be called through the ref's proxy; they run
    in the supervisor's own thread, one at a time, interleaved with the exit
    notifications of its children.

    Restart intensity: more than ``intensity`` restart attempts within
    ``period`` seconds make the supervisor give up: it stops all its children
    in reverse start order, calls ``on_give_up`` (if given; e.g.
    ``lambda: os._exit(70)`` for a root), logs/reports ``give_up`` and
    ``escalate`` events, and ends abnormally with a `GiveUpError`, so that
    the supervisor above it (if any) applies its own strategy to it. Failed
    start attempts during restarts count as restarts, with or without a
    `Backoff` (see `supervisors.backoff` for choosing the numbers).
    """

    def __init__(
        self,
        *,
        strategy: Strategy | StrategyName = Strategy.ONE_FOR_ONE,
        children: Iterable[ChildSpec] = (),
        **options: Unpack[SupervisorOptions],
    ) -> None:
        """Create the supervisor; runs in the thread calling ``start``.

        Args:
            strategy: `Strategy` (or its string value).
            children: specs started in this order; ids must be unique.
            **options: intensity, period, name, on_give_up, event_hook
                (see `SupervisorOptions`).

        Raises:
            ValueError: for duplicate child ids or invalid settings.
        """
        super().__init__(strategy=strategy, **options)
        specs = list(children)
        ids = [spec.id for spec in specs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate child ids: {duplicates!r}")
        self._add_children(specs)

    def start_child(self, spec: ChildSpec) -> pykka.ActorRef[Any]:
        """Add a child at the end of the start order and start it.

        Runs in the supervisor's thread. Not counted as a restart.

        Returns:
            The new child's ref.

        Raises:
            AlreadyStartedError: a child with this id is running.
            AlreadyPresentError: a stopped child with this id is kept.
            StartError: the child failed to start; its spec is not kept.
        """
        existing = self._find(spec.id)
        if existing is not None:
            if existing.ref is not None:
                raise AlreadyStartedError(spec.id, existing.ref)
            raise AlreadyPresentError(spec.id)
        child = self._start_new(spec)
        self._children.append(child)
        assert child.ref is not None
        return child.ref

    def terminate_child(self, child_id: str) -> None:
        """Stop a child without restarting it; keep its spec unless temporary.

        Runs in the supervisor's thread and blocks it for up to the child's
        shutdown time. Cancels a pending restart of the child.

        Raises:
            ChildNotFoundError: no child has this id.
        """
        self._terminate(self._get(child_id))

    def restart_child(self, child_id: str) -> pykka.ActorRef[Any]:
        """Start a stopped child from its kept spec.

        Runs in the supervisor's thread. Not counted as a restart.

        Returns:
            The new child's ref.

        Raises:
            ChildNotFoundError: no child has this id.
            ChildRunningError: the child is running or restarting.
            StartError: the child failed to start (it stays stopped).
        """
        child = self._get(child_id)
        self._check_stopped(child)
        error = self._start(child)
        if error is not None:
            raise StartError(child_id, error) from error
        assert child.ref is not None
        return child.ref

    def delete_child(self, child_id: str) -> None:
        """Forget the spec of a stopped child.

        Raises:
            ChildNotFoundError: no child has this id.
            ChildRunningError: the child is running or restarting.
        """
        child = self._get(child_id)
        self._check_stopped(child)
        self._remove(child)

    def _find(self, child_id: str) -> _Child | None:
        return next((c for c in self._children if c.spec.id == child_id), None)

    def _get(self, child_id: str) -> _Child:
        child = self._find(child_id)
        if child is None:
            raise ChildNotFoundError(f"no child {child_id!r} in supervisor {self.name}")
        return child

    @staticmethod
    def _check_stopped(child: _Child) -> None:
        if child.ref is not None:
            raise ChildRunningError(child.spec.id, "running")
        if child.restarting:
            raise ChildRunningError(child.spec.id, "restarting")
