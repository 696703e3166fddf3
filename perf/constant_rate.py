"""A constant-rate (open-loop) HTTP load generator: latency without coordinated omission.

    python -m perf.constant_rate --url http://127.0.0.1:8000 --rate 1000 --duration 10 \
        --path /api/users/1 --path /api/users/2

wrk is closed-loop: a connection sends its next request only after the
previous answer, so when the server stalls, wrk stops sending and the
requests that *would* have been sent during the stall are never measured
("coordinated omission"); its tail percentiles look better than what
users see. wrk2 fixes that, but it is not packaged for Debian, hence this.

Request ``i`` is due at ``start + i / rate``. Each of ``connections``
threads owns one keep-alive HTTP/1.1 connection and sends the
requests ``k, k + C, k + 2C, ...``: it sleeps until the request is due,
or sends at once if it is already late, and measures latency from the
*due* time, so time spent queued behind a slow answer counts. Requests
still unsent ``drain`` seconds after the end are counted as dropped.

Python is the load generator here, so its own overhead (GIL hand-offs)
is in the numbers, and it takes CPU that the server would otherwise have
(reported as ``client_cpu_cores``). To keep that small it speaks just
enough HTTP/1.1 itself (prebuilt GETs, ``Content-Length`` bodies) instead
of ``http.client``, whose header parsing costs more than a cached answer.
The achieved rate is reported so that a generator that could not keep up
is visible.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

__all__ = ["ConstantRateResult", "percentile", "run_constant_rate"]

# Short GIL switch interval: a thread whose response arrived should not
# wait 5 ms (the default) for another thread to let go.
SWITCH_INTERVAL = 0.0002
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class ConstantRateResult:
    """Latencies in milliseconds, measured from each request's due time."""

    target_rps: float
    achieved_rps: float
    sent: int
    dropped: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    s2xx: int
    s3xx: int
    s4xx: int
    s5xx: int
    socket_errors: int
    client_cpu_cores: float  # this process's CPU over the run: the generator's own cost

    def to_json(self) -> dict[str, float | int]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass
class _ThreadTally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0
    dropped: int = 0


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


class KeepAliveConnection:
    """The least HTTP/1.1 client that can measure GETs: one socket, reused.

    Handles what the API sends to a GET: a status line, headers and a
    ``Content-Length`` body (or none, for 204 and 304). A connection the
    server closed while idle (gunicorn's keep-alive timeout) is reopened
    and the GET sent again, once.
    """

    def __init__(self, host: str, port: int, timeout: float = REQUEST_TIMEOUT,
                 headers: Mapping[str, str] | None = None) -> None:
        self._address = (host, port)
        self._timeout = timeout
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._head_suffix = f" HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n"
        self._sock: socket.socket | None = None
        self._buffer = b""

    def request_bytes(self, path: str) -> bytes:
        return f"GET {path}{self._head_suffix}".encode()

    def get(self, request: bytes) -> int:
        """Send one prebuilt GET; its status once the whole body is read."""
        reused = self._sock is not None
        try:
            return self._exchange(request)
        except (ConnectionError, _ClosedBeforeAnswer):
            self.close()
            if not reused:
                raise
        return self._exchange(request)

    def _exchange(self, request: bytes) -> int:
        if self._sock is None:
            self._sock = socket.create_connection(self._address, self._timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.sendall(request)
        head = self._read_until_blank_line()
        status = int(head[9:12])
        length = _content_length(head)
        if length is None:
            if status not in (204, 304):
                raise ConnectionError(f"no Content-Length in a {status} answer")
            length = 0
        while len(self._buffer) < length:
            self._buffer += self._recv()
        self._buffer = self._buffer[length:]
        return status

    def _read_until_blank_line(self) -> bytes:
        first = True
        while b"\r\n\r\n" not in self._buffer:
            chunk = self._recv()
            if not chunk:
                raise _ClosedBeforeAnswer if first else ConnectionError("closed mid-answer")
            first = False
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        return head

    def _recv(self) -> bytes:
        assert self._sock is not None
        return self._sock.recv(65536)

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buffer = b""


class _ClosedBeforeAnswer(Exception):
    """The server had closed the idle connection: safe to resend."""


def _content_length(head: bytes) -> int | None:
    start = head.lower().find(b"\r\ncontent-length:")
    if start < 0:
        return None
    value = head[start + 17:].split(b"\r\n", 1)[0]
    return int(value.strip())


def _connection_loop(conn: KeepAliveConnection, paths: Sequence[str], index: int, stride: int,
                     start: float, rate: float, end: float, drain_until: float,
                     tally: _ThreadTally) -> None:
    """Send requests index, index + stride, ... at their due times."""
    requests = [conn.request_bytes(path) for path in paths]
    slot = index
    try:
        while True:
            due = start + slot / rate
            if due >= end:
                return
            now = time.perf_counter()
            if now > drain_until:
                tally.dropped += int((end - due) * rate / stride) + 1
                return
            if due > now:
                time.sleep(due - now)
            try:
                status = conn.get(requests[slot % len(requests)])
            except (OSError, ValueError, _ClosedBeforeAnswer):
                tally.socket_errors += 1
                conn.close()
            else:
                tally.latencies.append(time.perf_counter() - due)
                tally.statuses[status // 100] = tally.statuses.get(status // 100, 0) + 1
            slot += stride
    finally:
        conn.close()


def _summarise(tallies: Sequence[_ThreadTally], rate: float, duration: float,
               cpu_seconds: float) -> ConstantRateResult:
    latencies = sorted(ms * 1000 for tally in tallies for ms in tally.latencies)
    statuses: dict[int, int] = {}
    for tally in tallies:
        for status_class, count in tally.statuses.items():
            statuses[status_class] = statuses.get(status_class, 0) + count
    sent = len(latencies) + sum(t.socket_errors for t in tallies)
    return ConstantRateResult(
        target_rps=rate,
        achieved_rps=len(latencies) / duration,
        sent=sent,
        dropped=sum(t.dropped for t in tallies),
        p50_ms=percentile(latencies, 0.50),
        p90_ms=percentile(latencies, 0.90),
        p99_ms=percentile(latencies, 0.99),
        p999_ms=percentile(latencies, 0.999),
        max_ms=latencies[-1] if latencies else 0.0,
        s2xx=statuses.get(2, 0),
        s3xx=statuses.get(3, 0),
        s4xx=statuses.get(4, 0),
        s5xx=statuses.get(5, 0),
        socket_errors=sum(t.socket_errors for t in tallies),
        client_cpu_cores=cpu_seconds / duration,
    )


def run_constant_rate(url: str, paths: Sequence[str], rate: float, duration: float,
                      connections: int = 16, drain: float = 5.0,
                      headers: Mapping[str, str] | None = None) -> ConstantRateResult:
    """Send GETs of ``paths`` (round robin) at ``rate`` per second for ``duration`` s.

    Bounded in time: every thread stops ``drain`` seconds after the end at
    the latest (plus one request timeout).
    """
    if rate <= 0 or duration <= 0 or not paths:
        raise ValueError("rate, duration and paths must be positive / non-empty")
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    tallies = [_ThreadTally() for _ in range(connections)]
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    start = time.perf_counter() + 0.2  # let every thread start before the first due time
    end = start + duration
    threads = [
        threading.Thread(
            target=_connection_loop, name=f"constant-rate-{k}", daemon=True,
            args=(KeepAliveConnection(host, port, headers=headers), paths, k, connections,
                  start, rate, end, end + drain, tallies[k]),
        )
        for k in range(connections)
    ]
    cpu_start = time.process_time()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(duration + drain + REQUEST_TIMEOUT + 5)
    finally:
        sys.setswitchinterval(previous_interval)
    return _summarise(tallies, rate, duration, time.process_time() - cpu_start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--path", action="append", required=True, help="path to GET (repeatable)")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--token", help="bearer token to send (Authorization header)")
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    with contextlib.suppress(KeyboardInterrupt):
        result = run_constant_rate(args.url, args.path, args.rate, args.duration,
                                   args.connections, headers=headers)
        print(json.dumps(result.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
