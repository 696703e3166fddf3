"""`DynamicSupervisor`: children started on demand, addressed by actor ref.

Elixir's ``DynamicSupervisor`` (OTP's ``simple_one_for_one``): no initial
children, ``one_for_one`` restarts, and the number of children can be
capped. Children are addressed by their current actor ref; ids in their specs
are only labels for logs and need not be unique.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka

from supervisors.base import SupervisorBase, _Child
from supervisors.errors import ChildNotFoundError, MaxChildrenError, StartError
from supervisors.events import EventHook
from supervisors.spec import ChildSpec, Strategy

__all__ = ["DynamicSupervisor"]


class DynamicSupervisor(SupervisorBase):
    """A ``one_for_one`` supervisor whose children are added at run time.

    A restarted child is a new actor with a new ref: look it up again with
    ``which_children`` rather than keeping the old ref. A child that ends and
    is not restarted (transient after a normal exit, temporary) is removed.
    Intensity and give-up behave as in `Supervisor`.
    """

    def __init__(
        self,
        *,
        max_children: int | None = None,
        intensity: int = 3,
        period: float = 5.0,
        name: str | None = None,
        on_give_up: Callable[[], None] | None = None,
        event_hook: EventHook | None = None,
    ) -> None:
        """Create the supervisor; runs in the thread calling ``start``.

        Args:
            max_children: most children at once (running or restarting);
                unlimited if ``None``.
            intensity: restarts allowed within ``period``; ``>= 0``.
            period: seconds of the restart window; ``> 0``.
            name: used in logs and events; a short unique id by default.
            on_give_up: as for `Supervisor`.
            event_hook: as for `Supervisor`.
        """
        super().__init__(
            strategy=Strategy.ONE_FOR_ONE,
            intensity=intensity,
            period=period,
            name=name,
            on_give_up=on_give_up,
            event_hook=event_hook,
        )
        if max_children is not None and max_children < 0:
            raise ValueError(f"max_children must be >= 0 or None, got {max_children!r}")
        self._max_children = max_children

    def start_child(self, spec: ChildSpec) -> pykka.ActorRef[Any]:
        """Start a new child from ``spec``.

        Runs in the supervisor's thread and waits for the child's
        ``on_start``. Not counted as a restart.

        Returns:
            The child's ref.

        Raises:
            MaxChildrenError: ``max_children`` children already exist.
            StartError: the child failed to start; nothing is kept.
        """
        if self._max_children is not None and len(self._children) >= self._max_children:
            raise MaxChildrenError(
                f"supervisor {self.name} already has {self._max_children} children"
            )
        child = self._new_child(spec)
        error = self._start(child)
        if error is not None:
            raise StartError(spec.id, error) from error
        self._children.append(child)
        assert child.ref is not None
        return child.ref

    def terminate_child(self, ref: pykka.ActorRef[Any]) -> None:
        """Stop the child running as ``ref`` and remove it.

        Runs in the supervisor's thread and blocks it for up to the child's
        shutdown time.

        Raises:
            ChildNotFoundError: ``ref`` is not a current child (it may have
                ended or been replaced by a restart).
        """
        child = self._find_ref(ref)
        if child is None:
            raise ChildNotFoundError(f"{ref} is not a child of supervisor {self.name}")
        self._terminate(child)
        self._remove(child)

    def _keeps_stopped_child(self, child: _Child) -> bool:
        return False
