"""Chaos scenarios against a real ``usermgmt serve``, shared by the tests
and by ``perf/chaos_report.py``.

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

from tests.integration.server import Server

__all__ = ["Call", "Recorder", "ScenarioResult", "metric_total", "run_clients"]


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the client saw it."""

    kind: str  # "read" or "write"
    status: int | None  # None: no HTTP answer (connection error, client timeout)
    seconds: float
    problem_ok: bool  # a 503 that is problem+json with Retry-After


class Recorder:
    """Thread-safe log of calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def call(self, session: requests.Session, kind: str, method: str, url: str,
             timeout: float = 15.0, **kwargs: Any) -> requests.Response | None:
        started = time.monotonic()
        try:
            response = session.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException:
            self._add(Call(kind, None, time.monotonic() - started, False))
            return None
        elapsed = time.monotonic() - started
        problem_ok = (
            response.status_code == 503
            and response.headers.get("Content-Type") == "application/problem+json"
            and response.headers.get("Retry-After") is not None
        )
        self._add(Call(kind, response.status_code, elapsed, problem_ok))
        return response

    def _add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def of(self, kind: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.kind == kind]


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
            set_workload(server, session, stop, recorder, history.setdefault(i, []), rng)

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


def set_workload(server: Server, session: requests.Session, stop: threading.Event,
                 recorder: Recorder, history: list[tuple[str, Any]], rng: random.Random) -> None:
    """Create, update and delete this client's own users, logging every
    acknowledged (and every unknown-outcome) operation in ``history``."""
    mine: list[int] = []
    n = 0
    while not stop.is_set():
        n += 1
        roll = rng.random()
        if roll < 0.4 or not mine:
            email = f"jepsen-{id(history)}-{n}@example.com"
            response = recorder.call(session, "write", "POST", f"{server.url}/api/users",
                                     json={"name": "j", "email": email})
            if response is not None and response.status_code == 201:
                user = response.json()
                mine.append(user["id"])
                history.append(("created", (user["id"], user["version"])))
            else:
                history.append(("create?", email))
        elif roll < 0.8:
            user_id = rng.choice(mine)
            response = recorder.call(session, "write", "PATCH", f"{server.url}/api/users/{user_id}",
                                     json={"name": f"j{n}"})
            if response is not None and response.status_code == 200:
                history.append(("updated", (user_id, response.json()["version"])))
            else:
                history.append(("update?", user_id))
        else:
            user_id = mine.pop(rng.randrange(len(mine)))
            response = recorder.call(session, "write", "DELETE", f"{server.url}/api/users/{user_id}")
            if response is not None and response.status_code == 204:
                history.append(("deleted", user_id))
            else:
                history.append(("delete?", user_id))


def lost_writes(history: dict[int, list[tuple[str, Any]]], rows: dict[int, int]) -> list[str]:
    """Acknowledged writes the database does not reflect (Jepsen's set check).

    ``rows`` maps id -> version as the database has them now. An acknowledged
    create must exist with its last acknowledged version — or a later one if
    a later update's outcome is unknown — unless a delete was acknowledged
    or is unknown; an acknowledged delete must be gone. Unacknowledged
    operations are never counted as lost.
    """
    lost = []
    for ops in history.values():
        state: dict[int, dict[str, Any]] = {}
        for op, arg in ops:
            if op == "created":
                state[arg[0]] = {"version": arg[1], "uncertain": False, "deleted": False,
                                 "maybe_deleted": False}
            elif op == "updated":
                state[arg[0]].update(version=arg[1], uncertain=False)
            elif op == "update?":
                state[arg]["uncertain"] = True
            elif op == "deleted":
                state[arg]["deleted"] = True
            elif op == "delete?":
                state[arg]["maybe_deleted"] = True
        for user_id, s in state.items():
            if s["deleted"]:
                if user_id in rows:
                    lost.append(f"user {user_id}: delete acknowledged but the row exists")
            elif s["maybe_deleted"] and user_id not in rows:
                continue
            elif user_id not in rows:
                lost.append(f"user {user_id}: create acknowledged but the row is gone")
            elif rows[user_id] < s["version"] or (not s["uncertain"] and rows[user_id] != s["version"]):
                lost.append(f"user {user_id}: acknowledged version {s['version']}, database has {rows[user_id]}")
    return lost
