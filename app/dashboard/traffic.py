"""Recent traffic from the service's own histograms, second by second.

The request middleware already counts every request into
``usermgmt_http_request_duration_seconds`` (per thread, folded every
second: see :class:`app.metrics.Tally`), and the worker pool every checkout
wait into ``usermgmt_db_checkout_wait_seconds``. A :class:`HistogramWindow`
reads those running totals on each tick and keeps what changed, per wall
second, for a few minutes: request rates and latency quantiles for the
dashboard cost nothing on the request path.

Points are aligned on wall-clock multiples of their step, so the windows
of different worker processes add up slot by slot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Counts",
    "HistogramWindow",
    "add_counts",
    "histogram_totals",
    "quantile",
]

Counts = list[float]
"""``[sum of observed values, count in bucket 0, count in bucket 1, ...]``."""

Reading = dict[str, Counts]
"""Running totals per series (e.g. ``"GET /api/users"``) at one moment."""


def add_counts(into: Counts, other: Sequence[float]) -> Counts:
    """Add ``other`` to ``into`` slot by slot (in place); returns ``into``."""
    if not into:
        into.extend([0.0] * len(other))
    for i, value in enumerate(other):
        into[i] += value
    return into


def quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The ``q``-quantile of a histogram, as PromQL's ``histogram_quantile``.

    Linear interpolation inside the bucket holding the rank; the first
    bucket starts at 0; a rank in the ``+Inf`` bucket answers the highest
    finite bound.

    Args:
        q: in ``[0, 1]``.
        bounds: upper bounds of the buckets, the last one ``+Inf``.
        counts: observations per bucket (not cumulative).

    Returns:
        None when nothing was observed.
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    below = 0.0
    for i, (bound, count) in enumerate(zip(bounds, counts, strict=True)):
        if count and below + count >= rank:
            if math.isinf(bound):
                return bounds[i - 1] if i > 0 else 0.0
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bound - lower) * (rank - below) / count
        below += count
    return bounds[-2] if len(bounds) > 1 else None


@dataclass
class HistogramWindow:
    """Per-second changes of some running histogram totals, for a while.

    Args:
        read: returns the running totals now (see :func:`histogram_totals`).
        keep: seconds of history kept.
    """

    read: Callable[[], Reading]
    keep: int = 300
    _last: Reading | None = None
    _seconds: dict[int, Reading] = field(default_factory=dict)

    def tick(self, now: float) -> None:
        """Read the totals and add what changed since the last tick to second ``now``.

        The first tick only sets the baseline. Totals that went down (the
        series were reset) start a new baseline for that series.
        """
        reading = self.read()
        second = int(now)
        if self._last is not None:
            changes = self._seconds.setdefault(second, {})
            for key, totals in reading.items():
                before = self._last.get(key)
                if before is None or len(before) != len(totals):
                    before = [0.0] * len(totals)
                delta = [now_ - then for now_, then in zip(totals, before, strict=True)]
                if any(d < 0 for d in delta):
                    continue
                if any(delta[1:]):
                    add_counts(changes.setdefault(key, []), delta)
            if not changes:
                del self._seconds[second]
        self._last = reading
        for old in [s for s in self._seconds if s <= second - self.keep]:
            del self._seconds[old]

    def total(self, start: int, end: int) -> dict[str, Counts]:
        """Changes per series over the whole seconds ``[start, end)``."""
        out: dict[str, Counts] = {}
        for second, changes in self._seconds.items():
            if start <= second < end:
                for key, counts in changes.items():
                    add_counts(out.setdefault(key, []), counts)
        return out

    def points(self, now: float, step: int, count: int) -> tuple[int, dict[str, list[Any]]]:
        """The last ``count`` complete slots of ``step`` seconds before ``now``.

        Returns:
            ``(start of the first slot, {series: [[slot start, counts], ...]})``,
            listing only the slots in which a series changed.
        """
        end = int(now) // step * step
        start = end - step * count
        series: dict[str, dict[int, Counts]] = {}
        for second, changes in self._seconds.items():
            if start <= second < end:
                slot = second // step * step
                for key, counts in changes.items():
                    add_counts(series.setdefault(key, {}).setdefault(slot, []), counts)
        return start, {key: [[slot, counts] for slot, counts in sorted(slots.items())]
                       for key, slots in series.items()}


def histogram_totals(histogram: Any, label: Callable[[tuple[str, ...]], str]) -> Reading:
    """The running totals of every child of a prometheus_client histogram.

    Reads this process's values (in multiprocess mode as well), i.e. what
    :meth:`app.metrics.Tally.flush` folded in so far: flush first.

    Args:
        histogram: a ``Histogram``, labelled or not.
        label: names a child after its label values (``()`` when unlabelled).
    """
    if histogram._labelnames:
        children: Iterable[tuple[tuple[str, ...], Any]] = list(histogram._metrics.items())
    else:
        children = [((), histogram)]
    reading: Reading = {}
    for values, child in children:
        counts = [child._sum.get()]
        counts.extend(bucket.get() for bucket in child._buckets)
        key = label(values)
        add_counts(reading.setdefault(key, []), counts)
    return reading
