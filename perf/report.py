"""What the benchmark reports: the environment, the tables, the markdown file.

A result is only comparable with another taken on the same machine, code
and settings, so every report starts with the exact command line, CPU,
library and PostgreSQL versions and the commit. A fenced ``json`` block
at the end carries every round's raw numbers for scripts (and the smoke
test) to read.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from perf.constant_rate import ConstantRateResult
from perf.wrk_runner import WrkResult

__all__ = [
    "ConstantRateRow",
    "SideResult",
    "SoakResult",
    "WorkloadRow",
    "environment",
    "render_markdown",
    "render_text",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("falcon", "gunicorn", "pykka", "psycopg", "psycopg-pool")
MIB = 1024 * 1024


@dataclass
class SideResult:
    """One server's rounds of one workload, with its worker RSS around them."""

    rounds: list[WrkResult]
    median: WrkResult
    rss_before: int
    rss_after: int
    worker_restarts: int
    rounds_other_cpu_cores: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median.to_json(), "rounds": [r.to_json() for r in self.rounds],
                "rounds_other_cpu_cores": [round(c, 2) for c in self.rounds_other_cpu_cores],
                "rss_before_mib": round(self.rss_before / MIB, 1),
                "rss_after_mib": round(self.rss_after / MIB, 1),
                "worker_restarts": self.worker_restarts}


@dataclass
class WorkloadRow:
    """A workload measured on the service and on the reference."""

    name: str
    description: str
    service: SideResult
    reference: SideResult
    other_cpu_cores: float = 0.0  # used by processes outside the benchmark meanwhile

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.name, "description": self.description,
                "service": self.service.to_json(), "reference": self.reference.to_json(),
                "other_cpu_cores": round(self.other_cpu_cores, 2)}


@dataclass
class ConstantRateRow:
    """Open-loop latency of cached GETs on both servers."""

    name: str
    service: ConstantRateResult
    reference: ConstantRateResult
    other_cpu_cores: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "service": self.service.to_json(),
                "reference": self.reference.to_json(),
                "other_cpu_cores": round(self.other_cpu_cores, 2)}


@dataclass
class SoakResult:
    """RSS of the service's workers around N cached GETs."""

    result: WrkResult
    rss_before: int
    rss_peak: int
    rss_after: int
    worker_restarts: int
    rss_samples_mib: list[float] = field(default_factory=list)
    other_cpu_cores: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"wrk": self.result.to_json(), "other_cpu_cores": round(self.other_cpu_cores, 2),
                "rss_before_mib": round(self.rss_before / MIB, 1),
                "rss_peak_mib": round(self.rss_peak / MIB, 1),
                "rss_after_mib": round(self.rss_after / MIB, 1),
                "worker_restarts": self.worker_restarts, "rss_samples_mib": self.rss_samples_mib}


# -- environment ----------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit_from_git_dir(git_dir: Path) -> str | None:
    """HEAD's commit read from the files (no git process needed)."""
    head = (git_dir / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head[:7]
    ref = head.removeprefix("ref: ")
    loose = git_dir / ref
    if loose.exists():
        return loose.read_text().strip()[:7]
    packed = git_dir / "packed-refs"
    if packed.exists():
        for line in packed.read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split()[0][:7]
    return None


def git_commit() -> str:
    """Short commit of HEAD ("unknown" outside a repository)."""
    try:
        commit = _commit_from_git_dir(PROJECT_ROOT / ".git")
        if commit:
            return commit
    except OSError:
        pass
    try:
        completed = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                                   capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return completed.stdout.strip() or "unknown"


def environment(settings: Mapping[str, str]) -> dict[str, str]:
    """Machine, versions and run settings, in report order."""
    info = {
        "CPU cores (os.cpu_count)": str(os.cpu_count()),
        "CPU model": _cpu_model(),
        "Python": platform.python_version(),
        **{name: _package_version(name) for name in PACKAGES},
        "git commit (HEAD; the working tree may differ)": git_commit(),
    }
    info.update(settings)
    return info


# -- rendering ------------------------------------------------------------

HEADER = ("workload", "service rps", "reference rps", "ratio",
          "service p50/p99/p99.9 ms", "reference p50/p99/p99.9 ms",
          "errors svc · ref (5xx/4xx/sock)")


def _latencies(p50: float, p99: float, p999: float) -> str:
    return f"{p50:.1f} / {p99:.1f} / {p999:.1f}"


def _errors(s5xx: int, s4xx: int, sock: int) -> str:
    return f"{s5xx}/{s4xx}/{sock}"


def _ratio(service: float, reference: float) -> str:
    return f"{service / reference:.2f}" if reference > 0 else "n/a"


def _workload_cells(row: WorkloadRow) -> tuple[str, ...]:
    s, r = row.service.median, row.reference.median
    return (row.name, f"{s.rps:.0f}", f"{r.rps:.0f}", _ratio(s.rps, r.rps),
            _latencies(s.p50_ms, s.p99_ms, s.p999_ms), _latencies(r.p50_ms, r.p99_ms, r.p999_ms),
            f"{_errors(s.s5xx, s.s4xx, s.socket_errors)} · "
            f"{_errors(r.s5xx, r.s4xx, r.socket_errors)}")


def _constant_rate_cells(row: ConstantRateRow) -> tuple[str, ...]:
    s, r = row.service, row.reference
    return (row.name, f"{s.achieved_rps:.0f} of {s.target_rps:.0f}",
            f"{r.achieved_rps:.0f} of {r.target_rps:.0f}", "",
            _latencies(s.p50_ms, s.p99_ms, s.p999_ms), _latencies(r.p50_ms, r.p99_ms, r.p999_ms),
            f"{_errors(s.s5xx, s.s4xx, s.socket_errors)} · "
            f"{_errors(r.s5xx, r.s4xx, r.socket_errors)}")


def _rss_cells(row: WorkloadRow) -> tuple[str, ...]:
    s, r = row.service, row.reference
    return (row.name, f"{s.rss_before / MIB:.1f} → {s.rss_after / MIB:.1f}",
            f"{r.rss_before / MIB:.1f} → {r.rss_after / MIB:.1f}",
            f"{s.worker_restarts} · {r.worker_restarts}", f"{row.other_cpu_cores:.2f}")


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table followed by the blank line that ends it."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False))
    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def render_text(rows: Sequence[WorkloadRow], open_loop: Sequence[ConstantRateRow]) -> str:
    """The results table for the terminal."""
    cells = [_workload_cells(row) for row in rows] + [_constant_rate_cells(r) for r in open_loop]
    return "\n".join(_text_table(HEADER, cells))


def _soak_lines(soak: SoakResult) -> list[str]:
    r = soak.result
    return [
        "## Soak (service, cached GET)", "",
        f"{r.requests} requests in {r.seconds:.0f} s (median {r.rps:.0f} rps over runs of up "
        f"to 30 s), p50/p99/p99.9 "
        f"{_latencies(r.p50_ms, r.p99_ms, r.p999_ms)} ms, 5xx/4xx/socket errors "
        f"{_errors(r.s5xx, r.s4xx, r.socket_errors)}; worker restarts {soak.worker_restarts}; "
        f"other processes used {soak.other_cpu_cores:.2f} cores meanwhile.",
        "",
        f"Worker RSS (sum over workers): before {soak.rss_before / MIB:.1f} MiB, peak "
        f"{soak.rss_peak / MIB:.1f} MiB, after {soak.rss_after / MIB:.1f} MiB.",
        "", f"RSS after each wrk run of the soak (MiB): {soak.rss_samples_mib}", "",
    ]


def render_markdown(*, command: str, env: Mapping[str, str], rows: Sequence[WorkloadRow],
                    open_loop: Sequence[ConstantRateRow], soak: SoakResult | None,
                    notes: Sequence[str], started: str) -> str:
    """The whole report as markdown."""
    lines = [f"# usermgmt vs plain reference — wrk benchmark ({started})", "",
             f"command: `{command}`", ""]
    lines += _markdown_table(("setting", "value"), list(env.items()))
    lines += ["## Throughput and latency (closed loop, wrk; median of rounds)", ""]
    lines += _markdown_table(HEADER, [_workload_cells(row) for row in rows])
    if open_loop:
        lines += ["## Open-loop latency of cached GETs (constant rate, perf/constant_rate.py)", "",
                  "rps columns: achieved of target; latency measured from each request's "
                  "scheduled send time (no coordinated omission).", ""]
        lines += _markdown_table(HEADER, [_constant_rate_cells(r) for r in open_loop])
        generator = (f"{r.service.client_cpu_cores:.2f} / {r.reference.client_cpu_cores:.2f}"
                     for r in open_loop)
        lines += ["The Python generator itself used " + ", ".join(generator)
                  + " cores (service / reference runs) of this machine's cores; other processes "
                  + ", ".join(f"{r.other_cpu_cores:.2f}" for r in open_loop) + " cores.", ""]
    lines += ["## Worker RSS around each workload, and CPU taken by other processes", "",
              "RSS in MiB, summed over the gunicorn workers. Other CPU: cores used on average "
              "by processes that are not part of the benchmark while it ran (see "
              "perf/cpu_noise.py); above ~0.1 the numbers of that workload are disturbed.", ""]
    lines += _markdown_table(("workload", "service before → after", "reference before → after",
                              "worker restarts svc · ref", "other CPU (cores)"),
                             [_rss_cells(row) for row in rows])
    if soak is not None:
        lines += _soak_lines(soak)
    lines += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    raw = {"workloads": [row.to_json() for row in rows],
           "open_loop": [row.to_json() for row in open_loop],
           "soak": soak.to_json() if soak else None}
    lines += ["## Raw results", "", "```json", _raw_json(raw), "```", ""]
    return "\n".join(lines)


def _raw_json(raw: Mapping[str, Any]) -> str:
    """Valid JSON with one line per workload: readable in a diff, easy to parse."""
    parts = []
    for key, value in raw.items():
        if isinstance(value, list):
            items = ",\n".join(f"  {json.dumps(item)}" for item in value)
            body = f"[\n{items}\n ]" if value else "[]"
            parts.append(f"{json.dumps(key)}: {body}")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(parts) + "\n}"
