"""A Jepsen-style set workload and its check: is any acknowledged write lost?

Clients create, update and delete users of their own through the API and
log every operation: acknowledged (``created``, ``updated``, ``deleted``)
or of unknown outcome (``create?``, ``update?``, ``delete?``: an error, a
503, no answer). :func:`lost_writes` then compares that history with the
rows the database holds. Used by the chaos suite (one server, actors
killed) and by the multi-host scenarios (hosts killed behind nginx).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

__all__ = ["Call", "History", "Recorder", "lost_writes", "set_workload"]

History = list[tuple[str, Any]]


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the client saw it."""

    kind: str  # "read" or "write"
    status: int | None  # None: no HTTP answer (connection error, client timeout)
    seconds: float
    problem_ok: bool  # a 503 that is problem+json with Retry-After
    method: str = ""
    at: float = 0.0  # wall-clock time it was sent (time.time())


class Recorder:
    """Thread-safe log of calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def call(self, session: requests.Session, kind: str, method: str, url: str,
             timeout: float = 15.0, **kwargs: Any) -> requests.Response | None:
        at = time.time()
        started = time.monotonic()
        try:
            response = session.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException:
            self._add(Call(kind, None, time.monotonic() - started, False, method, at))
            return None
        elapsed = time.monotonic() - started
        problem_ok = (
            response.status_code == 503
            and response.headers.get("Content-Type") == "application/problem+json"
            and response.headers.get("Retry-After") is not None
        )
        self._add(Call(kind, response.status_code, elapsed, problem_ok, method, at))
        return response

    def _add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def of(self, kind: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.kind == kind]


def set_workload(base_url: str, session: requests.Session, stop: threading.Event,
                 recorder: Recorder, history: History, rng: random.Random) -> None:
    """Create, update and delete this client's own users until ``stop``, logging
    every acknowledged (and every unknown-outcome) operation in ``history``."""
    mine: list[int] = []
    n = 0
    while not stop.is_set():
        n += 1
        roll = rng.random()
        if roll < 0.4 or not mine:
            email = f"jepsen-{id(history)}-{n}-{rng.getrandbits(32)}@example.com"
            response = recorder.call(session, "write", "POST", f"{base_url}/api/users",
                                     json={"name": "j", "email": email})
            if response is not None and response.status_code == 201:
                user = response.json()
                mine.append(user["id"])
                history.append(("created", (user["id"], user["version"])))
            else:
                history.append(("create?", email))
        elif roll < 0.8:
            user_id = rng.choice(mine)
            response = recorder.call(session, "write", "PATCH", f"{base_url}/api/users/{user_id}",
                                     json={"name": f"j{n}"})
            if response is not None and response.status_code == 200:
                history.append(("updated", (user_id, response.json()["version"])))
            else:
                history.append(("update?", user_id))
        else:
            user_id = mine.pop(rng.randrange(len(mine)))
            response = recorder.call(session, "write", "DELETE", f"{base_url}/api/users/{user_id}")
            if response is not None and response.status_code == 204:
                history.append(("deleted", user_id))
            else:
                history.append(("delete?", user_id))


def lost_writes(history: dict[int, History], rows: dict[int, int]) -> list[str]:
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
