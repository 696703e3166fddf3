"""The benchmark's SVG: well-formed, a bar per server per workload, a line per latency run."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from perf.chart import nice_ceiling, render_svg
from perf.report import FASTAPI, SERVICE, ConstantRateRow, WorkloadRow
from tests.perf.fixed_results import SERVERS, WORKLOADS

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on malformed XML
    assert root.tag == f"{SVG}svg"
    return root


def _bars(root: ET.Element, metric: str = "rps") -> list[ET.Element]:
    return [rect for rect in root.iter(f"{SVG}rect")
            if rect.get("class") == "bar" and rect.get("data-metric") == metric]


def test_svg_is_well_formed_with_a_bar_per_server_per_workload(
        workload_rows: list[WorkloadRow], open_loop_rows: list[ConstantRateRow]) -> None:
    root = _parse(render_svg(workload_rows, open_loop_rows, title="a <title> & more"))

    bars = _bars(root)

    assert sorted((b.get("data-workload"), b.get("data-server")) for b in bars) == sorted(
        (workload, server) for workload in WORKLOADS for server in SERVERS)


def test_bar_heights_follow_throughput(workload_rows: list[WorkloadRow]) -> None:
    root = _parse(render_svg(workload_rows, []))

    heights = {b.get("data-server"): float(b.get("height", "0")) for b in _bars(root)
               if b.get("data-workload") == "get_cached"}

    # 3000, 2000 and 1000 rps in the fixture.
    assert heights["service"] == pytest.approx(3 * heights["reference"], rel=0.01)
    assert heights["fastapi"] == pytest.approx(2 * heights["reference"], rel=0.01)


def test_a_server_missing_from_a_workload_has_no_bar_there(
        workload_rows: list[WorkloadRow]) -> None:
    del workload_rows[2].sides[FASTAPI]

    bars = _bars(_parse(render_svg(workload_rows, [])))

    assert len(bars) == len(WORKLOADS) * len(SERVERS) - 1
    assert ("list", FASTAPI) not in {(b.get("data-workload"), b.get("data-server")) for b in bars}


def test_worker_cpu_per_request_has_its_own_bars(workload_rows: list[WorkloadRow]) -> None:
    root = _parse(render_svg(workload_rows, []))

    bars = _bars(root, "cpu_us")

    assert len(bars) == len(WORKLOADS) * len(SERVERS)
    assert all("250 µs of worker CPU per request" in "".join(b.itertext()) for b in bars)


def test_without_cpu_measurements_there_are_no_cpu_bars(
        workload_rows: list[WorkloadRow]) -> None:
    for row in workload_rows:
        for side in row.sides.values():
            side.rounds_cpu_us = []

    assert not _bars(_parse(render_svg(workload_rows, [])), "cpu_us")


def test_each_open_loop_run_is_one_latency_line(
        workload_rows: list[WorkloadRow], open_loop_rows: list[ConstantRateRow]) -> None:
    root = _parse(render_svg(workload_rows, open_loop_rows))

    lines = [(g.get("data-row"), g.get("data-server")) for g in root.iter(f"{SVG}g")
             if g.get("class") == "latency"]

    assert lines == [(row.name, role) for row in open_loop_rows for role in row.sides]
    assert (open_loop_rows[1].name, SERVICE) in lines


def test_without_open_loop_runs_there_is_no_latency_panel(
        workload_rows: list[WorkloadRow]) -> None:
    root = _parse(render_svg(workload_rows, []))

    assert not [g for g in root.iter(f"{SVG}g") if g.get("class") == "latency"]


@pytest.mark.parametrize(("value", "expected"), [
    (0, 1.0), (1, 1.0), (1.5, 2.0), (2134, 2500.0), (3044, 4000.0), (5000, 5000.0),
    (5001, 6000.0), (8001, 10000.0), (0.3, 0.3)])
def test_nice_ceiling_is_a_round_axis_top_of_five_even_ticks(value: float,
                                                             expected: float) -> None:
    assert nice_ceiling(value) == pytest.approx(expected)
