"""Invalidation stamps shared by every worker process of a host.

ETS, which the caches imitate, is one table per node: a write is seen by
every process the moment it is made. Here each worker process has a cache
of its own, kept coherent by PostgreSQL's NOTIFY, which arrives a few
milliseconds after the commit; a client that reads right after its write
may reach another worker in that window. The stamps close it on a host:

- a :class:`StampTable` is an array of 64-bit words in an anonymous shared
  mapping. Made by gunicorn's master before it forks (:func:`shared`), it is
  the same memory in every worker; a key's word is ``words[key & mask]``;
- a **writer**, after its commit and before it answers, stores a fresh
  random value in the key's word (:meth:`StampTable.bump`);
- a **reader** that misses takes the key's stamp *before* reading the
  database and caches it with the row; a cached row is served only while
  its stamp is still the key's current one (one memory read).

Why plain stores suffice (no lock, no atomic increment): readers only
compare for equality, and every bump writes a value never seen before
(64 random bits, from a generator that Python reseeds in each forked
process). A row read before a commit was read after its stamp was taken,
so that stamp predates the commit's bump; after the bump the word holds
another value, whatever other writers store meanwhile, so the row is not
served again. An aligned 64-bit word is read and written whole on the
platforms CPython supports. Keys that share a word only cost each other a
cache miss. A crash cannot leave a word in a state that serves stale data:
there is no multi-step update to interrupt.

Processes that did not inherit the table (tests, a worker started without
``app.gunicorn_conf``) get a private one: coherent within the process,
NOTIFY between processes, as before.
"""

from __future__ import annotations

import mmap
import random
from typing import Final

__all__ = ["StampTable", "Stamps", "shared"]

DEFAULT_SLOTS: Final = 1 << 18
"""Words per table (2 MiB each): few enough distinct keys share one."""


class StampTable:
    """An array of 64-bit stamps in memory shared with forked children.

    Args:
        slots: number of words, a power of two.

    Thread and process: any. Never blocks.
    """

    __slots__ = ("_map", "mask", "words")

    def __init__(self, slots: int = DEFAULT_SLOTS) -> None:
        if slots < 1 or slots & (slots - 1):
            raise ValueError(f"slots must be a power of two, got {slots}")
        # fileno -1: anonymous; MAP_SHARED is mmap's default: children
        # forked later see the same pages, not copies.
        self._map = mmap.mmap(-1, slots * 8)
        self.words = memoryview(self._map).cast("Q")
        """The words, for readers on a hot path: ``words[key & mask]``."""
        self.mask = slots - 1

    def current(self, key: int) -> int:
        """The key's stamp now."""
        return int(self.words[key & self.mask])

    def bump(self, key: int) -> None:
        """Give the key a stamp it never had: every row cached before is stale."""
        self.words[key & self.mask] = random.getrandbits(64)


class Stamps:
    """The host's stamps: one table for users (by id), one for sessions (by cache key)."""

    __slots__ = ("sessions", "users")

    def __init__(self, slots: int = DEFAULT_SLOTS) -> None:
        self.users = StampTable(slots)
        self.sessions = StampTable(slots)


_shared: Stamps | None = None


def shared() -> Stamps:
    """This host's stamps: made on first call, inherited by processes forked after.

    gunicorn's master calls it before forking workers (``app.gunicorn_conf``),
    so every worker gets the same tables.
    """
    global _shared  # noqa: PLW0603 - one per process tree, by design
    if _shared is None:
        _shared = Stamps()
    return _shared
