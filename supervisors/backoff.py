"""Jittered exponential delays between restarts of one child.

Without a backoff a supervisor restarts a child at once, as OTP does. With a
`Backoff` on its `ChildSpec`, restart attempt ``n`` of a child (counting from
0, reset once the child runs again, see ``reset_after``) waits a random delay
in ``[floor(n), ceiling(n)]``::

    ceiling(n) = min(max_delay, min_delay * factor ** n)
    floor(n)   = max(min_delay, ceiling(n) * (1 - jitter))

like Akka's ``BackoffSupervisor`` and DBConnection's ``rand_exp``: attempts
spread out quickly while, say, a database is down, and the jitter keeps many
children that failed together from retrying in lockstep. The delay is a
`threading.Timer` that sends a message to the supervisor, never a sleep, so
the supervisor keeps serving ``which_children``, ``stop`` and other exits
while it waits.

Interaction with the restart intensity (a deliberate choice): every restart
attempt counts toward the supervisor's ``intensity``/``period`` limit,
including attempts whose ``on_start`` fails, exactly as in OTP, with or
without a backoff. The backoff only spaces the attempts out. So the caller
decides, through ``intensity`` and ``period``, whether a child that keeps
failing makes the supervisor give up:

* ``intensity >= backoff.max_attempts_within(period)`` means a child that
  never starts (the database stays down) is retried forever, at most every
  ``max_delay`` seconds, without the supervisor giving up;
* a smaller ``intensity`` makes the supervisor give up (and escalate) after
  roughly ``intensity + 1`` failed attempts in a row.

`max_attempts_within` is computed from the lower bounds of the delays, so the
first statement holds whatever the jitter draws; it considers the child in
isolation (restarts of sibling children share the same budget).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["Backoff"]

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Backoff:
    """Restart delays for one child: jittered, exponential, bounded.

    Attributes:
        min_delay: delay before the first restart attempt, in seconds; > 0.
        max_delay: cap on any delay, in seconds; ``>= min_delay``.
        factor: growth of the delay ceiling per attempt; ``>= 1``.
        jitter: fraction of the ceiling that is randomised away, in
            ``[0, 1]``; ``0`` gives deterministic delays.
        reset_after: seconds a restarted child must run before its attempt
            counter goes back to 0. ``None`` (default) resets it as soon as
            the child starts successfully (DBConnection's rule: a good
            connection forgets past failures). A number keeps growing the
            delay for a child that starts but crashes again soon after
            (Akka's rule).
    """

    min_delay: float
    max_delay: float
    factor: float = 2.0
    jitter: float = 0.5
    reset_after: float | None = None

    def __post_init__(self) -> None:
        if not self.min_delay > 0:
            raise ValueError(f"min_delay must be > 0, got {self.min_delay!r}")
        if not self.max_delay >= self.min_delay:
            raise ValueError(
                f"max_delay must be >= min_delay, got {self.max_delay!r} < {self.min_delay!r}"
            )
        if not self.factor >= 1:
            raise ValueError(f"factor must be >= 1, got {self.factor!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter!r}")
        if self.reset_after is not None and not self.reset_after >= 0:
            raise ValueError(f"reset_after must be >= 0 or None, got {self.reset_after!r}")

    def ceiling(self, attempt: int) -> float:
        """Return the largest delay attempt number ``attempt`` may wait."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt!r}")
        try:
            grown = self.min_delay * self.factor**attempt
        except OverflowError:
            return self.max_delay
        return min(self.max_delay, grown)

    def floor(self, attempt: int) -> float:
        """Return the smallest delay attempt number ``attempt`` may wait."""
        return max(self.min_delay, self.ceiling(attempt) * (1 - self.jitter))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Draw the delay before restart attempt ``attempt`` (0-based).

        Args:
            attempt: number of restart attempts since the counter was reset.
            rng: source of randomness; the module-level generator if None.
                Tests pass a seeded `random.Random`.

        Returns:
            A delay within ``[floor(attempt), ceiling(attempt)]``, hence
            within ``[min_delay, max_delay]``.
        """
        low, high = self.floor(attempt), self.ceiling(attempt)
        return (rng or random).uniform(low, high)

    def max_attempts_within(self, period: float) -> int:
        """Bound the restart attempts a never-starting child makes per window.

        Delays never shrink from one attempt to the next, so the densest
        window of ``period`` seconds starts at the first attempt. Using the
        smallest possible delays gives an upper bound that holds for any
        jitter.

        Args:
            period: window length in seconds, as the supervisor's ``period``.

        Returns:
            The largest number of attempts that can fall within one window
            (a window includes both of its ends, as `exceeds_intensity`
            does). A supervisor whose ``intensity`` is at least this never
            gives up on this child alone.
        """
        if period < 0:
            raise ValueError(f"period must be >= 0, got {period!r}")
        # Rounding must not lose an attempt that lands on the window's end:
        # an overestimate is the safe side for a bound meant to avoid giving up.
        period += _EPSILON
        attempts, elapsed, attempt = 1, 0.0, 1
        while not self._saturated(attempt):
            elapsed += self.floor(attempt)
            if elapsed > period:
                return attempts
            attempts += 1
            attempt += 1
        # From here on every gap is the same, so count the rest at once
        # instead of looping (min_delay may be tiny and period long).
        gap = self.floor(attempt)
        return attempts + math.floor((period - elapsed) / gap)

    def _saturated(self, attempt: int) -> bool:
        return self.factor == 1 or self.ceiling(attempt) >= self.max_delay
