"""Chaos scenarios against a real ``usermgmt serve``, shared by the tests
(``tests/chaos``) and by ``perf/chaos_report.py``.

Each scenario drives real client threads (bounded in count and time),
injects one kind of fault, and returns a :class:`ScenarioResult` whose
fields are the steady-state hypothesis's observables.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from perf.harness import Server
from perf.set_check import Call, Recorder, lost_writes, set_workload

__all__ = ["Call", "Recorder", "ScenarioResult", "db_worker_kills", "lost_writes", "metric_total",
           "run_clients", "seed_users", "set_workload"]


@dataclass
class ScenarioResult:
    """What a scenario observed (the columns of the chaos report)."""

    name: str
    requests: int = 0
    successes: int = 0
    unavailable: int = 0  # 503s
    other_errors: int = 0  # anything else that is not a success
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    restarts: int = 0
    recovery_seconds: float | None = None
    lost_writes: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def summarise(self, calls: list[Call], ok: Callable[[Call], bool]) -> None:
        self.requests = len(calls)
        self.successes = sum(1 for c in calls if ok(c))
        self.unavailable = sum(1 for c in calls if c.status == 503)
        self.other_errors = self.requests - self.successes - self.unavailable
        latencies = sorted(c.seconds * 1000 for c in calls)
        if latencies:
            self.p50_ms = statistics.median(latencies)
            self.p99_ms = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]


def run_clients(count: int, duration: float, body: Callable[[int, requests.Session, threading.Event], None],
                session_factory: Callable[[], requests.Session]) -> None:
    """Run ``count`` client threads for ``duration`` seconds, then join them."""
    stop = threading.Event()
    threads = [threading.Thread(target=body, args=(i, session_factory(), stop), daemon=True)
               for i in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(duration)
    stop.set()
    for thread in threads:
        thread.join(30)


def metric_total(server: Server, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    text = server.http.get(server.url + "/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and set(labels.items()) <= set(sample.labels.items()):
                total += sample.value
    return total


def seed_users(server: Server, count: int) -> list[int]:
    ids = []
    for n in range(count):
        response = server.http.post(server.url + "/api/users", timeout=10,
                                    json={"name": f"seed {n}", "email": f"seed{n}-{random.random()}@example.com"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


# -- 1 and 2: DbWorkers killed at random under read/write load ----------------

def db_worker_kills(server: Server, duration: float = 10.0, every: float = 0.1,
                    readers: int = 4, writers: int = 2) -> ScenarioResult:
    """Readers GET users (cache off: every read needs a DbWorker) and writers
    run the Jepsen-style set workload while a DbWorker is killed every
    ``every`` s. Returns the reads' outcome; ``notes`` carries the kills and
    the writers' acknowledged history for :func:`lost_writes`."""
    from app.chaos import run_chaos

    ids = seed_users(server, 20)
    recorder = Recorder()
    history: dict[int, list[tuple[str, Any]]] = {}
    restarts_before = metric_total(server, "usermgmt_actor_restarts_total", supervisor="db")

    def client(i: int, session: requests.Session, stop: threading.Event) -> None:
        rng = random.Random(i)
        if i < readers:
            while not stop.is_set():
                if rng.random() < 0.8:
                    recorder.call(session, "read", "GET", f"{server.url}/api/users/{rng.choice(ids)}")
                else:
                    recorder.call(session, "read", "GET", f"{server.url}/api/users?limit=10")
        else:
            set_workload(server.url, session, stop, recorder, history.setdefault(i, []), rng)

    chaos_report: list[Any] = []
    chaos = threading.Thread(target=lambda: chaos_report.append(
        run_chaos(server.url, kind="db_worker", every=every, jitter=0.3, duration=duration,
                  headers=dict(server.http.headers))), daemon=True)
    chaos.start()
    run_clients(readers + writers, duration, client, server.new_session)
    chaos.join(30)
    time.sleep(0.5)  # the last restarts land
    result = ScenarioResult(f"db_worker kills every {every:g} s for {duration:g} s")
    reads = recorder.of("read")
    result.summarise(reads, lambda c: c.status == 200)
    kills = chaos_report[0].kills if chaos_report else 0
    result.restarts = int(metric_total(server, "usermgmt_actor_restarts_total", supervisor="db")
                          - restarts_before)
    result.notes.update(kills=kills, history=history, writes=recorder.of("write"), reads=reads,
                        restarts_before=restarts_before)
    return result
