"""Micro-benchmark: a cache hit through the handle vs a round trip to the actor.

Run from the project root::

    python -m perf.bench_cache [--n 1000000]

Prints nanoseconds per operation (best of several rounds, loop overhead
included and shown separately). No assertions: numbers depend on the machine.

* ``handle.get (hit)``   what a request thread pays on a hit: no message.
* ``handle.get (miss)``  an absent key (the caller then reads the database).
* ``handle.read_token``  taken before the database read on a miss.
* ``handle.put (tell only)``  what a request thread pays to send a put.
* ``tell(Put) + actor store``  sending and storing, i.e. put throughput.
* ``ask round trip``     asking the actor for the same lookup, i.e. what a
  cache *without* a directly readable table would cost per hit.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.cache import CacheActor, CacheHandle, Put, Sync

ROUNDS = 5


@dataclass(frozen=True, slots=True)
class _Lookup:
    key: int


class _AskableCacheActor(CacheActor):
    """CacheActor answering lookups by message, for comparison only."""

    def on_receive(self, message: Any) -> Any:
        if type(message) is _Lookup:
            return self.table.get(message.key)
        return super().on_receive(message)


def _best_ns_per_op(
    n: int, run: Callable[[int], None], untimed_after: Callable[[], None] | None = None
) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        run(n)
        best = min(best, (time.perf_counter_ns() - start) / n)
        if untimed_after is not None:
            untimed_after()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="operations per round")
    args = parser.parse_args()
    n: int = args.n
    n_slow = max(1, n // 50)  # message round trips are ~1000x slower

    handle: CacheHandle[bytes] = CacheHandle()
    ref = _AskableCacheActor.start(handle=handle, max_entries=200_000)
    try:
        ref.ask(Sync(), timeout=10)
        value = b'{"id": 42, "name": "Ada", "email": "ada@example.com", "version": 3}'
        for key in range(100_000):
            ref.tell(Put(key, value, handle.read_token(key), 3))
        ref.ask(Sync(), timeout=60)
        if handle.get(42) != value:
            raise SystemExit("the cache did not warm up")

        def empty_loop(count: int) -> None:
            for _ in range(count):
                pass

        def hit(count: int) -> None:
            for _ in range(count):
                handle.get(42)

        def miss(count: int) -> None:
            for _ in range(count):
                handle.get(-1)

        def token(count: int) -> None:
            for _ in range(count):
                handle.read_token(42)

        def put(count: int) -> None:
            token = handle.read_token(7)
            for _ in range(count):
                handle.put(7, value, token, 3)

        def put_and_drain(count: int) -> None:
            token = handle.read_token(7)
            for _ in range(count):
                ref.tell(Put(7, value, token, 3))
            ref.ask(Sync(), timeout=60)  # timed: sender and actor share the GIL

        def drain() -> None:
            ref.ask(Sync(), timeout=60)

        def ask(count: int) -> None:
            message = _Lookup(42)
            for _ in range(count):
                ref.ask(message, timeout=10)

        results = [
            ("empty loop (overhead)", _best_ns_per_op(n, empty_loop)),
            ("handle.get (hit)", _best_ns_per_op(n, hit)),
            ("handle.get (miss)", _best_ns_per_op(n, miss)),
            ("handle.read_token", _best_ns_per_op(n, token)),
            ("handle.put (tell only)", _best_ns_per_op(n_slow, put, drain)),
            ("tell(Put) + actor store", _best_ns_per_op(n_slow, put_and_drain)),
            ("ask round trip (hit)", _best_ns_per_op(n_slow, ask)),
        ]
    finally:
        pykka.ActorRegistry.stop_all(block=True, timeout=10)

    width = max(len(name) for name, _ in results)
    for name, ns in results:
        print(f"{name:<{width}}  {ns:10.1f} ns/op")
    hit_ns = dict(results)["handle.get (hit)"]
    ask_ns = dict(results)["ask round trip (hit)"]
    print(f"{'ask / hit':<{width}}  {ask_ns / hit_ns:10.0f} x")


if __name__ == "__main__":
    main()
