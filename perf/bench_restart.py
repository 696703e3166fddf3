"""How fast a crashed DbWorker is replaced, and what it costs the others.

    python -m perf.bench_restart [--crashes 200] [--workers 4] [--out FILE]

Starts an embedded PostgreSQL (or uses --database-url), the real runtime
(supervision tree, DbWorkers, checkout pool), then:

1. crash -> serving: crashes one DbWorker at a time (``supervisors.crash``,
   an abnormal exit) and measures the time until its replacement has
   answered a query; p50/p99/max over all crashes.
2. throughput of the unaffected workers: pings per second through the
   checkout pool with no crashes, then with a crash every 50 ms, side by
   side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from actors.messages import Ping
from app.config import Settings
from app.embedded_db import EmbeddedPostgres
from app.migrations import apply_migrations
from app.runtime import Runtime
from perf.servers import open_to_the_database
from supervisors import crash


def _db_children(runtime: Runtime) -> dict[str, Any]:
    assert runtime.root is not None
    top = {c: r for c, r, _ in runtime.root.proxy().which_children().get(timeout=5)}
    return {c: r for c, r, _ in top["db"].proxy().which_children().get(timeout=5) if r is not None}


def crash_to_serving(runtime: Runtime, crashes: int) -> list[float]:
    """Seconds from a crash until the replacement answered, per crash."""
    samples = []
    for n in range(crashes):
        child_id = f"db_worker_{n % runtime.settings.db_workers + 1}"
        victim = _db_children(runtime)[child_id]
        started = time.perf_counter()
        crash(victim)
        while True:
            fresh = _db_children(runtime).get(child_id)
            if fresh is not None and fresh.actor_urn != victim.actor_urn:
                try:
                    fresh.ask(Ping(), timeout=5)
                    break
                except Exception:
                    pass
            time.sleep(0.0002)
        samples.append(time.perf_counter() - started)
        # Paced below the db supervisor's intensity (25 restarts per worker
        # per 5 s), which a crash storm would exceed by design.
        time.sleep(0.06)
    return samples


def pings_per_second(runtime: Runtime, seconds: float, crash_every: float | None) -> float:
    """Pings/s through the checkout pool by 4 threads, optionally with crashes."""
    stop = threading.Event()
    counts = [0] * 4

    async def pinging(i: int) -> None:
        while not stop.is_set():
            try:
                await runtime.users.ping()
                counts[i] += 1
            except Exception:
                pass

    def client(i: int) -> None:
        asyncio.run(pinging(i))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if crash_every is not None:
            crash(_db_children(runtime)["db_worker_1"])
            time.sleep(crash_every)
        else:
            time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(5)
    return sum(counts) / (time.monotonic() - started)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--database-url")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    embedded = None
    url = args.database_url
    if url is None:
        embedded = EmbeddedPostgres(open_to_the_database(Path(tempfile.mkdtemp(prefix="um-bench-"))))
        url = embedded.start()
    try:
        apply_migrations(url)
        runtime = Runtime(Settings(database_url=url, db_workers=args.workers,
                                   cache_enabled=False), url)
        runtime.start()
        assert runtime.wait_ready(30)
        samples = crash_to_serving(runtime, args.crashes)
        calm = pings_per_second(runtime, args.seconds, None)
        stormy = pings_per_second(runtime, args.seconds, 0.05)
        runtime.stop()
    finally:
        if embedded is not None:
            embedded.stop()
    ms = [s * 1000 for s in samples]
    lines = [
        "# DbWorker crash → replacement serving",
        "",
        f"command: `python -m perf.bench_restart --crashes {args.crashes} --workers {args.workers}`",
        "",
        "| crashes | p50 ms | p99 ms | max ms | mean ms |",
        "|---|---|---|---|---|",
        f"| {len(ms)} | {percentile(ms, 0.5):.2f} | {percentile(ms, 0.99):.2f} | {max(ms):.2f} "
        f"| {statistics.fmean(ms):.2f} |",
        "",
        f"Throughput through the pool ({args.workers} DbWorkers, 4 client threads, "
        f"{args.seconds:g} s each, same run):",
        "",
        "| condition | pings/s | ratio |",
        "|---|---|---|",
        f"| no crashes | {calm:.0f} | 1.00 |",
        f"| db_worker_1 crashed every 50 ms | {stormy:.0f} | {stormy / calm:.2f} |",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
