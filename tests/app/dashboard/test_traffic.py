"""Histogram windows and quantiles: traffic history without request-path work."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram

from app.dashboard.traffic import HistogramWindow, histogram_totals, quantile

BOUNDS = (0.01, 0.1, 1.0, math.inf)


def test_quantile_interpolates_inside_the_bucket_holding_the_rank() -> None:
    # 10 observations: 5 in (0, 0.01], 5 in (0.01, 0.1]
    assert quantile(0.5, BOUNDS, [5, 5, 0, 0]) == pytest.approx(0.01)
    assert quantile(0.75, BOUNDS, [5, 5, 0, 0]) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile(0.1, BOUNDS, [5, 5, 0, 0]) == pytest.approx(0.002)


def test_quantile_of_nothing_is_none_and_the_inf_bucket_answers_the_highest_bound() -> None:
    assert quantile(0.99, BOUNDS, [0, 0, 0, 0]) is None
    assert quantile(0.99, BOUNDS, [0, 0, 1, 9]) == 1.0


class Totals:
    """Running totals that a test moves by hand."""

    def __init__(self) -> None:
        self.now: dict[str, list[float]] = {}

    def add(self, key: str, value: float, bucket: int) -> None:
        counts = self.now.setdefault(key, [0.0] * (1 + len(BOUNDS)))
        counts[0] += value
        counts[1 + bucket] += 1

    def read(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.now.items()}


def test_a_window_keeps_what_changed_per_second_after_its_baseline() -> None:
    totals = Totals()
    totals.add("GET /a", 0.005, 0)
    window = HistogramWindow(totals.read)
    window.tick(1000.2)  # baseline: what came before is not counted
    totals.add("GET /a", 0.05, 1)
    totals.add("GET /a", 0.05, 1)
    window.tick(1001.1)
    totals.add("GET /b", 0.5, 2)
    window.tick(1002.9)

    assert window.total(1001, 1002) == {"GET /a": [pytest.approx(0.1), 0, 2, 0, 0]}
    assert set(window.total(1000, 1003)) == {"GET /a", "GET /b"}


def test_points_are_whole_slots_aligned_on_the_wall_clock() -> None:
    totals = Totals()
    window = HistogramWindow(totals.read)
    window.tick(1000.0)
    for second in range(1001, 1013):
        totals.add("GET /a", 0.005, 0)
        window.tick(second + 0.5)

    start, series = window.points(1013.5, step=5, count=2)

    # Slots [1000, 1005) and [1005, 1010); the slot of 1010-1012 is not complete.
    assert start == 1000
    assert [(slot, counts[1]) for slot, counts in series["GET /a"]] == [(1000, 4), (1005, 5)]


def test_a_series_that_went_down_is_a_new_baseline_not_negative_traffic() -> None:
    totals = Totals()
    totals.add("GET /a", 1.0, 2)
    window = HistogramWindow(totals.read)
    window.tick(1000.0)
    totals.now["GET /a"] = [0.0] * 5
    window.tick(1001.0)
    totals.add("GET /a", 0.005, 0)
    window.tick(1002.0)

    assert window.total(0, 2000) == {"GET /a": [pytest.approx(0.005), 1, 0, 0, 0]}


def test_history_older_than_keep_is_forgotten() -> None:
    totals = Totals()
    window = HistogramWindow(totals.read, keep=10)
    window.tick(1000.0)
    totals.add("GET /a", 0.005, 0)
    window.tick(1001.0)
    window.tick(1020.0)

    assert window.total(0, 2000) == {}


def test_histogram_totals_reads_every_child_of_a_real_histogram() -> None:
    histogram = Histogram("t_seconds", "t", ["method", "route"], buckets=(0.01, 0.1),
                          registry=CollectorRegistry())
    histogram.labels("GET", "/a").observe(0.005)
    histogram.labels("GET", "/a").observe(0.05)
    histogram.labels("POST", "/a").observe(5.0)

    totals = histogram_totals(histogram, " ".join)

    assert totals == {"GET /a": [pytest.approx(0.055), 1, 1, 0],
                      "POST /a": [pytest.approx(5.0), 0, 0, 1]}
