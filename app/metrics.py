"""Prometheus metrics, declared once, next to nothing but themselves.

Multiprocess mode: ``usermgmt serve`` points ``PROMETHEUS_MULTIPROC_DIR``
at an emptied directory before gunicorn forks, each worker writes its
values there, gunicorn's ``child_exit`` marks dead workers, and
``GET /metrics`` in any worker aggregates every worker's files. Without
that variable (tests, a single process) the default registry is used.

Every name has the ``usermgmt_`` prefix, base units, ``_total`` on
counters, and labels drawn from bounded sets (route templates, never ids
or emails). Series whose label values are known when a worker starts (the
supervision tree's supervisors and children, login results) exist at 0
from then on (:func:`declare_known_series`): an alert on them sees 0, not
"no data".
"""

from __future__ import annotations

import logging
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psutil
import pykka
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

from supervisors import ExitReason, SupervisorEvent, TreeNode, describe_tree
from supervisors.introspection import mailbox_size

logger = logging.getLogger(__name__)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "IN_FLIGHT",
    "LATENCY_OBJECTIVE_SECONDS",
    "LOGIN_RESULTS",
    "TALLY",
    "MetricsSampler",
    "declare_known_series",
    "declare_supervision_series",
    "exposition",
    "mark_process_dead",
    "multiprocess_enabled",
    "record_supervisor_event",
]

# The latency objective: 99% of requests within 50 ms. A histogram bucket
# edge sits exactly on it so the SLO is an exact ratio of two series.
LATENCY_OBJECTIVE_SECONDS = 0.05
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, LATENCY_OBJECTIVE_SECONDS,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# -- HTTP (RED) ----------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "usermgmt_http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "usermgmt_http_request_duration_seconds", "Time to answer an HTTP request.",
    ["method", "route"], buckets=_LATENCY_BUCKETS)
HTTP_IN_FLIGHT = Gauge(
    "usermgmt_http_requests_in_flight", "HTTP requests being handled.",
    multiprocess_mode="livesum")

# -- actors and supervisors ----------------------------------------------------
ACTOR_RESTARTS = Counter(
    "usermgmt_actor_restarts_total", "Children restarted by their supervisor.",
    ["supervisor", "child"])
ACTOR_EXITS = Counter(
    "usermgmt_actor_exits_total", "Supervised children that ended, by reason.",
    ["supervisor", "reason"])
SUPERVISOR_GIVE_UPS = Counter(
    "usermgmt_supervisor_give_ups_total",
    "Supervisors that exceeded their restart intensity.", ["supervisor"])
ACTORS_ALIVE = Gauge(
    "usermgmt_actors_alive", "Running actors, by kind.", ["kind"], multiprocess_mode="livesum")
ACTOR_MAILBOX_DEPTH = Gauge(
    "usermgmt_actor_mailbox_depth", "Messages waiting in actors' inboxes (sampled), by kind.",
    ["kind"], multiprocess_mode="livemax")

# -- database ------------------------------------------------------------------
DB_WORKERS = Gauge(
    "usermgmt_db_workers", "DbWorkers in the checkout pool, by state.", ["state"],
    multiprocess_mode="livesum")
DB_CHECKOUT_WAIT = Histogram(
    "usermgmt_db_checkout_wait_seconds", "Time requests waited for an idle DbWorker.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
DB_CHECKOUT_TIMEOUTS = Counter(
    "usermgmt_db_checkout_timeouts_total",
    "Requests refused because no DbWorker became idle in time (or load was shed).")
DB_QUERY_DURATION = Histogram(
    "usermgmt_db_query_duration_seconds", "Time a DbWorker took to answer, by operation.",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0))
DB_ERRORS = Counter(
    "usermgmt_db_errors_total", "Database errors seen by requests, by kind.", ["kind"])

# -- cache ---------------------------------------------------------------------
CACHE_REQUESTS = Counter(
    "usermgmt_cache_requests_total", "Cache lookups, by result.", ["result"])
CACHE_EVICTIONS = Counter(
    "usermgmt_cache_evictions_total", "Entries removed from the cache, by reason.", ["reason"])
CACHE_ENTRIES = Gauge(
    "usermgmt_cache_entries", "Entries in the cache.", multiprocess_mode="livesum")

# -- authentication ------------------------------------------------------------
# What the sessions service reports to its login hook.
LOGIN_RESULTS = ("success", "failure", "rate_limited")
LOGINS = Counter(
    "usermgmt_logins_total", "Login attempts, by result (success, failure, rate_limited).",
    ["result"])
TOKEN_CACHE_REQUESTS = Counter(
    "usermgmt_token_cache_requests_total", "Bearer-token cache lookups, by result.",
    ["result"])

# -- process (per worker; multiprocess mode drops the default collector) --------
PROCESS_RSS = Gauge(
    "usermgmt_process_resident_memory_bytes", "Resident memory of each worker process.",
    multiprocess_mode="liveall")
# A counter, as Prometheus' own process collector has it. Multiprocess
# counters are summed over processes: the pid label keeps one per worker.
PROCESS_CPU = Counter(
    "usermgmt_process_cpu_seconds_total", "User and system CPU time of each worker process.",
    ["pid"])
PROCESS_THREADS = Gauge(
    "usermgmt_process_threads", "Threads of each worker process.", multiprocess_mode="liveall")
PROCESS_OPEN_FDS = Gauge(
    "usermgmt_process_open_fds", "Open file descriptors of each worker process.",
    multiprocess_mode="liveall")
PROCESS_START_TIME = Gauge(
    "usermgmt_process_start_time_seconds", "Start time of each worker process (Unix time).",
    multiprocess_mode="liveall")


class _Shard:
    """One thread's counts: written by that thread only, read by :meth:`Tally.flush`."""

    __slots__ = ("counts", "flushed", "flushed_histograms", "histograms", "thread")

    def __init__(self) -> None:
        self.thread = threading.current_thread()
        self.counts: dict[Any, float] = {}
        self.histograms: dict[Any, list[float]] = {}  # child -> [sum, count per bucket...]
        self.flushed: dict[Any, float] = {}
        self.flushed_histograms: dict[Any, list[float]] = {}


class Tally:
    """Counts and observations kept per thread, folded into the series by :meth:`flush`.

    Writing a multiprocess series costs a lock and an mmap write; on the
    hot path (a request, a cache hit, a query) that was most of the price
    of being observed. Here each thread adds to its own plain dicts, so
    nothing is shared and nothing is lost without a lock, and
    :meth:`flush` adds what changed since the last flush to the real
    series. :class:`MetricsSampler` flushes every second and once more
    when it stops, and :func:`exposition` flushes the scraped worker:
    another worker's latest second may be missing from a scrape, never
    lost.

    Histogram children are written through ``_sum`` and ``_buckets``
    (per-bucket counts, as ``Histogram.observe`` keeps them);
    ``tests/app/test_metrics.py`` checks that a flush exposes exactly what
    ``observe`` would.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._shards: list[_Shard] = []
        self._lock = threading.Lock()

    def _shard(self) -> _Shard:
        try:
            return self._local.shard  # type: ignore[no-any-return]
        except AttributeError:
            shard = self._local.shard = _Shard()
            with self._lock:
                self._shards.append(shard)
            return shard

    def count(self, child: Any, n: float = 1) -> None:
        """Add ``n`` to a counter child (a ``labels()`` result or an unlabelled counter)."""
        counts = self._shard().counts
        counts[child] = counts.get(child, 0) + n

    def observe(self, child: Any, value: float) -> None:
        """Observe ``value`` on a histogram child."""
        histograms = self._shard().histograms
        slots = histograms.get(child)
        if slots is None:
            slots = histograms[child] = [0.0] * (len(child._upper_bounds) + 1)
        slots[0] += value
        # Bucket i holds the values <= bound i and > bound i-1 (the last bound is +Inf).
        slots[1 + bisect_left(child._upper_bounds, value)] += 1

    def flush(self) -> None:
        """Add every thread's counts since the last flush to the series."""
        with self._lock:
            for shard in list(self._shards):
                alive = shard.thread.is_alive()
                for child, total in list(shard.counts.items()):
                    delta = total - shard.flushed.get(child, 0)
                    if delta:
                        child.inc(delta)
                        shard.flushed[child] = total
                for child, slots in list(shard.histograms.items()):
                    now = list(slots)
                    last = shard.flushed_histograms.get(child) or [0.0] * len(now)
                    if now == last:
                        continue
                    if now[0] != last[0]:
                        child._sum.inc(now[0] - last[0])
                    for bucket, (n, was) in enumerate(zip(now[1:], last[1:], strict=True)):
                        if n != was:
                            child._buckets[bucket].inc(n - was)
                    shard.flushed_histograms[child] = now
                if not alive:  # a restarted actor's old thread: nothing more will come
                    self._shards.remove(shard)


TALLY = Tally()


class InFlight:
    """Requests being handled in this process, sampled into the in-flight gauge.

    A set rather than ``Gauge.inc``/``dec``: adding and discarding are
    atomic under the GIL and cost a fraction of two writes to the
    multiprocess file, and a gauge is a sample anyway. :class:`MetricsSampler`
    sets the gauge every second, :func:`exposition` right before a scrape
    (which counts itself).
    """

    def __init__(self) -> None:
        self._active: set[object] = set()

    def enter(self, request: object) -> None:
        self._active.add(request)

    def leave(self, request: object) -> None:
        self._active.discard(request)

    def __len__(self) -> int:
        return len(self._active)

    def sample(self) -> None:
        HTTP_IN_FLIGHT.set(len(self._active))


IN_FLIGHT = InFlight()


def multiprocess_enabled() -> bool:
    """Whether metrics go to a multiprocess directory."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition() -> bytes:
    """The text exposition of every process's metrics (this one's flushed first)."""
    IN_FLIGHT.sample()
    TALLY.flush()
    if multiprocess_enabled():
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn ``child_exit``)."""
    if multiprocess_enabled():
        prom_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


# A bypass (no usable table: the cache actor is restarting) is a miss to
# whoever looks at the hit ratio.
_CACHE_RESULTS = {"hits": "hit", "misses": "miss", "bypasses": "miss"}
_CACHE_EVICTIONS = {
    "evicted_capacity": "capacity",
    "evicted_expired": "expired",
    "evicted_invalidated": "invalidated",
    "evicted_flush": "flush",
}


# Labelled children used on every request (a query, a checkout) are looked
# up once, lazily, because ``labels()`` takes a lock and builds a key each time.
_children: dict[tuple[str, str], Any] = {}


def _child(metric: Any, label: str) -> Any:
    key = (metric._name, label)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(label)
    return child


class CacheCounters:
    """A cache's lookups (and evictions) exported from its own counters.

    A cache table counts hits, misses and evictions in plain integers; a
    hook per lookup would add a tally count to every request. Instead
    :meth:`sample` (every second, and before a scrape) adds what the
    counters gained since the last sample to the Prometheus series. A
    table lives as long as its cache actor: when the handle points at a new
    one, the old table's last counts are exported first, then the new
    table's from zero, so nothing is counted twice or lost.

    Args:
        handle: the cache's handle (it re-points at each new table).
        requests: the lookups counter, labelled by result.
        evictions: the evictions counter, labelled by reason, if counted.
    """

    def __init__(self, handle: Any, requests: Any, evictions: Any | None = None) -> None:
        self._handle = handle
        self._requests = requests
        self._evictions = evictions
        self._lock = threading.Lock()
        self._table: Any = None
        self._seen: dict[str, int] = {}

    def sample(self) -> None:
        with self._lock:
            table = self._handle.table
            if table is not self._table:
                if self._table is not None:
                    self._export(self._table.stats())
                self._table = table
                self._seen = {}
            self._export(table.stats())

    def _export(self, stats: Any) -> None:
        for name, result in _CACHE_RESULTS.items():
            self._add(stats, name, self._requests, result)
        if self._evictions is not None:
            for name, reason in _CACHE_EVICTIONS.items():
                self._add(stats, name, self._evictions, reason)

    def _add(self, stats: Any, name: str, metric: Any, label: str) -> None:
        value: int = getattr(stats, name)
        delta = value - self._seen.get(name, 0)
        if delta > 0:
            _child(metric, label).inc(delta)
            self._seen[name] = value


def count_login(result: str) -> None:
    """The sessions service's login hook."""
    LOGINS.labels(result).inc()


def observe_checkout_wait(seconds: float) -> None:
    """The worker pool's checkout hook (every database request)."""
    TALLY.observe(DB_CHECKOUT_WAIT, seconds)


def observe_query(operation: str, seconds: float) -> None:
    """The DbWorkers' query hook."""
    TALLY.observe(_child(DB_QUERY_DURATION, operation), seconds)


def count_db_error(kind: str) -> None:
    """The DbWorkers' error hook."""
    _child(DB_ERRORS, kind).inc()


def declare_known_series(root: pykka.ActorRef[Any]) -> None:
    """Create at 0 the series whose label values are known once the tree runs.

    Login results, and for the running tree (read from it, not from its
    configuration) every supervisor's give-ups and exits by reason and
    every child's restarts. Call it once per worker process, after the tree
    started: in multiprocess mode ``labels()`` is what writes a series to
    this process's file. Blocks while it asks the supervisors.

    Args:
        root: the root supervisor.
    """
    for result in LOGIN_RESULTS:
        LOGINS.labels(result)
    try:
        tree = describe_tree(root)
    except (pykka.ActorDeadError, pykka.Timeout):  # they appear with their first event
        logger.warning("the supervision tree did not answer; its series start with their "
                       "first event", extra={"event": "declare_failed"})
        return
    declare_supervision_series(tree)


def declare_supervision_series(tree: TreeNode) -> None:
    """Create at 0 the restart, exit and give-up series of every supervisor in ``tree``."""
    supervisor = tree.supervisor
    SUPERVISOR_GIVE_UPS.labels(supervisor.name)
    for reason in ExitReason:
        ACTOR_EXITS.labels(supervisor.name, reason.value)
    for child in supervisor.children:
        ACTOR_RESTARTS.labels(supervisor.name, child.id)
    for subtree in tree.subtrees.values():
        declare_supervision_series(subtree)


def record_supervisor_event(event: SupervisorEvent) -> None:
    """Count one supervisor event (the supervision tree's event hook)."""
    if event.kind == "restart":
        ACTOR_RESTARTS.labels(event.supervisor, event.child or "").inc()
    elif event.kind == "exit":
        ACTOR_EXITS.labels(event.supervisor, event.reason or "unknown").inc()
    elif event.kind == "give_up":
        SUPERVISOR_GIVE_UPS.labels(event.supervisor).inc()


class RuntimeGauges:
    """A worker's actor-system gauges that have no event of their own.

    DbWorkers idle and busy, actors alive and their deepest mailbox by
    kind, the users cache's size, and the caches' lookup counters
    (:class:`CacheCounters`). :class:`MetricsSampler` calls :meth:`sample`
    every second and before a scrape.

    Args:
        pool: the DbWorker checkout pool.
        kinds: actor class -> ``kind`` label (others are ``other``).
        cache_size: the users cache's entry count, if it is on.
        counters: the caches' lookup counters.
    """

    def __init__(self, pool: Any, kinds: Mapping[type[Any], str],
                 cache_size: Callable[[], int] | None = None,
                 counters: Sequence[CacheCounters] = ()) -> None:
        self._pool = pool
        self._kinds = dict(kinds)
        self._labels = sorted(set(self._kinds.values()))
        self._cache_size = cache_size
        self._counters = list(counters)

    def sample(self) -> None:
        stats = self._pool.stats()
        DB_WORKERS.labels("idle").set(stats.idle)
        DB_WORKERS.labels("busy").set(stats.busy)
        alive: dict[str, int] = dict.fromkeys(self._labels, 0)
        depth: dict[str, int] = dict.fromkeys(self._labels, 0)
        for ref in pykka.ActorRegistry.get_all():
            kind = self._kind(ref.actor_class)
            alive[kind] = alive.get(kind, 0) + 1
            depth[kind] = max(depth.get(kind, 0), mailbox_size(ref))
        for kind, count in alive.items():
            ACTORS_ALIVE.labels(kind).set(count)
            ACTOR_MAILBOX_DEPTH.labels(kind).set(depth[kind])
        if self._cache_size is not None:
            CACHE_ENTRIES.set(self._cache_size())
        for counters in self._counters:
            counters.sample()

    def _kind(self, actor_class: type[Any]) -> str:
        # A supervised actor runs as a subclass of its spec's class (see
        # supervisors.monitor): the kind is that of its nearest known base.
        kind = self._kinds.get(actor_class)
        if kind is None:
            kind = next((self._kinds[base] for base in actor_class.__mro__
                         if base in self._kinds), "other")
            self._kinds[actor_class] = kind
        return kind
_CPU_LOCK = threading.Lock()


def _count_cpu(seconds: float) -> None:
    """Bring this process's CPU counter up to ``seconds`` of CPU time.

    The counter itself holds what was counted so far, so however many
    samplers and scrapes sample (each reads then adds, under one lock),
    it follows the process's CPU time and nothing is counted twice.
    """
    with _CPU_LOCK:
        counter = PROCESS_CPU.labels(str(os.getpid()))
        gained = seconds - counter._value.get()
        if gained > 0:
            counter.inc(gained)


class MetricsSampler:
    """Samples gauges that have no event of their own, in a daemon thread.

    Args:
        sample: called every ``interval`` seconds to set the service's
            own gauges (pool states, actors, mailboxes, cache size).
        interval: seconds between samples.
    """

    def __init__(self, sample: Callable[[], None], interval: float = 1.0) -> None:
        self._sample = sample
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
        self._process = psutil.Process()
        PROCESS_START_TIME.set(self._process.create_time())

    def start(self) -> None:
        """Take a first sample now, so a scrape never sees unset gauges, then sample on."""
        self.sample_now()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:  # the last second's counts, whatever state the actors are in
            self._sample()
        except Exception:
            logger.exception("the last metrics sample failed", extra={"event": "sample_failed"})
        TALLY.flush()

    def sample_now(self) -> None:
        """Take one sample at once (also used right before a scrape)."""
        with self._process.oneshot():
            PROCESS_RSS.set(self._process.memory_info().rss)
            times = self._process.cpu_times()
            PROCESS_THREADS.set(self._process.num_threads())
            PROCESS_OPEN_FDS.set(self._process.num_fds())
        _count_cpu(times.user + times.system)
        self._sample()

    def _run(self) -> None:
        # A scrape folds its own worker's counts (exposition()); this keeps
        # every other worker's no more than an interval behind.
        while not self._stop.wait(self._interval):
            try:
                self.sample_now()
                IN_FLIGHT.sample()
                TALLY.flush()
            except Exception:  # logged, and tried again next interval
                logger.exception("sampling metrics failed", extra={"event": "sample_failed"})
