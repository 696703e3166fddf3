"""Read-through caching with a stale fallback, one recipe for users and sessions.

A value is served from the process's cache only while all of these hold:
the change listener keeps the cache coherent; the key's stamp in the
host's shared stamp table is the one taken before the value was read
(:mod:`actors.stamps`: no worker of the host has written the key since);
and the caller's own test passes (a session's hash and expiry).

On a miss, the cache's read token and the key's stamp are both taken
*before* the database is read, so that an eviction processed, or a write
committed, during the read makes the cache refuse or ignore what was read.

When the database cannot be reached, the cached value is served anyway
(nobody can change the row meanwhile), unless its stamp moved: a write on
this host committed before the database went away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from actors.cache import CacheHandle
from actors.change_listener import Coherence
from actors.errors import Unavailable
from actors.stamps import StampTable

__all__ = ["ReadThrough", "Stamped"]


class Stamped(Protocol):
    """A cached value knows the stamp its key had before it was read."""

    @property
    def stamp(self) -> int: ...


V = TypeVar("V", bound=Stamped)


class ReadThrough(Generic[V]):
    """One cache, its stamps and its coherence flag, read as the module says.

    Args:
        cache: the process's cache (None: always read the database).
        coherence: whether the change listener keeps the cache coherent.
        stamps: the host's stamps for these keys.
    """

    def __init__(self, cache: CacheHandle[V] | None, coherence: Coherence,
                 stamps: StampTable) -> None:
        self.cache = cache
        self._coherence = coherence
        self.stamps = stamps
        self._words = stamps.words
        self._mask = stamps.mask

    def hit(self, key: int, usable: Callable[[V], bool] | None = None) -> V | None:
        """The cached value, if it may be served now; never waits."""
        cache = self.cache
        if cache is None or not self._coherence.is_coherent:
            return None
        value = cache.get(key)
        if value is None or value.stamp != self._words[key & self._mask]:
            return None
        if usable is not None and not usable(value):
            return None
        return value

    async def load(
        self,
        key: int,
        read: Callable[[int], Awaitable[tuple[V, int | None] | None]],
        usable: Callable[[V], bool] | None = None,
        stale_allowed: Callable[[Unavailable], bool] | None = None,
    ) -> V | None:
        """Read ``key`` from the database and offer it to the cache.

        Args:
            read: ``read(stamp)`` reads the database and answers the value
                (built with that stamp) and its version, or None when
                there is nothing to cache.
            usable: the caller's own test of a stale value.
            stale_allowed: whether this failure may fall back to a cached
                value at all (default: any).

        Raises:
            Unavailable: the database cannot be read, and no usable value
                is cached.
        """
        cache = self.cache
        token = cache.read_token(key) if cache is not None else 0
        stamp = self.stamps.current(key)
        try:
            found = await read(stamp)
        except Unavailable as exc:
            allowed = stale_allowed is None or stale_allowed(exc)
            stale = self._stale(key, usable) if allowed else None
            if stale is None:
                raise
            return stale
        if found is None:
            return None
        value, version = found
        if cache is not None:
            cache.put(key, value, token, version)
        return value

    def _stale(self, key: int, usable: Callable[[V], bool] | None) -> V | None:
        cache = self.cache
        value = cache.get(key) if cache is not None else None
        if value is None or value.stamp != self.stamps.current(key):
            return None
        if usable is not None and not usable(value):
            return None
        return value
