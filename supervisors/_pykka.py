"""The pykka internals this package relies on, named in one place.

pykka has no public hook for what supervision needs, so two modules reach
inside it:

- :mod:`supervisors.monitor` runs a supervised actor's loop itself (to tell
  a crash from a clean stop and report it to the supervisor), through the
  private methods listed in :data:`ACTOR_LOOP`;
- :mod:`supervisors.aio` puts a message with its own reply future into an
  actor's inbox, as :meth:`pykka.ActorRef.ask` does, with :data:`Envelope`.

``tests/supervisors/test_pykka_contract.py`` checks every name here against
the installed pykka, and setup.cfg bounds pykka's version to the releases
that were checked; a change in pykka fails those tests, not a supervisor at
run time.
"""

from __future__ import annotations

from pykka._envelope import Envelope

__all__ = ["ACTOR_LOOP", "TESTED_PYKKA", "Envelope"]

ACTOR_LOOP = (
    "_start_actor_loop",
    "_actor_loop_setup",
    "_actor_loop_running",
    "_actor_loop_teardown",
    "_handle_receive",
    "_handle_failure",
    "_stop",
    "_create_actor_inbox",
    "_create_future",
)
"""Private methods of ``pykka.Actor`` that :mod:`supervisors.monitor` calls or overrides."""

TESTED_PYKKA = ((4, 1), (4, 6))
"""The pykka versions these internals were checked against: from, up to (excluded)."""
