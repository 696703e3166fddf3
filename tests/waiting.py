"""Bounded waiting for something another thread or process makes true.

The one way the tests wait: poll a predicate until it holds, fail the test
(``AssertionError``, naming what was awaited and for how long) when it does
not within the timeout, and tell the caller how long it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 5.0,
    description: str | Callable[[], str] | None = None,
    *,
    interval: float = 0.01,
) -> float:
    """Poll ``predicate`` until it is truthy; the seconds that took.

    Args:
        predicate: asked at once, then every ``interval`` seconds, and once
            more when ``timeout`` has passed.
        timeout: seconds to wait at most.
        description: what is awaited, for the failure message; a callable
            is called only on failure (e.g. to attach a server's log).
            Defaults to the predicate's name.

    Raises:
        AssertionError: if ``predicate`` was not truthy within ``timeout``.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if predicate():
            return time.monotonic() - started
        now = time.monotonic()
        if now >= deadline:
            break
        time.sleep(min(interval, deadline - now))
    raise AssertionError(f"timed out after {timeout:g} s waiting for {_describe(predicate, description)}")


def _describe(predicate: Callable[[], object], description: str | Callable[[], str] | None) -> str:
    if callable(description):
        return description()
    if description is not None:
        return description
    name = getattr(predicate, "__qualname__", None) or repr(predicate)
    return "a condition" if "<lambda>" in name else name
