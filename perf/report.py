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
import statistics
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from perf.constant_rate import ConstantRateResult
from perf.wrk_runner import WrkResult

__all__ = [
    "FASTAPI",
    "REFERENCE",
    "SERVICE",
    "SIDES",
    "SIDE_LABELS",
    "CacheLookups",
    "ConstantRateRow",
    "SideResult",
    "SoakResult",
    "WorkloadRow",
    "environment",
    "render_markdown",
    "render_text",
    "roles_of",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("falcon", "gunicorn", "pykka", "psycopg", "psycopg-pool", "fastapi", "starlette",
            "uvicorn", "uvicorn-worker", "uvloop", "httptools", "asyncpg", "orjson")
MIB = 1024 * 1024

# The servers a workload runs on, in the order of the report's columns: the
# service first, every ratio is the service's over another server's.
SERVICE = "service"
FASTAPI = "fastapi"
REFERENCE = "reference"
SIDES = (SERVICE, FASTAPI, REFERENCE)
SIDE_LABELS = {SERVICE: "service", FASTAPI: "FastAPI", REFERENCE: "Falcon ref"}
MISSING = "—"


@dataclass
class SideResult:
    """One server's rounds of one workload, with its worker RSS around them."""

    rounds: list[WrkResult]
    median: WrkResult
    rss_before: int
    rss_after: int
    worker_restarts: int
    rounds_other_cpu_cores: list[float] = field(default_factory=list)
    # CPU time (user + system) of the worker processes per request, µs, per round.
    rounds_cpu_us: list[float] = field(default_factory=list)

    @property
    def cpu_us(self) -> float | None:
        """Median worker CPU per request over the rounds (None: not measured)."""
        return statistics.median(self.rounds_cpu_us) if self.rounds_cpu_us else None

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median.to_json(), "rounds": [r.to_json() for r in self.rounds],
                "rounds_other_cpu_cores": [round(c, 2) for c in self.rounds_other_cpu_cores],
                "rounds_cpu_us": [round(c, 1) for c in self.rounds_cpu_us],
                "rss_before_mib": round(self.rss_before / MIB, 1),
                "rss_after_mib": round(self.rss_after / MIB, 1),
                "worker_restarts": self.worker_restarts}


@dataclass
class CacheLookups:
    """The service's users-cache lookups during its runs of a workload, per round."""

    hits: list[int] = field(default_factory=list)
    misses: list[int] = field(default_factory=list)

    @staticmethod
    def ratio(hits: int, misses: int) -> float | None:
        return hits / (hits + misses) if hits + misses else None

    @property
    def hit_ratio(self) -> float | None:
        """Hits over all lookups of every round (None: no lookups)."""
        return self.ratio(sum(self.hits), sum(self.misses))

    def to_json(self) -> dict[str, Any]:
        ratio = self.hit_ratio
        return {"hits": self.hits, "misses": self.misses,
                "hit_ratio": None if ratio is None else round(ratio, 4)}


@dataclass
class WorkloadRow:
    """A workload measured on each server (``sides`` by role, in ``SIDES`` order)."""

    name: str
    description: str
    sides: dict[str, SideResult]
    other_cpu_cores: float = 0.0  # used by processes outside the benchmark meanwhile
    cache: CacheLookups | None = None  # the service's, when it exposes them

    @property
    def service(self) -> SideResult:
        return self.sides[SERVICE]

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.name, "description": self.description,
                **{role: side.to_json() for role, side in self.sides.items()},
                "service_cache": self.cache.to_json() if self.cache else None,
                "other_cpu_cores": round(self.other_cpu_cores, 2)}


@dataclass
class ConstantRateRow:
    """Open-loop latency of cached GETs on each server run (``sides`` by role)."""

    name: str
    sides: dict[str, ConstantRateResult]
    other_cpu_cores: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **{role: r.to_json() for role, r in self.sides.items()},
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


def roles_of(rows: Sequence[WorkloadRow | ConstantRateRow]) -> list[str]:
    """The servers that appear in any row, in column order."""
    present = {role for row in rows for role in row.sides}
    return [role for role in SIDES if role in present]


def _labels(roles: Sequence[str], suffix: str = "") -> list[str]:
    return [f"{SIDE_LABELS[role]}{suffix}" for role in roles]


def _others(roles: Sequence[str]) -> list[str]:
    return [role for role in roles if role != SERVICE]


def _latencies(*values: float) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def _errors(s5xx: int, s4xx: int, sock: int) -> str:
    return f"{s5xx}/{s4xx}/{sock}"


def _ratio(service: float, other: float) -> str:
    return f"{service / other:.2f}" if other > 0 else "n/a"


def _each(sides: Mapping[str, Any], roles: Sequence[str],
          cell: Callable[[Any], str]) -> list[str]:
    """One cell per role, ``—`` where that server did not run."""
    return [cell(sides[role]) if role in sides else MISSING for role in roles]


def _errors_cell(sides: Mapping[str, WrkResult | ConstantRateResult],
                 roles: Sequence[str]) -> str:
    return " · ".join(_each(sides, roles, lambda r: _errors(r.s5xx, r.s4xx, r.socket_errors)))


def _ratio_cells(row: WorkloadRow, roles: Sequence[str]) -> list[str]:
    service = row.sides.get(SERVICE)
    return [_ratio(service.median.rps, row.sides[role].median.rps)
            if service is not None and role in row.sides else MISSING
            for role in _others(roles)]


def _workload_header(roles: Sequence[str]) -> list[str]:
    return ["workload", *_labels(roles, " rps"),
            *(f"service/{SIDE_LABELS[role]}" for role in _others(roles)),
            *_labels(roles, " p50 / p99 ms"),
            f"errors 5xx/4xx/sock ({' · '.join(_labels(roles))})"]


def _workload_cells(row: WorkloadRow, roles: Sequence[str]) -> list[str]:
    medians = {role: side.median for role, side in row.sides.items()}
    return [row.name, *_each(medians, roles, lambda r: f"{r.rps:.0f}"),
            *_ratio_cells(row, roles),
            *_each(medians, roles, lambda r: _latencies(r.p50_ms, r.p99_ms)),
            _errors_cell(medians, roles)]


def _constant_rate_header(roles: Sequence[str]) -> list[str]:
    return ["open loop", *_labels(roles, " rps achieved of target"),
            *_labels(roles, " p50 / p99 / p99.9 ms"),
            f"errors 5xx/4xx/sock ({' · '.join(_labels(roles))})"]


def _constant_rate_cells(row: ConstantRateRow, roles: Sequence[str]) -> list[str]:
    return [row.name,
            *_each(row.sides, roles, lambda r: f"{r.achieved_rps:.0f} of {r.target_rps:.0f}"),
            *_each(row.sides, roles, lambda r: _latencies(r.p50_ms, r.p99_ms, r.p999_ms)),
            _errors_cell(row.sides, roles)]


def _cpu_cells(row: WorkloadRow, roles: Sequence[str]) -> list[str]:
    return [row.name, *_each(row.sides, roles,
                             lambda s: MISSING if s.cpu_us is None else f"{s.cpu_us:.0f}")]


def _rss_cells(row: WorkloadRow, roles: Sequence[str]) -> list[str]:
    return [row.name,
            *_each(row.sides, roles,
                   lambda s: f"{s.rss_before / MIB:.1f} → {s.rss_after / MIB:.1f}"),
            " · ".join(_each(row.sides, roles, lambda s: str(s.worker_restarts))),
            f"{row.other_cpu_cores:.2f}"]


def _percent(ratio: float | None) -> str:
    return MISSING if ratio is None else f"{ratio:.1%}"


def _cache_cells(row: WorkloadRow) -> list[str]:
    assert row.cache is not None
    c = row.cache
    rounds = ", ".join(_percent(CacheLookups.ratio(h, m)) for h, m in zip(c.hits, c.misses,
                                                                          strict=True))
    return [row.name, str(sum(c.hits)), str(sum(c.misses)), _percent(c.hit_ratio), rounds]


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
    """The results tables for the terminal."""
    roles = roles_of(rows)
    lines = _text_table(_workload_header(roles), [_workload_cells(r, roles) for r in rows])
    if open_loop:
        loop_roles = roles_of(open_loop)
        lines += ["", *_text_table(_constant_rate_header(loop_roles),
                                   [_constant_rate_cells(r, loop_roles) for r in open_loop])]
    return "\n".join(lines)


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


def _open_loop_lines(open_loop: Sequence[ConstantRateRow]) -> list[str]:
    roles = roles_of(open_loop)
    lines = ["## Open-loop latency of cached GETs (constant rate, perf/constant_rate.py)", "",
             "rps columns: achieved of target; latency measured from each request's "
             "scheduled send time (no coordinated omission).", ""]
    lines += _markdown_table(_constant_rate_header(roles),
                             [_constant_rate_cells(r, roles) for r in open_loop])
    generator = (" / ".join(_each(r.sides, roles, lambda c: f"{c.client_cpu_cores:.2f}"))
                 for r in open_loop)
    return [*lines, "The Python generator itself used " + ", ".join(generator)
            + f" cores ({' / '.join(_labels(roles))} runs) of this machine's cores; other "
            "processes " + ", ".join(f"{r.other_cpu_cores:.2f}" for r in open_loop)
            + " cores.", ""]


def _cache_lines(rows: Sequence[WorkloadRow]) -> list[str]:
    cached = [row for row in rows if row.cache is not None and sum(row.cache.hits)
              + sum(row.cache.misses)]
    if not cached:
        return []
    lines = ["## The service's users cache during its runs", "",
             "`usermgmt_cache_requests_total{result}` from the service's /metrics, read "
             "before and after each of its runs (a second after, so that every worker's "
             "counts are in): GETs by id answered from the process's cache (hit) or read "
             "from the database (miss). The references have no cache: every GET is a "
             "query.", ""]
    return lines + _markdown_table(("workload", "hits", "misses", "hit ratio",
                                    "hit ratio per round"), [_cache_cells(r) for r in cached])


def render_markdown(*, command: str, env: Mapping[str, str], rows: Sequence[WorkloadRow],
                    open_loop: Sequence[ConstantRateRow], soak: SoakResult | None,
                    notes: Sequence[str], started: str, chart: str | None = None) -> str:
    """The whole report as markdown (``chart``: file name of its picture, beside it)."""
    roles = roles_of(rows)
    title = " and ".join(_labels(_others(roles))) or "nothing"
    lines = [f"# usermgmt vs {title} — wrk benchmark ({started})", "",
             f"command: `{command}`", ""]
    lines += _markdown_table(("setting", "value"), list(env.items()))
    if chart is not None:
        lines += [f"![throughput per workload and open-loop latency per server]({chart})", ""]
    lines += ["## Throughput and latency (closed loop, wrk; median of rounds)", "",
              f"{MISSING}: that server does not run that workload.", ""]
    lines += _markdown_table(_workload_header(roles), [_workload_cells(r, roles) for r in rows])
    lines += _cache_lines(rows)
    if open_loop:
        lines += _open_loop_lines(open_loop)
    lines += ["## Worker CPU per request", "",
              "User + system CPU time of the server's worker processes over a run, divided "
              "by the requests it answered (µs, median of rounds): what each request cost, "
              "less sensitive than requests/s to what else runs on the machine (it leaves "
              "out PostgreSQL and the gunicorn master).", ""]
    lines += _markdown_table(["workload", *_labels(roles, " µs")],
                             [_cpu_cells(r, roles) for r in rows])
    lines += ["## Worker RSS around each workload, and CPU taken by other processes", "",
              "RSS in MiB, summed over the gunicorn workers. Other CPU: cores used on average "
              "by processes that are not part of the benchmark while it ran (see "
              "perf/cpu_noise.py); above ~0.1 the numbers of that workload are disturbed.", ""]
    lines += _markdown_table(["workload", *_labels(roles, " before → after"),
                              f"worker restarts ({' · '.join(_labels(roles))})",
                              "other CPU (cores)"], [_rss_cells(r, roles) for r in rows])
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
