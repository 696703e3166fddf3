"""One worker process as the dashboard shows it: a JSON-ready snapshot.

:class:`WorkerObserver` reads the live system (never a copy of the
configuration): the supervision tree through each supervisor's
``describe`` (the children of ``which_children``), the checkout pool's
stats, the caches' counters, the change listener's status, the process's
resources, the journal of supervisor events and the traffic windows.
It asks actors and waits, so it runs in the publisher's thread, never on
the event loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import psutil
import pykka

from actors.cache import CacheHandle
from actors.change_listener import Coherence, GetStatus, ListenerStatus
from actors.worker_pool import WorkerPool
from app.dashboard.journal import SupervisionJournal
from app.dashboard.traffic import HistogramWindow, add_counts, quantile
from app.tree import LISTENER
from supervisors import ChildDescription, ChildType, TreeNode, crash, describe_tree

__all__ = ["EVENTS_PER_WORKER", "TRAFFIC_POINTS", "TRAFFIC_STEP", "WorkerObserver", "route_label"]

# Traffic history: 60 points of 5 s, aligned on wall-clock multiples of 5.
TRAFFIC_STEP = 5
TRAFFIC_POINTS = 60
# Checkout wait quantiles are taken over the last minute.
WAIT_WINDOW = 60
EVENTS_PER_WORKER = 50
# A supervisor busy starting a child answers nothing else meanwhile.
ASK_TIMEOUT = 0.5


def route_label(labels: tuple[str, ...]) -> str:
    """``("GET", "/api/users/{user_id}")`` → ``"GET /api/users/{user_id}"``.

    The route label is already the template users read (see
    :func:`app.middleware.route_template`).
    """
    method, route = labels
    return method + " " + route


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class WorkerObserver:
    """Builds this worker's snapshot, and crashes its actors on request.

    Args:
        root: returns the root supervisor (None while there is none).
        pool: the DbWorkers' checkout pool.
        caches: name → cache handle (None when that cache is off).
        coherence: whether cached rows may be served.
        journal: this worker's supervisor events.
        requests: per-route request durations (None without metrics).
        request_bounds: bucket bounds of ``requests``.
        waits: checkout waits (None without metrics).
        wait_bounds: bucket bounds of ``waits``.
        listener_id: the change listener's child id under the root.
        refresh: called first in each snapshot, e.g. to fold the metrics'
            per-thread counts into the histograms read.
        clock: wall clock.
    """

    def __init__(
        self,
        *,
        root: Callable[[], pykka.ActorRef[Any] | None],
        pool: WorkerPool,
        caches: Mapping[str, CacheHandle[Any] | None],
        coherence: Coherence,
        journal: SupervisionJournal,
        requests: HistogramWindow | None = None,
        request_bounds: tuple[float, ...] = (),
        waits: HistogramWindow | None = None,
        wait_bounds: tuple[float, ...] = (),
        listener_id: str = LISTENER,
        refresh: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._root = root
        self._pool = pool
        self._caches = caches
        self._coherence = coherence
        self.journal = journal
        self._requests = requests
        self._request_bounds = request_bounds
        self._waits = waits
        self._wait_bounds = wait_bounds
        self._listener_id = listener_id
        self._refresh = refresh
        self._clock = clock
        self._process = psutil.Process()
        self._started_at = self._process.create_time()
        self._cpu_mark: tuple[float, float] | None = None
        self._tree: dict[str, Any] | None = None

    # -- the snapshot --------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """This worker now, JSON-ready (blocks on a few actor asks)."""
        if self._refresh is not None:
            self._refresh()
        now = self._clock()
        for window in (self._requests, self._waits):
            if window is not None:
                window.tick(now)
        described = self._describe()
        if described is not None:
            self._tree = self._supervisor_json(described, None, None)
        elif (root := self._root()) is None or not root.is_alive():
            self._tree = None
        # The root did not answer in time: the last tree it gave is shown.
        tree_stale = described is None and self._tree is not None
        return {
            "pid": os.getpid(),
            "started_at": self._started_at,
            "updated_at": now,
            "process": self._process_json(now),
            "requests_per_second": self._requests_per_second(now),
            "tree": self._tree,
            "tree_stale": tree_stale,
            "pool": self._pool_json(now),
            "caches": self._caches_json(),
            "listener": self._listener_json(described),
            "events": [e.as_json() for e in self.journal.recent()[-EVENTS_PER_WORKER:]],
            "traffic": self._traffic_json(now),
        }

    def _describe(self) -> TreeNode | None:
        root = self._root()
        if root is None:
            return None
        try:
            return describe_tree(root, ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            return None

    def _process_json(self, now: float) -> dict[str, Any]:
        with self._process.oneshot():
            rss = self._process.memory_info().rss
            times = self._process.cpu_times()
            threads = self._process.num_threads()
        cpu = times.user + times.system
        percent = None
        if self._cpu_mark is not None and now > self._cpu_mark[0]:
            percent = round(100 * (cpu - self._cpu_mark[1]) / (now - self._cpu_mark[0]), 1)
        self._cpu_mark = (now, cpu)
        return {"rss_bytes": rss, "cpu_seconds": round(cpu, 3), "cpu_percent": percent,
                "threads": threads}

    def _requests_per_second(self, now: float) -> float | None:
        if self._requests is None:
            return None
        end = int(now)
        totals = self._requests.total(end - TRAFFIC_STEP, end)
        requests = sum(sum(counts[1:]) for counts in totals.values())
        return round(requests / TRAFFIC_STEP, 2)

    def _supervisor_json(self, node: TreeNode, child: ChildDescription | None,
                         parent: str | None) -> dict[str, Any]:
        supervisor = node.supervisor
        if child is None:
            item: dict[str, Any] = {
                "id": supervisor.name, "supervisor": None, "actor": "Supervisor",
                "type": ChildType.SUPERVISOR.value, "restart": None, "shutdown": None,
                "state": "running", "restarts": 0, "mailbox": supervisor.mailbox,
                "last_exit": None,
            }
        else:
            assert parent is not None
            item = self._child_json(child, parent)
        item.update({
            "name": supervisor.name,
            "strategy": supervisor.strategy.value,
            "intensity": supervisor.intensity,
            "period": supervisor.period,
            "recent_restarts": supervisor.recent_restarts,
            "children": [
                self._supervisor_json(node.subtrees[c.id], c, supervisor.name)
                if c.id in node.subtrees else self._child_json(c, supervisor.name)
                for c in supervisor.children
            ],
        })
        return item

    def _child_json(self, child: ChildDescription, supervisor: str) -> dict[str, Any]:
        record = self.journal.child(supervisor, child.id)
        state = child.state.value
        if state != "running" and record.gave_up:
            state = "given_up"
        last_exit = record.last_exit
        return {
            "id": child.id,
            "supervisor": supervisor,
            "actor": child.actor_class,
            "type": child.child_type.value,
            "restart": child.restart.value,
            "shutdown": str(child.shutdown),
            "state": state,
            "restarts": record.restarts,
            "mailbox": child.mailbox,
            "last_exit": None if last_exit is None else {
                "reason": last_exit.reason, "error": last_exit.error, "at": last_exit.at},
        }

    def _pool_json(self, now: float) -> dict[str, Any]:
        stats = self._pool.stats()
        p50 = p99 = None
        waits = 0
        if self._waits is not None:
            end = int(now)
            counts: list[float] = []
            for series in self._waits.total(end - WAIT_WINDOW, end).values():
                add_counts(counts, series)
            if counts:
                waits = int(sum(counts[1:]))
                p50 = quantile(0.5, self._wait_bounds, counts[1:])
                p99 = quantile(0.99, self._wait_bounds, counts[1:])
        return {
            "members": stats.members, "idle": stats.idle, "busy": stats.busy,
            "waiting": stats.waiting, "checkouts": stats.checkouts, "timeouts": stats.timeouts,
            "shed": stats.shed, "shedding": self._pool.shedding,
            "waits_last_minute": waits, "wait_p50_ms": _ms(p50), "wait_p99_ms": _ms(p99),
        }

    def _caches_json(self) -> list[dict[str, Any]]:
        caches = []
        for name, handle in self._caches.items():
            if handle is None:
                continue
            stats = handle.stats()
            lookups = stats.hits + stats.misses + stats.bypasses
            caches.append({
                "name": name,
                "entries": stats.size,
                "hits": stats.hits,
                "misses": stats.misses,
                "bypasses": stats.bypasses,
                "hit_ratio": round(stats.hits / lookups, 4) if lookups else None,
                "evictions": {"capacity": stats.evicted_capacity,
                              "expired": stats.evicted_expired,
                              "invalidated": stats.evicted_invalidated,
                              "flush": stats.evicted_flush},
                "usable": stats.usable,
                "coherent": self._coherence.is_coherent,
            })
        return caches

    def _listener_json(self, described: TreeNode | None) -> dict[str, Any] | None:
        if not any(handle is not None for handle in self._caches.values()):
            return None  # no cache, no listener
        ref = None
        if described is not None:
            ref = next((c.ref for c in described.supervisor.children
                        if c.id == self._listener_id), None)
        status: ListenerStatus | None = None
        if ref is not None:
            try:
                status = ref.ask(GetStatus(), block=True, timeout=ASK_TIMEOUT)
            except (pykka.ActorDeadError, pykka.Timeout):
                status = None
        return {
            "running": ref is not None,
            "connected": status.listening if status is not None else False,
            "notifications": status.notifications if status is not None else None,
            "last_notification_at": status.last_notification_at if status is not None else None,
            "connected_at": status.connected_at if status is not None else None,
        }

    def _traffic_json(self, now: float) -> dict[str, Any] | None:
        if self._requests is None:
            return None
        start, series = self._requests.points(now, TRAFFIC_STEP, TRAFFIC_POINTS)
        return {"step": TRAFFIC_STEP, "start": start, "points": TRAFFIC_POINTS, "routes": series}

    # -- chaos -----------------------------------------------------------------

    def kill(self, supervisor: str, child: str) -> str | None:
        """Crash running ``child`` of ``supervisor`` (it is restarted by its policy).

        Returns:
            None once the crash is on its way, else why nothing was killed.
        """
        node = self._describe()
        target = None if node is None else _find(node, supervisor)
        if target is None:
            return f"no running supervisor {supervisor!r} in worker {os.getpid()}"
        ref = next((c.ref for c in target.supervisor.children if c.id == child), None)
        if ref is None:
            return f"{child!r} of {supervisor!r} is not running in worker {os.getpid()}"
        try:
            crash(ref, reason="chaos")
        except pykka.ActorDeadError:
            return f"{child!r} of {supervisor!r} stopped before it could be killed"
        return None


def _find(node: TreeNode, name: str) -> TreeNode | None:
    if node.supervisor.name == name:
        return node
    for subtree in node.subtrees.values():
        found = _find(subtree, name)
        if found is not None:
            return found
    return None
