"""Several hosts behind nginx on one PostgreSQL, proven by failure.

    python -m perf.scale_out [--pairs 10000] [--duration 60] [--out perf/results/scale-out.md]

Builds :class:`perf.topology.Topology` (three ``usermgmt serve`` hosts,
nginx from ``deploy/``, one PostgreSQL, a client, each in its own network
namespace; needs root) and runs, through nginx:

1. **coherence**: write→read pairs (a PATCH, then GETs landing on any
   host until several in a row are fresh): the staleness window of each
   pair and the reads still stale after the documented bound;
2. **a host dies**: ``kill -9`` of one host's gunicorn master under a
   mixed load, then the host started again: reads that failed, acknowledged
   writes lost (the set check of :mod:`perf.set_check`), how soon nginx
   noticed, how soon the host served again, and whether its cache is
   coherent;
3. **rolling restart**: every host reloaded (HUP) or restarted (SIGTERM,
   then started) in turn under load: failed requests;
4. **PostgreSQL restart** under load: cached reads served meanwhile, and
   how soon each host writes again;
5. **throughput** of the same wrk workloads against 1, 2 and 3 hosts.

The tests (``tests/perf/test_scale_out.py``) run the same functions with
short durations and assert on their results; this command runs the long
versions and writes the report.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

from perf.set_check import Call, History, Recorder, lost_writes, set_workload
from perf.topology import HOSTS, Host, Topology

__all__ = [
    "COHERENCE_BOUND",
    "CoherenceResult",
    "DatabaseRestartResult",
    "HostDeathResult",
    "RollingRestartResult",
    "ThroughputRow",
    "coherence",
    "database_restart",
    "host_dies",
    "rolling_restart",
    "throughput",
]

# The staleness bound README.md documents: a read that starts this long
# after a write was acknowledged sees it, whichever host answers.
COHERENCE_BOUND = 1.0
# Successive fresh reads after which a pair is judged settled: more than
# there are worker processes behind nginx (3 hosts x 2).
SETTLED_READS = 8
WRITE_OK = {"POST": 201, "PATCH": 200, "DELETE": 204, "PUT": 200}
# systemd's RestartSec in deploy/systemd/usermgmt.service.
RESTART_SEC = 2.0


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _session(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _rows(topology: Topology) -> dict[int, int]:
    with psycopg.connect(topology.database.url(), connect_timeout=5) as conn:
        return {int(row[0]): int(row[1])
                for row in conn.execute("SELECT id, version FROM users").fetchall()}


def _ok(call: Call) -> bool:
    if call.kind == "read":
        return call.status == 200
    return call.status == WRITE_OK.get(call.method)


class _Threads:
    """Client threads whose failures are not lost: :meth:`join` raises the first."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, target: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} client thread(s) failed") from self.errors[0]


# -- a mixed load through nginx ------------------------------------------------


@dataclass
class Load:
    """Readers and Jepsen-style writers through nginx until stopped."""

    topology: Topology
    readers: int = 4
    writers: int = 2
    recorder: Recorder = field(default_factory=Recorder)
    history: dict[int, History] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: _Threads = field(default_factory=_Threads)

    def _client(self, i: int) -> None:
        rng = random.Random(i * 7919 + int(time.time()))
        session = _session(self.topology.token)
        url = self.topology.url
        if i < self.readers:
            while not self._stop.is_set():
                if rng.random() < 0.85:
                    user_id = rng.randint(1, self.topology.users)
                    self.recorder.call(session, "read", "GET", f"{url}/api/users/{user_id}")
                else:
                    self.recorder.call(session, "read", "GET", f"{url}/api/users?limit=10")
        else:
            set_workload(url, session, self._stop, self.recorder, self.history.setdefault(i, []),
                         rng)

    def __enter__(self) -> Load:
        for i in range(self.readers + self.writers):
            self._threads.start(self._client, i)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._threads.join(30)

    def failures(self) -> dict[str, int]:
        """Calls that did not succeed, as ``"METHOD status"`` → count."""
        return dict(Counter(f"{c.method} {c.status}" for c in self.recorder.calls if not _ok(c)))

    def lost(self) -> list[str]:
        return lost_writes(self.history, _rows(self.topology))

    def acknowledged(self) -> int:
        return sum(1 for ops in self.history.values() for op, _ in ops if not op.endswith("?"))


# -- 1. coherence ----------------------------------------------------------------


@dataclass
class CoherenceResult:
    pairs: int = 0
    reads: int = 0
    stale_reads: int = 0
    stale_after_bound: int = 0
    windows_ms: list[float] = field(default_factory=list, repr=False)
    reads_per_host: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.windows_ms, 0.50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.windows_ms, 0.99)

    @property
    def max_ms(self) -> float:
        return max(self.windows_ms, default=0.0)

    @property
    def pairs_with_a_stale_read(self) -> int:
        return sum(1 for w in self.windows_ms if w > 0)


def coherence(topology: Topology, pairs: int, clients: int = 4, read_url: str | None = None,
              bound: float = COHERENCE_BOUND) -> CoherenceResult:
    """Write→read pairs: each client PATCHes one of its users through nginx,
    then reads it (through nginx, or from ``read_url``) until
    :data:`SETTLED_READS` reads in a row show the new version. Before each
    write the user is read as many times, so that the hosts' caches hold
    the old version.

    A pair's window is 0 if no read after the acknowledgement was stale,
    else the time from the acknowledgement to the end of its last stale
    read (an upper bound of how long the old version was served).
    """
    result = CoherenceResult()
    lock = threading.Lock()
    reader_url = read_url or topology.url
    # nginx opens a connection per request to a host, so its reads land on
    # any worker process; straight to a host, a new connection per read
    # does the same.
    read_headers = {"Connection": "close"} if read_url else {}
    started = time.time()

    run = secrets.token_hex(4)

    def client(i: int, count: int) -> None:
        session = _session(topology.token)
        # Each client owns a few users it creates, so nobody else writes
        # them (the mixed workload deletes random seeded ids).
        own = []
        for k in range(4):
            created = session.post(topology.url + "/api/users", timeout=15, json={
                "name": f"pair owner {i}-{k}", "email": f"pairs-{run}-{i}-{k}@example.com"})
            assert created.status_code == 201, created.text
            own.append(created.json()["id"])
        for n in range(count):
            path = f"/api/users/{own[n % len(own)]}"
            for _ in range(SETTLED_READS):
                session.get(reader_url + path, headers=read_headers, timeout=15)
            response = session.patch(topology.url + path, json={"name": f"pair {i}-{n}"},
                                     timeout=15)
            assert response.status_code == 200, response.text
            version = response.json()["version"]
            acked = time.monotonic()
            window = 0.0
            stale = late = reads = fresh_run = 0
            while fresh_run < SETTLED_READS:
                sent = time.monotonic()
                read = session.get(reader_url + path, headers=read_headers, timeout=15)
                done = time.monotonic()
                reads += 1
                assert read.status_code == 200, read.text
                if read.json()["version"] >= version:
                    fresh_run += 1
                    continue
                fresh_run = 0
                stale += 1
                window = done - acked
                if sent - acked > bound:
                    late += 1
                if done - acked > bound + 10:
                    break  # never settles: counted, not waited for
            with lock:
                result.pairs += 1
                result.reads += reads
                result.stale_reads += stale
                result.stale_after_bound += late
                result.windows_ms.append(window * 1000)

    share = [pairs // clients + (1 if i < pairs % clients else 0) for i in range(clients)]
    threads = _Threads()
    for i in range(clients):
        threads.start(client, i, share[i])
    threads.join()
    result.seconds = time.time() - started
    if read_url is None:
        result.reads_per_host = _requests_per_host(topology, started, "GET")
    return result


def _requests_per_host(topology: Topology, since: float, method: str) -> dict[str, int]:
    names = {host.address: name for name, host in topology.hosts.items()}
    counts: Counter[str] = Counter()
    for entry in topology.lb.access_entries():
        if entry["msec"] >= since and entry["method"] == method:
            last = entry["upstream"].split(", ")[-1].rpartition(":")[0]
            counts[names.get(last, last)] += 1
    return dict(sorted(counts.items()))


# -- 2. a host dies ----------------------------------------------------------------


@dataclass
class HostDeathResult:
    victim: str
    reads: int = 0
    read_successes: int = 0
    writes: int = 0
    writes_acknowledged: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    retried_reads: int = 0
    workers_gone_s: float = 0.0
    detected_s: float | None = None
    attempts_on_dead_host: int = 0
    ready_s: float = 0.0
    back_in_rotation_s: float | None = None
    after_return: CoherenceResult | None = None

    @property
    def read_success_ratio(self) -> float:
        return self.read_successes / self.reads if self.reads else 0.0


def _wait_gone(pids: set[int], timeout: float = 30.0) -> float:
    started = time.monotonic()
    while any(psutil.pid_exists(p) for p in pids):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"workers {pids} still running {timeout} s after their master died")
        time.sleep(0.05)
    return time.monotonic() - started


def host_dies(topology: Topology, duration: float, victim: str = "h1",
              pairs_after: int = 40) -> HostDeathResult:
    """``kill -9`` the victim's master a third into the load; start it again
    (as systemd's Restart=always would, after RestartSec) once its workers
    are gone; keep the load on until ``duration`` and at least a few
    seconds after it is back."""
    host = topology.hosts[victim]
    result = HostDeathResult(victim)
    started = time.time()
    with Load(topology) as load:
        time.sleep(duration / 3)
        killed_at = time.time()
        workers = host.kill()
        result.workers_gone_s = _wait_gone(workers)
        time.sleep(RESTART_SEC)
        restarted_at = time.time()
        topology.restart_host(victim)
        host.wait_ready()
        result.ready_s = time.time() - restarted_at
        time.sleep(max(started + duration - time.time(), 5.0))
    reads = load.recorder.of("read")
    result.reads = len(reads)
    result.read_successes = sum(1 for c in reads if _ok(c))
    result.writes = len(load.recorder.of("write"))
    result.writes_acknowledged = load.acknowledged()
    result.failures = load.failures()
    result.lost = load.lost()
    address = f"{host.address}:"
    for entry in topology.lb.access_entries():
        if entry["msec"] < started:
            continue
        tried = list(zip(entry["upstream"].split(", "), entry["upstream_status"].split(", "),
                         strict=False))
        if entry["method"] == "GET" and len(tried) > 1:
            result.retried_reads += 1
        for upstream, status in tried:
            if not upstream.startswith(address):
                continue
            answered = status.isdigit() and int(status) < 502
            if killed_at <= entry["msec"] and not answered:
                result.attempts_on_dead_host += 1
                if result.detected_s is None:
                    result.detected_s = entry["msec"] - killed_at
            if entry["msec"] >= restarted_at and answered and result.back_in_rotation_s is None:
                result.back_in_rotation_s = entry["msec"] - restarted_at
    # Its cache: warmed by reads, then written elsewhere, must not serve the old version.
    result.after_return = coherence(topology, pairs_after, clients=2, read_url=host.url)
    return result


# -- 3. rolling restart ------------------------------------------------------------


@dataclass
class RollingRestartResult:
    mode: str
    requests: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    writes_acknowledged: int = 0
    seconds_per_host: dict[str, float] = field(default_factory=dict)


def _reload(host: Host) -> None:
    old = host.worker_pids()
    host.reload()
    deadline = time.monotonic() + 60
    while host.worker_pids() & old or len(host.worker_pids()) < host.workers:
        if time.monotonic() > deadline:
            raise AssertionError(f"{host.name}: old workers {old} still there after HUP")
        time.sleep(0.05)
    host.wait_ready()


def rolling_restart(topology: Topology, mode: str = "reload", settle: float = 3.0) -> RollingRestartResult:
    """Every host in turn, under load: ``reload`` (HUP, ``systemctl reload``)
    or ``restart`` (SIGTERM and wait, then start, ``systemctl restart``),
    each waited for until ready. After a restart nginx sees the host again
    within its fail_timeout: ``settle`` seconds pass before the next one."""
    result = RollingRestartResult(mode)
    with Load(topology) as load:
        time.sleep(settle)
        for name, host in topology.hosts.items():
            began = time.monotonic()
            if mode == "reload":
                _reload(host)
            else:
                host.stop()
                topology.restart_host(name)
                host.wait_ready()
            result.seconds_per_host[name] = time.monotonic() - began
            time.sleep(settle)
    result.requests = len(load.recorder.calls)
    result.failures = load.failures()
    result.lost = load.lost()
    result.writes_acknowledged = load.acknowledged()
    return result


# -- 4. PostgreSQL restart -----------------------------------------------------------


@dataclass
class DatabaseRestartResult:
    down_s: float = 0.0
    cached_reads: int = 0
    cached_read_successes: int = 0
    cached_read_failures: dict[str, int] = field(default_factory=dict)
    writes_during: dict[str, int] = field(default_factory=dict)
    nginx_errors: int = 0
    writes_back_s: dict[str, float | None] = field(default_factory=dict)

    @property
    def cached_read_ratio(self) -> float:
        return self.cached_read_successes / self.cached_reads if self.cached_reads else 0.0


def _warm(topology: Topology, ids: Sequence[int], rounds: int = 24) -> None:
    """Read ``ids`` on every host often enough that each worker caches them
    (a new connection per read: whichever worker accepts it answers)."""
    session = _session(topology.token)
    for host in topology.hosts.values():
        for _ in range(rounds):
            for user_id in ids:
                response = session.get(f"{host.url}/api/users/{user_id}", timeout=15,
                                       headers={"Connection": "close"})
                assert response.status_code == 200, response.text


def database_restart(topology: Topology, down: float = 3.0, hot: int = 10,
                     write_deadline: float = 30.0) -> DatabaseRestartResult:
    """Cached reads (of users every worker holds) and writes through nginx
    while PostgreSQL is stopped (fast shutdown) for ``down`` seconds and
    started again; then each host is written to directly until it answers
    201: seconds from PostgreSQL accepting logins again."""
    result = DatabaseRestartResult()
    ids = list(range(1, hot + 1))
    time.sleep(1.0)  # let listeners settle after anything earlier
    _warm(topology, ids)
    recorder = Recorder()
    stop = threading.Event()

    def reader(i: int) -> None:
        rng = random.Random(i)
        session = _session(topology.token)
        while not stop.is_set():
            recorder.call(session, "read", "GET", f"{topology.url}/api/users/{rng.choice(ids)}")

    def writer(i: int) -> None:
        session = _session(topology.token)
        n = 0
        while not stop.is_set():
            n += 1
            recorder.call(session, "write", "POST", f"{topology.url}/api/users",
                          json={"name": "w", "email": f"db-restart-{i}-{n}-{time.time()}@example.com"})
            time.sleep(0.05)

    threads = _Threads()
    for i in range(3):
        threads.start(reader, i)
    threads.start(writer, 0)
    try:
        time.sleep(1.0)
        stopping = time.time()
        topology.database.stop()
        time.sleep(down)
        topology.database.start()
        topology.database.wait_ready()
        back = time.time()
        result.down_s = back - stopping
        result.writes_back_s = _writes_back(topology, back, write_deadline)
        time.sleep(1.0)
    finally:
        stop.set()
        threads.join(30)
    during = [c for c in recorder.calls if stopping <= c.at <= back]
    cached = [c for c in during if c.kind == "read"]
    result.cached_reads = len(cached)
    result.cached_read_successes = sum(1 for c in cached if c.status == 200)
    result.cached_read_failures = dict(Counter(str(c.status) for c in cached if c.status != 200))
    result.writes_during = dict(Counter(str(c.status) for c in during if c.kind == "write"))
    result.nginx_errors = sum(1 for c in recorder.calls if c.status in (502, 504))
    return result


def _writes_back(topology: Topology, since: float, deadline: float) -> dict[str, float | None]:
    """Seconds after ``since`` until a POST straight to each host answers 201."""
    back: dict[str, float | None] = {}

    def probe(name: str, host: Host) -> None:
        session = _session(topology.token)
        n = 0
        while time.time() - since < deadline:
            n += 1
            with contextlib.suppress(requests.RequestException):
                response = session.post(f"{host.url}/api/users", timeout=5, json={
                    "name": "probe", "email": f"probe-{name}-{n}-{time.time()}@example.com"})
                if response.status_code == 201:
                    back[name] = time.time() - since
                    return
            time.sleep(0.05)
        back[name] = None

    threads = _Threads()
    for name, host in topology.hosts.items():
        threads.start(probe, name, host)
    threads.join()
    return dict(sorted(back.items()))


# -- 5. throughput -------------------------------------------------------------------


@dataclass
class ThroughputRow:
    target: str
    workload: str
    rps: float
    p50_ms: float
    p99_ms: float
    s2xx: int
    s4xx: int
    s5xx: int
    socket_errors: int
    other_cores: float = 0.0  # cores busy with processes outside the topology meanwhile


def throughput(topology: Topology, duration: float, host_counts: Sequence[int] = (1, 2, 3),
               workloads: Sequence[str] = ("get_cached", "mixed"), connections: int = 32,
               direct: bool = True, quiet_wait: float = 0.0) -> list[ThroughputRow]:
    """The same wrk workloads through nginx with the first 1, 2, 3 hosts in
    its upstream (a graceful nginx reload between), and, with ``direct``,
    against one host without nginx. Leaves every host in the upstream.

    Each row says how many cores other processes of the machine took
    meanwhile; with ``quiet_wait``, each run first waits up to that many
    seconds for them to take less than a third of a core."""
    from perf.cpu_noise import CpuNoise
    from perf.wrk_runner import run_wrk

    noise = CpuNoise()  # this process's descendants are the whole topology

    env = {"PERF_USERS": str(topology.users), "PERF_TOKEN": topology.token}
    rows = []
    targets = [("1 host, no nginx", topology.hosts[HOSTS[0]].url, 0)] if direct else []
    targets += [(f"nginx, {n} host{'s' if n > 1 else ''}", topology.url, n) for n in host_counts]
    try:
        for label, url, count in targets:
            if count:
                topology.lb.use_hosts(HOSTS[:count])
            for workload in workloads:
                if quiet_wait:
                    noise.wait_until_quiet(0.33, quiet_wait)
                before = noise.snapshot()
                result = run_wrk(url, workload, duration, connections, 2,
                                 {**env, "PERF_RUN_PREFIX": f"{workload}-{count}-{time.time_ns()}"})
                rows.append(ThroughputRow(label, workload, result.rps, result.p50_ms,
                                          result.p99_ms, result.s2xx, result.s4xx, result.s5xx,
                                          result.socket_errors,
                                          CpuNoise.other_cores(before, noise.snapshot())))
    finally:
        topology.lb.use_hosts(HOSTS)
    return rows


# -- the report ----------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def _failures(failures: dict[str, int]) -> str:
    return ", ".join(f"{k} ×{v}" for k, v in sorted(failures.items())) or "none"


def render(command: str, env: dict[str, str], results: dict[str, Any]) -> str:
    coh: CoherenceResult = results["coherence"]
    death: HostDeathResult = results["host_dies"]
    rolls: list[RollingRestartResult] = results["rolling"]
    db: DatabaseRestartResult = results["database"]
    rows: list[ThroughputRow] = results["throughput"]
    after = death.after_return or CoherenceResult()
    stale = [w for w in coh.windows_ms if w > 0]
    lines = [
        "# Scale-out: three hosts behind nginx, proven by failure",
        "",
        f"command: `{command}`",
        "",
        "Topology (`perf/topology.py`): network namespaces on one bridge — client, nginx",
        "(Debian's package, `deploy/nginx/usermgmt.conf` verbatim), three hosts running",
        "`usermgmt serve` as `deploy/systemd/usermgmt.service` and `deploy/usermgmt.env` say",
        "(2 worker processes each), one PostgreSQL on TCP. All of it on one 2-core machine",
        "shared with other work, the load generator included.",
        "",
        *(f"- {k}: {v}" for k, v in env.items()),
        "",
        "## 1. Coherence across hosts",
        "",
        f"{coh.pairs} write→read pairs through nginx, by 4 clients at once; {coh.reads} reads",
        f"after the writes (GETs per host, warm-up reads included: {coh.reads_per_host}). A",
        "pair's window: from the PATCH's 200 to the end of the last read that still showed",
        "the old version (0 when none did).",
        "",
        *_table(["pairs", "window p50 / p99 / max ms", "pairs with a stale read",
                 "their window p50 / p99 ms", "stale reads (of all reads)",
                 f"stale reads started > {COHERENCE_BOUND:g} s after the write"],
                [[coh.pairs, f"{coh.p50_ms:.2f} / {coh.p99_ms:.2f} / {coh.max_ms:.2f}",
                  coh.pairs_with_a_stale_read,
                  " / ".join(f"{percentile(stale, q):.2f}" for q in (0.5, 0.99)),
                  f"{coh.stale_reads} ({coh.stale_reads / max(coh.reads, 1):.3%})",
                  coh.stale_after_bound]]),
        "",
        "## 2. A host dies (`kill -9` of its gunicorn master under load)",
        "",
        *_table(["reads", "succeeded", "writes (acknowledged)", "failed requests",
                 "acknowledged writes lost", "GETs retried on another host"],
                [[death.reads, f"{death.read_successes} ({death.read_success_ratio:.4%})",
                  f"{death.writes} ({death.writes_acknowledged})", _failures(death.failures),
                  len(death.lost), death.retried_reads]]),
        "",
        f"- its workers saw the master gone and stopped {death.workers_gone_s:.2f} s after the kill;",
        f"- nginx's first failed attempt on it: {_seconds(death.detected_s)} after the kill; "
        f"{death.attempts_on_dead_host} attempts on it in all while it was down "
        "(one per fail_timeout, each passed on to another host);",
        f"- started again {RESTART_SEC:g} s after its workers were gone (systemd's RestartSec): "
        f"every worker ready {death.ready_s:.2f} s later; the first request nginx sent it "
        f"and it answered: {_seconds(death.back_in_rotation_s)} after the start;",
        f"- its cache after the return: {after.pairs} pairs written through nginx and read from "
        f"it directly: stale reads after {COHERENCE_BOUND:g} s: {after.stale_after_bound}, "
        f"window max {after.max_ms:.2f} ms.",
        "",
        "## 3. Rolling restart under load",
        "",
        *_table(["mode", "requests", "failed", "acknowledged writes (lost)", "seconds per host"],
                [[r.mode, r.requests, _failures(r.failures), f"{r.writes_acknowledged} ({len(r.lost)})",
                  ", ".join(f"{k} {v:.1f}" for k, v in r.seconds_per_host.items())] for r in rolls]),
        "",
        "## 4. PostgreSQL restart under load",
        "",
        f"PostgreSQL stopped (fast shutdown) and started again: {db.down_s:.1f} s without it.",
        "",
        *_table(["cached reads while down", "served", "writes while down (status ×n)",
                 "nginx 502/504", "seconds until each host wrote again"],
                [[db.cached_reads, f"{db.cached_read_successes} ({db.cached_read_ratio:.2%})",
                  _failures(db.writes_during), db.nginx_errors,
                  ", ".join(f"{k} {_seconds(v)}" for k, v in db.writes_back_s.items())]]),
        "",
        "## 5. Throughput: the same workload against 1, 2 and 3 hosts",
        "",
        "wrk in the client namespace, 32 connections, 2 threads. The machine has 2 cores for",
        "everything (wrk, nginx, every host, PostgreSQL): more hosts add processes competing",
        "for the same cores, so this measures the cost of the topology, not a speed-up; on",
        "real machines each host brings its own cores. What matters here: nothing fails and",
        "coherence holds at every size. Other engineers' work shares the machine: each run",
        "waited (up to 20 s) for it to take less than a third of a core, and the last column",
        "says how much it took during the run; a row next to a busy one is not comparable.",
        "",
        *_table(["target", "workload", "rps", "p50 ms", "p99 ms", "2xx", "4xx", "5xx",
                 "socket errors", "cores taken by other work"],
                [[r.target, r.workload, f"{r.rps:.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}",
                  r.s2xx, r.s4xx, r.s5xx, r.socket_errors, f"{r.other_cores:.2f}"] for r in rows]),
        "",
        "`mixed` expects some 404 and 412 (deleted users, If-Match races): they are its 4xx.",
    ]
    if "coherence_after_throughput" in results:
        after_load: CoherenceResult = results["coherence_after_throughput"]
        lines += ["", f"After the throughput runs, {after_load.pairs} more pairs: stale reads after "
                  f"{COHERENCE_BOUND:g} s: {after_load.stale_after_bound}, window max "
                  f"{after_load.max_ms:.2f} ms."]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


@contextlib.contextmanager
def _topology(workdir: Path, users: int) -> Iterator[Topology]:
    topology = Topology(workdir, host_env={"USERMGMT_LOG_LEVEL": "WARNING"}, users=users)
    with topology, topology.client():
        yield topology


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.scale_out",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000, help="write→read pairs (scenario 1)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of load in scenario 2 and of each wrk run in scenario 5")
    parser.add_argument("--users", type=int, default=10_000, help="users seeded")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    args = parser.parse_args(argv)
    from perf.report import environment
    from perf.servers import exit_on_sigterm

    signal.signal(signal.SIGTERM, exit_on_sigterm)  # unwind: every namespace is deleted

    command = "python -m perf.scale_out " + " ".join(argv if argv is not None else sys.argv[1:])
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="um-scale-out-") as workdir, \
            _topology(Path(workdir), args.users) as topology:
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("coherence", lambda: coherence(topology, args.pairs)),
            ("host_dies", lambda: host_dies(topology, args.duration, pairs_after=500)),
            ("rolling", lambda: [rolling_restart(topology, "reload"),
                                 rolling_restart(topology, "restart")]),
            ("database", lambda: database_restart(topology)),
            ("throughput", lambda: throughput(topology, min(args.duration, 20.0),
                                              quiet_wait=20.0)),
            ("coherence_after_throughput", lambda: coherence(topology, 500)),
        ]
        for name, step in steps:
            began = time.monotonic()
            print(f"{name} ...", file=sys.stderr, flush=True)
            results[name] = step()
            print(f"{name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    report = render(command, environment({"users seeded": str(args.users)}), results)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
