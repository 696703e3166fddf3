"""The benchmark's markdown: a column per server, ratios of the service, the cache's hits."""

from __future__ import annotations

import json
import re

from perf.report import FASTAPI, ConstantRateRow, WorkloadRow, render_markdown, render_text


def _markdown(rows: list[WorkloadRow], open_loop: list[ConstantRateRow]) -> str:
    return render_markdown(command="python -m perf.bench", env={"CPU": "test"}, rows=rows,
                           open_loop=open_loop, soak=None, notes=["a note"],
                           started="2026-12-01 00:00 UTC", chart="bench.svg")


def test_each_workload_shows_every_servers_rps_and_the_services_ratios(
        workload_rows: list[WorkloadRow], open_loop_rows: list[ConstantRateRow]) -> None:
    markdown = _markdown(workload_rows, open_loop_rows)

    assert ("| workload | service rps | FastAPI rps | Falcon ref rps | service/FastAPI | "
            "service/Falcon ref |") in markdown
    # 3000, 2000 and 1000 rps in the fixture.
    assert re.search(r"^\| get_cached \| 3000 \| 2000 \| 1000 \| 1\.50 \| 3\.00 \| "
                     r"2\.0 / 9\.0 \|", markdown, re.MULTILINE)


def test_a_server_that_did_not_run_a_workload_shows_a_dash(
        workload_rows: list[WorkloadRow]) -> None:
    del workload_rows[2].sides[FASTAPI]

    markdown = _markdown(workload_rows, [])

    assert re.search(r"^\| list \| 3000 \| — \| 1000 \| — \| 3\.00 \|", markdown, re.MULTILINE)


def test_the_services_cache_hits_are_shown_per_workload_and_round(
        workload_rows: list[WorkloadRow]) -> None:
    markdown = _markdown(workload_rows, [])

    assert "| get_uncached | 900 | 2100 | 30.0% | 10.0%, 30.0%, 50.0% |" in markdown
    assert "| get_cached | 15000 | 0 | 100.0% |" in markdown


def test_open_loop_rows_show_dashes_for_servers_not_run(
        workload_rows: list[WorkloadRow], open_loop_rows: list[ConstantRateRow]) -> None:
    markdown = _markdown(workload_rows, open_loop_rows)

    assert ("| get_cached_ceiling open loop @ 50% of own peak | 2000 of 2000 | — | — | "
            "1.5 / 60.0 / 120.0 | — | — |") in markdown


def test_the_report_links_its_picture_and_carries_raw_json(
        workload_rows: list[WorkloadRow], open_loop_rows: list[ConstantRateRow]) -> None:
    markdown = _markdown(workload_rows, open_loop_rows)

    assert "](bench.svg)" in markdown
    block = re.search(r"```json\n(.*?)\n```", markdown, re.DOTALL)
    assert block is not None, "the report carries no raw JSON block"
    raw = json.loads(block.group(1))
    first = raw["workloads"][0]
    assert {"service", "fastapi", "reference"} <= set(first)
    assert first["service_cache"]["hit_ratio"] == 1.0
    assert first["service"]["rounds_cpu_us"] == [250.0, 240.0, 260.0]


def test_the_terminal_table_has_the_same_columns(
        workload_rows: list[WorkloadRow], open_loop_rows: list[ConstantRateRow]) -> None:
    text = render_text(workload_rows, open_loop_rows)

    assert "service/FastAPI" in text.splitlines()[0]
    assert "get_cached_ceiling open loop" in text
