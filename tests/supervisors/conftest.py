"""Isolation for the supervisor tests: no actor outlives its test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pykka
import pytest

from supervisors import SupervisorBase


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    # Supervisors first, oldest (roots) first: a supervisor stops its own
    # subtree in order, whereas stopping its children one by one would only
    # make it restart them.
    for ref in pykka.ActorRegistry.get_all():
        if issubclass(ref.actor_class, SupervisorBase):
            with contextlib.suppress(pykka.Timeout):
                ref.stop(timeout=5)
    with contextlib.suppress(pykka.Timeout):
        pykka.ActorRegistry.stop_all(timeout=5)
