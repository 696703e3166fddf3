"""`DynamicSupervisor`: children started on demand, addressed by actor ref.

Elixir's ``DynamicSupervisor`` (OTP's ``simple_one_for_one``): no initial
children, ``one_for_one`` restarts, and the number of children can be
capped. Children are addressed by their current actor ref; ids in their specs
are only labels for logs and need not be unique.
"""

from __future__ import annotations

from typing import Any, Unpack

import pykka

from supervisors.base import SupervisorBase, SupervisorOptions, _Child
from supervisors.errors import ChildNotFoundError, MaxChildrenError
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
        **options: Unpack[SupervisorOptions],
    ) -> None:
        """Create the supervisor; runs in the thread calling ``start``.

        Args:
            max_children: most children at once (running or restarting);
                unlimited if ``None``.
            **options: intensity, period, name, on_give_up, event_hook
                (see `SupervisorOptions`).
        """
        super().__init__(strategy=Strategy.ONE_FOR_ONE, **options)
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
        child = self._start_new(spec)
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
