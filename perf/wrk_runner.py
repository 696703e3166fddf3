"""Run wrk with one of the Lua scripts in ``perf/wrk/`` and parse its result line.

The scripts' ``done()`` prints ``PERF_RESULT {json}`` (see
``perf/wrk/common.lua``): requests, duration, latency percentiles in
microseconds, responses per status class and socket errors. Parsing that
line rather than wrk's human-readable report keeps the numbers exact and
the parser trivial.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["WRK_DIR", "WrkError", "WrkResult", "median_result", "parse_wrk_output", "run_wrk",
           "wrk_version"]

WRK_DIR = Path(__file__).resolve().parent / "wrk"
RESULT_PREFIX = "PERF_RESULT "
# A request slower than this is a timeout error in wrk and is missing
# from its latency histogram; generous, so slow answers are measured.
REQUEST_TIMEOUT = "10s"


class WrkError(RuntimeError):
    """wrk failed or printed no result line."""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run (or the median of several): throughput, latency (ms), statuses."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    s2xx: int
    s3xx: int
    s4xx: int
    s5xx: int
    socket_errors: int

    def to_json(self) -> dict[str, float | int]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def parse_wrk_output(output: str) -> WrkResult:
    """The :class:`WrkResult` of wrk's stdout (the script's ``PERF_RESULT`` line)."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            raw = json.loads(line[len(RESULT_PREFIX):])
            break
    else:
        raise WrkError(f"no {RESULT_PREFIX.strip()} line in wrk output:\n{output[-2000:]}")
    seconds = raw["duration_us"] / 1e6
    return WrkResult(
        requests=raw["requests"],
        seconds=seconds,
        rps=raw["requests"] / seconds if seconds > 0 else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        p999_ms=raw["p999_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        s2xx=raw["s2xx"],
        s3xx=raw["s3xx"],
        s4xx=raw["s4xx"],
        s5xx=raw["s5xx"],
        socket_errors=(raw["connect_errors"] + raw["read_errors"] + raw["write_errors"]
                       + raw["timeouts"]),
    )


def run_wrk(url: str, script: str, duration: float, connections: int, threads: int,
            env: Mapping[str, str]) -> WrkResult:
    """Run ``perf/wrk/<script>.lua`` against ``url`` for ``duration`` seconds.

    ``env`` configures the script (``PERF_USERS``, ``PERF_RUN_PREFIX``, ...).
    wrk takes whole seconds, so the duration is rounded up. Bounded: wrk is
    killed if it overruns its duration by a minute.
    """
    seconds = max(1, math.ceil(duration))
    argv = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections),
            "-d", f"{seconds}s", "--timeout", REQUEST_TIMEOUT,
            "-s", str(WRK_DIR / f"{script}.lua"), url]
    try:
        completed = subprocess.run(argv, env={**os.environ, **env}, capture_output=True,
                                   text=True, timeout=seconds + 60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {seconds + 60} s") from exc
    if completed.returncode != 0:
        raise WrkError(f"wrk exited with {completed.returncode}: {completed.stderr[-2000:]}")
    return parse_wrk_output(completed.stdout)


def median_result(results: Sequence[WrkResult]) -> WrkResult:
    """Per-field median of rounds for rates and latencies; counts are summed."""
    def median(name: str) -> float:
        return float(statistics.median(getattr(r, name) for r in results))

    def total(name: str) -> int:
        return sum(int(getattr(r, name)) for r in results)

    return WrkResult(
        requests=total("requests"), seconds=sum(r.seconds for r in results),
        rps=median("rps"), p50_ms=median("p50_ms"), p99_ms=median("p99_ms"),
        p999_ms=median("p999_ms"), max_ms=max(r.max_ms for r in results),
        s2xx=total("s2xx"), s3xx=total("s3xx"), s4xx=total("s4xx"), s5xx=total("s5xx"),
        socket_errors=total("socket_errors"),
    )


def wrk_version() -> str:
    """wrk's version line, or "not installed"."""
    if shutil.which("wrk") is None:
        return "not installed"
    completed = subprocess.run(["wrk", "--version"], capture_output=True, text=True,
                               timeout=10, check=False)
    first_line = (completed.stdout or completed.stderr).splitlines()[:1]
    return first_line[0].split(" Copyright")[0].strip() if first_line else "unknown"
