"""Slow and silent clients, as a hostile network sends them (slowloris and friends).

Used by ``perf/bench_attack.py`` and by the edge's integration tests. All
connections go to one loopback address, are driven from a single thread,
and are closed when the context ends; the drip stops with it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass

__all__ = ["Attack", "SlowClients"]


@dataclass(frozen=True)
class Attack:
    """How many connections of each kind, and where the slow bodies go."""

    slow_heads: int = 200
    slow_bodies: int = 200
    silent: int = 2000
    body_path: str = "/api/sessions"
    drip_every: float = 0.5


class SlowClients:
    """Hostile connections: slowloris heads, slow bodies, and silence.

    - a slow head sends a request line and the start of a header whose value
      never ends, one byte per ``drip_every``;
    - a slow body sends a complete head declaring 1,000 bytes of body, then
      one byte per ``drip_every``;
    - a silent connection sends nothing at all.

    Args:
        host, port: the server.
        attack: the numbers of each kind.
    """

    def __init__(self, host: str, port: int, attack: Attack) -> None:
        self.host = host
        self.port = port
        self.attack = attack
        self.sockets: list[tuple[str, socket.socket]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, name="slow-clients", daemon=True)

    def __enter__(self) -> SlowClients:
        try:
            for kind, count in (("head", self.attack.slow_heads),
                                ("body", self.attack.slow_bodies),
                                ("silent", self.attack.silent)):
                for _ in range(count):
                    self.sockets.append((kind, self._open(kind)))
        except BaseException:
            self._close_all()
            raise
        self._thread.start()
        return self

    def _open(self, kind: str) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        if kind == "head":
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        elif kind == "body":
            sock.sendall(f"POST {self.attack.body_path} HTTP/1.1\r\nHost: x\r\n"
                         "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                         .encode())
        sock.setblocking(False)
        return sock

    def _drip(self) -> None:
        while not self._stop.wait(self.attack.drip_every):
            for kind, sock in self.sockets:
                if kind != "silent":
                    with contextlib.suppress(OSError):
                        sock.send(b"a" if kind == "head" else b" ")

    def closed_by_server(self) -> dict[str, int]:
        """How many of each kind the server has closed so far (whatever it answered first)."""
        closed = {"head": 0, "body": 0, "silent": 0}
        for kind, sock in self.sockets:
            if self._closed(sock):
                closed[kind] += 1
        return closed

    @staticmethod
    def _closed(sock: socket.socket) -> bool:
        for _ in range(100):  # bounded: an answer is a few KiB at most
            try:
                if sock.recv(65536) == b"":
                    return True
            except BlockingIOError:
                return False  # open, nothing more to read
            except OSError:
                return True  # reset
        return False

    def _close_all(self) -> None:
        for _, sock in self.sockets:
            sock.close()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._close_all()
