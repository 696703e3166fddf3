"""Staleness window: from an update committed through server A until
server B serves the new version.

    python -m perf.bench_staleness [--updates 200] [--out perf/results/staleness.md]

Two ``usermgmt serve`` processes (2 workers each, caches on) share one
embedded PostgreSQL. For each update the user is first read through B
until every B worker has it cached, then PATCHed through A; the window is
the time from A's 200 to the first read through B that shows the new
version (reads go round-robin over B's workers via fresh connections).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from app.embedded_db import EmbeddedPostgres
from app.migrations import apply_migrations
from perf.harness import Server
from perf.servers import open_to_the_database


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    workdir = open_to_the_database(Path(tempfile.mkdtemp(prefix="um-stale-")))
    database = EmbeddedPostgres(workdir / "db")
    url = database.start()
    windows: list[float] = []
    try:
        apply_migrations(url)
        env = {"DATABASE_URL": url, "USERMGMT_LOG_LEVEL": "WARNING"}
        with Server({**env, "USERMGMT_DATA_DIR": str(workdir / "a")}, workdir / "a.log") as a, \
             Server({**env, "USERMGMT_DATA_DIR": str(workdir / "b")}, workdir / "b.log") as b:
            created = a.http.post(a.url + "/api/users", timeout=5,
                                  json={"name": "stale", "email": "stale@example.com"})
            path = created.headers["Location"]
            time.sleep(0.2)
            for n in range(args.updates):
                for _ in range(6):  # both of B's workers hold it cached
                    b.http.get(b.url + path, timeout=5)
                version = a.http.patch(a.url + path, json={"name": f"v{n}"}, timeout=5).json()["version"]
                committed = time.perf_counter()
                while True:
                    fresh = requests.get(b.url + path, timeout=5, headers=dict(b.http.headers))
                    if fresh.json()["version"] >= version:
                        windows.append(time.perf_counter() - committed)
                        break
                    if time.perf_counter() - committed > 5:
                        raise AssertionError("B never saw the update")
    finally:
        database.stop()
    ms = [w * 1000 for w in windows]
    report = "\n".join([
        "# Staleness window between two servers",
        "",
        f"command: `python -m perf.bench_staleness --updates {args.updates}`",
        "",
        "| updates | p50 ms | p99 ms | max ms | mean ms |",
        "|---|---|---|---|---|",
        f"| {len(ms)} | {percentile(ms, 0.5):.2f} | {percentile(ms, 0.99):.2f} | {max(ms):.2f} "
        f"| {statistics.fmean(ms):.2f} |",
        "",
        "The first read through B after A's answer is measured; it includes one HTTP round",
        "trip to B, so the window is an upper bound on the NOTIFY → evict delay.",
    ]) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
