"""Havoc-style chaos tooling: ``usermgmt chaos``.

Two ways to hurt a running service:

* kill actors at random through the kill switch that a server started
  with ``USERMGMT_CHAOS=1`` mounts at ``/admin/chaos/kill`` (each kill is a
  crash, so supervisors restart the actor);
* terminate every PostgreSQL backend of the service
  (``pg_terminate_backend`` by ``application_name``).
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

__all__ = ["ChaosReport", "kill_db_connections", "run_chaos"]


@dataclass
class ChaosReport:
    """What a chaos run did."""

    kills: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    killed: dict[str, int] = field(default_factory=dict)


def _kill_once(target: str, kind: str, headers: dict[str, str], timeout: float) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 - the operator names the target
        target.rstrip("/") + "/admin/chaos/kill",
        data=json.dumps({"kind": kind}).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        answer: dict[str, str] = json.loads(response.read())
        return answer


def run_chaos(
    target: str,
    *,
    kind: str = "any",
    every: float = 1.0,
    jitter: float = 0.3,
    duration: float = 10.0,
    headers: dict[str, str] | None = None,
    on_kill: Callable[[dict[str, str]], None] | None = None,
    rng: random.Random | None = None,
) -> ChaosReport:
    """Kill an actor of ``kind`` every ``every`` s (± ``jitter``·every) for ``duration`` s.

    A 404 means the server was not started with ``USERMGMT_CHAOS=1``; it
    stops the run at once. A 409 (no such actor running right now, e.g.
    mid-restart) is counted as refused.

    Raises:
        RuntimeError: if the kill switch does not exist on the target.
    """
    rng = rng or random.Random()
    report = ChaosReport()
    deadline = time.monotonic() + duration
    next_kill = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= deadline:
            return report
        if now < next_kill:
            time.sleep(min(next_kill, deadline) - now)
            continue
        try:
            answer = _kill_once(target, kind, headers or {}, timeout=5.0)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise RuntimeError(
                    f"{target} has no chaos kill switch: start it with USERMGMT_CHAOS=1"
                ) from None
            if exc.code == 409:
                report.refused += 1
            else:
                report.errors.append(f"HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            report.errors.append(str(exc))
        else:
            report.kills += 1
            report.killed[answer["killed"]] = report.killed.get(answer["killed"], 0) + 1
            if on_kill is not None:
                on_kill(answer)
        next_kill += every * (1 + rng.uniform(-jitter, jitter))


def kill_db_connections(conninfo: str, application_name: str = "usermgmt") -> int:
    """Terminate every backend of the service (its name or ``name-*``).

    Returns:
        How many backends were terminated.
    """
    with psycopg.connect(conninfo, autocommit=True, application_name="usermgmt-chaos") as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE (application_name = %s OR application_name LIKE %s)"
            " AND pid <> pg_backend_pid()",
            (application_name, application_name + "-%"),
        ).fetchall()
    return sum(1 for (terminated,) in rows if terminated)
