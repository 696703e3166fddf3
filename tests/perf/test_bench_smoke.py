"""Smoke test of the benchmark runner: tiny, but the whole pipeline.

Runs ``python -m perf.bench`` for one second per workload on 200 users and
checks that the report names each workload (and the ceiling row) with
nonzero throughput on the service and on each reference (FastAPI's only
when the ``perf`` extra is installed, else with ``--no-fastapi``), that
nothing answered 5xx, and that the picture was drawn beside the report.
It catches a broken wrk script, reference app, report or chart, not
slowness.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from perf.servers import missing_perf_extra

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120
WORKLOADS = ("get_cached", "create")
# Measured after get_cached: the constant-answer server against the references.
ROWS = (*WORKLOADS, "get_cached_ceiling")
WITH_FASTAPI = not missing_perf_extra()
SIDES = ("service", "reference", *(("fastapi",) if WITH_FASTAPI else ()))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("wrk") is None,
                       reason="wrk is not installed (apt-get install wrk)"),
]


def _run_bench(out: Path) -> subprocess.CompletedProcess[str]:
    """The benchmark, bounded: SIGTERM on timeout (it stops its servers), then SIGKILL."""
    argv = [sys.executable, "-m", "perf.bench", "--users", "200", "--duration", "1",
            "--rounds", "1", "--connections", "4", "--only", *WORKLOADS, "--out", str(out),
            *(() if WITH_FASTAPI else ("--no-fastapi",))]
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=45)
        pytest.fail(f"perf.bench did not finish within {TIMEOUT} s")
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(argv, process.returncode, output, "")


def _raw_results(markdown: str) -> dict[str, Any]:
    match = re.search(r"```json\n(.*?)\n```", markdown, re.DOTALL)
    assert match, "the report has no raw results block"
    return dict(json.loads(match.group(1)))


@pytest.mark.timeout(TIMEOUT + 60)
def test_bench_reports_every_server_without_5xx(tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    completed = _run_bench(out)
    assert completed.returncode == 0, completed.stdout[-4000:]
    markdown = out.read_text()
    numbers = r" \| \d+" * len(SIDES)
    for name in ROWS:
        assert re.search(rf"^\| {name}{numbers} \|", markdown, re.MULTILINE), markdown
    assert (tmp_path / "r.svg").read_text().startswith("<svg")
    rows = {row["workload"]: row for row in _raw_results(markdown)["workloads"]}
    assert set(rows) == set(ROWS)
    for name, row in rows.items():
        for side in SIDES:
            median = row[side]["median"]
            assert median["rps"] > 0, f"{name} {side}: no throughput"
            assert median["s5xx"] == 0, f"{name} {side}: {median['s5xx']} responses >= 500"
