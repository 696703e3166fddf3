"""Every worker's snapshot folded into what ``GET /api/dashboard`` answers.

Pure functions of the snapshots: the answering worker passes its own (from
memory) and the others' (from the shared directory, dead and stale ones
already left out by :class:`app.dashboard.board.SnapshotBoard`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.dashboard.traffic import Counts, add_counts, quantile

__all__ = ["EVENTS_SHOWN", "ROUTES_SHOWN", "aggregate"]

EVENTS_SHOWN = 100
ROUTES_SHOWN = 12


def aggregate(own: dict[str, Any], others: Sequence[dict[str, Any]], *, now: float,
              chaos: bool, bounds: Sequence[float]) -> dict[str, Any]:
    """The dashboard's document.

    Args:
        own: the answering worker's snapshot.
        others: the other live workers' snapshots.
        now: Unix time of the answer.
        chaos: whether kill buttons may be offered.
        bounds: bucket bounds of the request-duration histograms (seconds).
    """
    snapshots = sorted([own, *(s for s in others if s.get("pid") != own["pid"])],
                       key=lambda s: int(s["pid"]))
    events = [{**event, "pid": s["pid"]} for s in snapshots for event in s.get("events", ())]
    events.sort(key=lambda e: e["at"], reverse=True)
    return {
        "generated_at": now,
        "answered_by": own["pid"],
        "chaos": chaos,
        "workers": [{k: v for k, v in s.items() if k not in ("events", "traffic")}
                    for s in snapshots],
        "events": events[:EVENTS_SHOWN],
        "traffic": _traffic(own.get("traffic"), [s.get("traffic") for s in snapshots], bounds),
    }


def _traffic(axis: dict[str, Any] | None, windows: list[dict[str, Any] | None],
             bounds: Sequence[float]) -> dict[str, Any] | None:
    """Per-route request counts and latency quantiles, summed over the workers.

    The answering worker's window sets the time axis; the others' points
    (a second older at most) are added into the slots they fall in.
    """
    if axis is None:
        return None
    step, start, points = int(axis["step"]), int(axis["start"]), int(axis["points"])
    slots: dict[str, list[Counts]] = {}
    for window in windows:
        if window is None:
            continue
        for route, route_points in window["routes"].items():
            series = slots.setdefault(route, [[] for _ in range(points)])
            for slot, counts in route_points:
                index = (int(slot) - start) // step
                if 0 <= index < points:
                    add_counts(series[index], counts)
    routes: list[dict[str, Any]] = []
    for route, series in slots.items():
        requests = [int(sum(c[1:])) if c else 0 for c in series]
        routes.append({
            "route": route,
            "requests": requests,
            "p50_ms": [_quantile_ms(0.5, bounds, c) for c in series],
            "p99_ms": [_quantile_ms(0.99, bounds, c) for c in series],
        })
    routes.sort(key=lambda r: (-sum(r["requests"]), str(r["route"])))
    return {"step": step, "start": start, "points": points, "routes": routes[:ROUTES_SHOWN]}


def _quantile_ms(q: float, bounds: Sequence[float], counts: Counts) -> float | None:
    if not counts:
        return None
    value = quantile(q, bounds, counts[1:])
    return None if value is None else round(value * 1000, 3)
