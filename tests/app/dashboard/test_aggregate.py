"""Every worker's snapshot folded into one document."""

from __future__ import annotations

import math
from typing import Any

import pytest

from app.dashboard.aggregate import EVENTS_SHOWN, aggregate

BOUNDS = (0.01, 0.1, math.inf)


def worker(pid: int, *, events: list[dict[str, Any]] | None = None,
           routes: dict[str, list[Any]] | None = None, start: int = 1000) -> dict[str, Any]:
    return {
        "pid": pid, "updated_at": 2000.0, "tree": {"id": "root"},
        "events": events or [],
        "traffic": {"step": 5, "start": start, "points": 4, "routes": routes or {}},
    }


def test_workers_are_listed_by_pid_without_their_raw_events_and_traffic() -> None:
    view = aggregate(worker(7), [worker(3), worker(9)], now=2000.5, chaos=True, bounds=BOUNDS)

    assert [w["pid"] for w in view["workers"]] == [3, 7, 9]
    assert all("events" not in w and "traffic" not in w for w in view["workers"])
    assert (view["answered_by"], view["chaos"], view["generated_at"]) == (7, True, 2000.5)


def test_a_snapshot_of_the_answering_worker_from_the_directory_is_not_counted_twice() -> None:
    view = aggregate(worker(7), [worker(7), worker(3)], now=0, chaos=False, bounds=BOUNDS)

    assert [w["pid"] for w in view["workers"]] == [3, 7]


def test_events_of_every_worker_are_merged_newest_first_with_their_pid() -> None:
    def at(t: float) -> dict[str, Any]:
        return {"at": t, "kind": "start", "supervisor": "db", "child": "w", "reason": None,
                "error": None}

    view = aggregate(worker(1, events=[at(1), at(3)]), [worker(2, events=[at(2)])],
                     now=0, chaos=False, bounds=BOUNDS)

    assert [(e["at"], e["pid"]) for e in view["events"]] == [(3, 1), (2, 2), (1, 1)]


def test_at_most_the_latest_events_are_shown() -> None:
    many = [{"at": float(t), "kind": "start", "supervisor": "db", "child": "w", "reason": None,
             "error": None} for t in range(EVENTS_SHOWN + 20)]

    view = aggregate(worker(1, events=many), [], now=0, chaos=False, bounds=BOUNDS)

    assert len(view["events"]) == EVENTS_SHOWN
    assert view["events"][0]["at"] == EVENTS_SHOWN + 19


def test_traffic_adds_the_workers_slot_by_slot_on_the_answering_workers_axis() -> None:
    own = worker(1, routes={"GET /a": [[1000, [0.01, 2, 0, 0]], [1015, [0.5, 0, 0, 1]]]})
    # Another worker, published a second earlier: its axis starts a slot before.
    other = worker(2, start=995, routes={"GET /a": [[995, [9, 0, 0, 9]], [1000, [0.2, 0, 2, 0]]],
                                         "GET /b": [[1005, [0.004, 1, 0, 0]]]})

    traffic = aggregate(own, [other], now=0, chaos=False, bounds=BOUNDS)["traffic"]

    assert (traffic["step"], traffic["start"], traffic["points"]) == (5, 1000, 4)
    a, b = traffic["routes"]
    assert a["route"] == "GET /a" and a["requests"] == [4, 0, 0, 1]
    assert a["p50_ms"][0] == pytest.approx(10.0)
    assert a["p99_ms"][1] is None
    assert a["p99_ms"][3] == pytest.approx(100.0)
    assert b == {"route": "GET /b", "requests": [0, 1, 0, 0],
                 "p50_ms": [None, pytest.approx(5.0), None, None],
                 "p99_ms": [None, pytest.approx(9.9), None, None]}


def test_without_metrics_there_is_no_traffic() -> None:
    own = worker(1)
    own["traffic"] = None

    assert aggregate(own, [], now=0, chaos=False, bounds=BOUNDS)["traffic"] is None
