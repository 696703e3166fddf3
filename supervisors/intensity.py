"""The maximum restart intensity rule, as a pure function.

OTP's supervisor allows at most ``intensity`` restarts within any ``period``
seconds; one more restart and the supervisor gives up: it stops all its
children and exits, leaving the problem to its own supervisor. This module
holds only that arithmetic so it can be tested without threads or clocks.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["exceeds_intensity"]


def exceeds_intensity(
    restarts: Sequence[float],
    now: float,
    intensity: int,
    period: float,
) -> tuple[list[float], bool]:
    """Record a restart at ``now`` and tell whether the intensity is exceeded.

    Mirrors ``supervisor:add_restart/3`` in OTP: timestamps older than
    ``now - period`` are forgotten (a timestamp exactly ``period`` seconds
    old still counts), ``now`` is added, and the limit is exceeded when more
    than ``intensity`` timestamps remain. With ``intensity=0`` the very first
    restart exceeds it.

    Args:
        restarts: timestamps of earlier restarts, oldest first, in the same
            monotonic clock as ``now``. Not modified.
        now: timestamp of the restart being recorded.
        intensity: restarts allowed within ``period``; must be ``>= 0``.
        period: length of the sliding window in seconds; must be ``> 0``.

    Returns:
        The timestamps to keep for the next call (oldest first, ending with
        ``now``) and ``True`` if this restart exceeds the intensity.

    Raises:
        ValueError: if ``intensity`` is negative or ``period`` not positive.
    """
    if intensity < 0:
        raise ValueError(f"intensity must be >= 0, got {intensity!r}")
    if period <= 0:
        raise ValueError(f"period must be > 0, got {period!r}")
    threshold = now - period
    kept = [t for t in restarts if t >= threshold]
    kept.append(now)
    return kept, len(kept) > intensity
