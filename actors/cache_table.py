"""The cache's table: an ETS-style *protected* table with read concurrency.

One writer, many readers. Only the owning :class:`~actors.cache.CacheActor`
(one pykka thread) mutates a :class:`CacheTable`; request threads read it
directly, with no message round trip and no lock. That is safe in CPython
because every structure a reader touches is changed by single C-level
operations that hold the GIL (``OrderedDict`` insert/delete/move with ``int``
keys, attribute stores, swapping a whole dict), so a reader always sees the
table either before or after a write, never half of one.

Read path (request threads)
    :meth:`CacheTable.get` is a dict lookup, a clock read, a flag store and a
    counter increment: no lock, no message, no container; the only objects
    created are the clock's float and the counter's new int.
    :meth:`CacheTable.read_token` is one attribute read.

Write path (the actor's thread only)
    :meth:`store`, :meth:`invalidate`, :meth:`flush`, :meth:`enable`,
    :meth:`disable`, :meth:`sweep` and :meth:`retire`.

Stale write-back protection
    A reader that misses takes a token (:meth:`read_token`) *before* it reads
    the database and hands it back with the row it read (:meth:`store`). The
    table keeps a sequence number ``seq`` bumped by every invalidation; each
    invalidated key gets a tombstone ``(seq, version)``. A store is refused
    when an invalidation of its key was processed after its token was taken
    (tombstone seq > token), so a read that started before an update can
    never put the older row back after the update evicted it. Tombstones are
    bounded (``max_tombstones``, oldest pruned first); pruning raises the
    *horizon* to the pruned tombstone's seq and every token older than the
    horizon is refused, which is conservative (a lost store costs one more
    database read, never a stale answer). :meth:`flush`, :meth:`enable` and
    :meth:`disable` move the horizon to "now" and drop every tombstone.

    Tokens are unique across tables: each table numbers from its own epoch
    (``epoch << 48``), so a token taken from the table of a previous actor
    incarnation is older than the horizon of the next one and is refused.

Eviction (bounded memory)
    Entries live in insertion order. Beyond ``max_entries`` the actor runs
    CLOCK (second chance) from the oldest entry: a reader only sets
    ``entry.referenced = True`` on a hit; an oldest entry with the flag set is
    given a second chance (flag cleared, moved to the newest end), one without
    it is evicted. It approximates LRU: an entry read since the hand last
    passed survives a full lap. Expired entries at the old end are dropped a
    few at a time on every store, and :meth:`sweep` drops all of them.
    Memory is bounded by ``max_entries`` entries plus ``max_tombstones``
    tombstones whatever the access pattern.

Counters
    Reader-side counters (hits, misses, expirations, bypasses, dropped puts)
    are plain ``int`` attributes incremented without a lock: concurrent
    increments may race and lose a few counts. That is accepted on purpose
    (they are metrics, and a lock would cost more than the lookup).
    Actor-side counters are exact.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Generic, Literal, TypeVar

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_TTL",
    "CacheStats",
    "CacheTable",
    "EvictionReason",
    "StatHook",
    "StatName",
]

logger = logging.getLogger(__name__)

V = TypeVar("V")

EvictionReason = Literal["capacity", "expired", "invalidated", "flush"]
"""Why an entry left the table."""

StatName = Literal[
    "hits",
    "misses",
    "expirations",
    "bypasses",
    "stores",
    "rejected_puts",
    "dropped_puts",
    "evicted_capacity",
    "evicted_expired",
    "evicted_invalidated",
    "evicted_flush",
]
"""Names passed to a :data:`StatHook`; the same as the :class:`CacheStats` fields."""

StatHook = Callable[[StatName, int], None]
"""``hook(name, n)``: count ``n`` events of kind ``name``.

Runs in whichever thread produced the event (request threads for hits and
misses, the actor for stores and evictions), so it must be thread-safe and
cheap (a Prometheus ``Counter.inc`` is). Exceptions are logged once and
swallowed: a metrics bug must not fail a request or kill the cache actor.
"""

_EPOCH_SHIFT: Final = 48
"""Bits of sequence space per table: 2**48 invalidations outlast any process."""

_table_epochs = itertools.count(1)
"""Table epochs; ``next()`` on an ``itertools.count`` is atomic under the GIL."""

DEFAULT_TTL: Final = 60.0
"""Seconds an entry is served after it was stored, unless a table is told otherwise."""

DEFAULT_MAX_ENTRIES: Final = 100_000
"""Entries a table holds at most, unless told otherwise."""

_SWEEP_PER_STORE: Final = 32
"""Expired entries dropped at most per store: keeps up with inserts (one per
store) without ever stalling the actor on a long sweep."""


class _Entry(Generic[V]):
    """One cached value; immutable except for ``referenced``.

    ``referenced`` is the CLOCK bit: readers set it on a hit, the actor clears
    it when it gives the entry its second chance. A store replaces the whole
    entry instead of mutating it, so a reader never sees a value paired with
    another value's expiry.
    """

    __slots__ = ("expires_at", "referenced", "value", "version")

    def __init__(self, value: V, expires_at: float, version: int | None) -> None:
        self.value = value
        self.expires_at = expires_at
        self.version = version
        self.referenced = False


@dataclass(frozen=True, slots=True)
class CacheStats:
    """An immutable snapshot of one table's counters.

    Fields are read one by one without stopping readers, so a snapshot taken
    under load may be off by a few events between fields. Counters start at
    zero for every table, i.e. for every life of the cache actor; a metrics
    layer that wants process-long totals should use the ``on_stat`` hook.

    Attributes:
        hits: lookups answered from the table.
        misses: lookups that found nothing usable (absent or expired) while
            the table was usable.
        expirations: misses that found an expired entry (subset of misses).
        bypasses: lookups while the table was disabled or retired.
        stores: puts accepted by the actor.
        rejected_puts: puts refused (stale token, older version, disabled).
        dropped_puts: puts not even sent because the actor's backlog was full.
        evicted_capacity: entries evicted by CLOCK to stay within capacity.
        evicted_expired: expired entries removed (or replaced) by the actor.
        evicted_invalidated: entries removed by ``evict``/``evict_many``.
        evicted_flush: entries dropped by ``flush``/``enable``/``disable``.
        size: entries currently held (including expired, not yet swept).
        tombstones: invalidation tombstones currently held.
        usable: False while disabled or retired (readers bypass).
    """

    hits: int
    misses: int
    expirations: int
    bypasses: int
    stores: int
    rejected_puts: int
    dropped_puts: int
    evicted_capacity: int
    evicted_expired: int
    evicted_invalidated: int
    evicted_flush: int
    size: int
    tombstones: int
    usable: bool

    @property
    def evictions(self) -> Mapping[EvictionReason, int]:
        """Evictions by reason, as a read-only mapping."""
        return MappingProxyType(
            {
                "capacity": self.evicted_capacity,
                "expired": self.evicted_expired,
                "invalidated": self.evicted_invalidated,
                "flush": self.evicted_flush,
            }
        )


class CacheTable(Generic[V]):
    """A bounded key → value table written by one actor, read by any thread.

    Keys are ``int``; values are opaque. See the module docstring for the
    concurrency model, the token protocol and the eviction policy.

    Args:
        ttl: seconds an entry stays servable after it is stored (> 0).
        max_entries: capacity; CLOCK evicts beyond it (>= 1).
        max_tombstones: invalidation tombstones kept (>= 0); fewer means
            more conservative rejection of slow readers' puts.
        max_pending_puts: puts a handle may have in flight to the actor
            before it drops further ones (bounds the actor's mailbox).
        clock: monotonic seconds; injectable for tests.
        start_enabled: serve at once (True) or stay disabled until
            :meth:`enable` (False), e.g. until change notifications flow.

    Raises:
        ValueError: on a non-positive ttl, max_entries < 1, or negative
            max_tombstones / max_pending_puts.
    """

    __slots__ = (
        "_bypasses",
        "_clock",
        "_dropped_puts",
        "_entries",
        "_evicted_capacity",
        "_evicted_expired",
        "_evicted_flush",
        "_evicted_invalidated",
        "_expirations",
        "_floors",
        "_hits",
        "_hook_failed",
        "_horizon",
        "_last_put_sent",
        "_max_entries",
        "_max_pending_puts",
        "_max_tombstones",
        "_misses",
        "_on_stat",
        "_puts_done",
        "_puts_sent",
        "_rejected_puts",
        "_retired",
        "_seq",
        "_stores",
        "_tombstones",
        "_ttl",
        "_usable",
    )

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_tombstones: int = 10_000,
        max_pending_puts: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        start_enabled: bool = True,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0, got {ttl!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        if max_tombstones < 0:
            raise ValueError(f"max_tombstones must be >= 0, got {max_tombstones!r}")
        if max_pending_puts < 0:
            raise ValueError(f"max_pending_puts must be >= 0, got {max_pending_puts!r}")
        self._ttl = float(ttl)
        self._max_entries = max_entries
        self._max_tombstones = max_tombstones
        self._max_pending_puts = max_pending_puts
        self._clock = clock
        # OrderedDict rather than dict: the actor pops from the old end, which
        # is O(1) here but degrades to O(n) per pop on a plain dict (deleted
        # slots pile up at the front until the next resize). Readers use
        # ``[]``, which is as fast as on a dict.
        self._entries: OrderedDict[int, _Entry[V]] = OrderedDict()
        self._tombstones: OrderedDict[int, tuple[int, int | None]] = OrderedDict()
        # Versions written by this process whose eviction is still on its way
        # to the actor (see invalidate_now); bounded by the evicts in flight.
        self._floors: dict[int, float] = {}
        self._seq = next(_table_epochs) << _EPOCH_SHIFT
        self._horizon = self._seq
        self._usable = start_enabled
        self._retired = False
        self._on_stat: StatHook | None = None
        self._hook_failed = False
        # Backlog of puts without a lock on either side: senders number their
        # puts with an itertools.count (atomic under the GIL) and publish the
        # last number; the actor counts what it processed. Racing senders may
        # publish numbers out of order, so the backlog estimate can be off by
        # the number of concurrent senders, but the error never accumulates.
        self._puts_sent = itertools.count(1)
        self._last_put_sent = 0
        self._puts_done = 0
        self._hits = 0
        self._misses = 0
        self._expirations = 0
        self._bypasses = 0
        self._dropped_puts = 0
        self._stores = 0
        self._rejected_puts = 0
        self._evicted_capacity = 0
        self._evicted_expired = 0
        self._evicted_invalidated = 0
        self._evicted_flush = 0

    @classmethod
    def retired_table(cls) -> CacheTable[V]:
        """A table that serves nothing, for a handle whose actor is not running.

        Thread: any.
        """
        table: CacheTable[V] = cls()
        table.retire()
        return table

    # ------------------------------------------------------------------
    # Read side: any thread, no lock, no message.
    # ------------------------------------------------------------------

    def get(self, key: int) -> V | None:
        """The cached value for ``key``, or None to go to the database.

        None when the key is absent, its entry expired, or the table is
        disabled or retired (disabling empties the table, so the hit path
        needs no flag test). A hit sets the entry's CLOCK bit.

        Thread: any (request threads). Never blocks, never sends a message;
        a hit creates no objects but the clock's float and the hit
        counter's int.
        """
        try:
            entry = self._entries[key]
        except KeyError:
            self._count_absent()
            return None
        if entry.expires_at > self._clock():
            entry.referenced = True
            self._hits += 1  # racy on purpose: see the module docstring
            if self._on_stat is not None:
                self._emit("hits", 1)
            return entry.value
        self._expirations += 1
        self._misses += 1
        if self._on_stat is not None:
            self._emit("expirations", 1)
            self._emit("misses", 1)
        return None

    def _count_absent(self) -> None:
        """Count a lookup that found no entry (kept off the hit path)."""
        if self._usable:
            self._misses += 1
            if self._on_stat is not None:
                self._emit("misses", 1)
        else:
            self._bypasses += 1
            if self._on_stat is not None:
                self._emit("bypasses", 1)

    def invalidate_now(self, key: int, version: int | None = None) -> None:
        """Make a write visible to readers at once, before the actor evicts.

        Called by the thread that just committed a write, right before it
        tells the actor to :meth:`invalidate` (read-your-writes: the writer's
        next read must not hit the old row while the eviction is still in
        the mailbox). It only marks: the cached entry, if any, is made to
        look expired (one attribute store, like a reader's CLOCK bit), and a
        *floor* makes :meth:`store` refuse any put older than ``version``
        (any put at all for a delete, ``version=None``) until the actor has
        processed the eviction.

        Thread: any (request threads after a write).
        """
        self._floors[key] = float("inf") if version is None else version
        entry = self._entries.get(key)
        if entry is not None:
            entry.expires_at = 0.0

    def read_token(self, key: int) -> int:
        """A token to pass to a later put of ``key``; take it BEFORE the DB read.

        The put is accepted only if no invalidation of ``key`` (and no flush)
        is processed between this call and the put. ``key`` is unused today
        (the token is global) but keeps callers ready for per-key tokens.

        Thread: any. One attribute read.
        """
        return self._seq

    @property
    def usable(self) -> bool:
        """False while disabled or retired: readers bypass the cache.

        Thread: any.
        """
        return self._usable

    @property
    def retired(self) -> bool:
        """True once the owning actor stopped; a retired table never serves again.

        Thread: any.
        """
        return self._retired

    @property
    def ttl(self) -> float:
        """Seconds an entry stays servable after it is stored."""
        return self._ttl

    @property
    def max_entries(self) -> int:
        """Capacity bound."""
        return self._max_entries

    @property
    def max_tombstones(self) -> int:
        """Tombstone bound."""
        return self._max_tombstones

    def __len__(self) -> int:
        """Entries held, expired ones included. Thread: any."""
        return len(self._entries)

    def stats(self) -> CacheStats:
        """A snapshot of the counters (see :class:`CacheStats`). Thread: any."""
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            expirations=self._expirations,
            bypasses=self._bypasses,
            stores=self._stores,
            rejected_puts=self._rejected_puts,
            dropped_puts=self._dropped_puts,
            evicted_capacity=self._evicted_capacity,
            evicted_expired=self._evicted_expired,
            evicted_invalidated=self._evicted_invalidated,
            evicted_flush=self._evicted_flush,
            size=len(self._entries),
            tombstones=len(self._tombstones),
            usable=self._usable,
        )

    def admit_put(self) -> bool:
        """Whether a reader should send its put to the actor at all.

        False while the table is unusable (the actor would refuse it) or when
        about ``max_pending_puts`` admitted puts are still waiting in the
        actor's mailbox (the put is dropped and counted: a lost put costs one
        more database read later, an unbounded mailbox costs memory). The
        backlog is estimated as puts admitted here minus stores the actor
        processed, so it is exact for a single sender and off by at most the
        number of concurrent senders otherwise. A caller that admits a put
        must then send it.

        Thread: any (request threads); lock-free.
        """
        if not self._usable:
            return False
        if self._last_put_sent - self._puts_done >= self._max_pending_puts:
            self._dropped_puts += 1
            if self._on_stat is not None:
                self._emit("dropped_puts", 1)
            return False
        # Only admitted puts are numbered, so a dropped put never inflates
        # the backlog estimate.
        self._last_put_sent = next(self._puts_sent)
        return True

    def set_on_stat(self, hook: StatHook | None) -> None:
        """Install (or remove, with None) the stat hook.

        The only write allowed from outside the actor: a single attribute
        store that readers pick up on their next event.

        Thread: any.
        """
        self._on_stat = hook

    def _emit(self, name: StatName, n: int) -> None:
        """Call the stat hook, never letting it fail the caller."""
        hook = self._on_stat
        if hook is None or n == 0:
            return
        try:
            hook(name, n)
        except Exception:
            # Logged once per table: a broken hook would otherwise log on
            # every request.
            if not self._hook_failed:
                self._hook_failed = True
                logger.exception("cache stat hook %r failed; further failures not logged", hook)

    # ------------------------------------------------------------------
    # Write side: the owning actor's thread only.
    # ------------------------------------------------------------------

    def store(self, key: int, value: V, token: int, version: int | None = None) -> bool:
        """Cache ``value`` under ``key`` unless it may be stale.

        Refused (returns False, counted in ``rejected_puts``) when:

        * the table is disabled or retired;
        * ``token`` is older than the horizon (taken before the last flush,
          enable or disable, before a pruned tombstone, or from another
          table) or newer than this table's sequence;
        * ``key`` was invalidated after ``token`` was taken;
        * ``version`` is older than the cached entry's version or the
          version ``key`` was last invalidated with.

        Otherwise the entry is (re)placed at the newest end with a fresh TTL,
        and expired or CLOCK-chosen entries are evicted to stay within
        ``max_entries``.

        Thread: the owning actor only.
        """
        self._puts_done += 1
        if not self._accepts(key, token, version):
            self._rejected_puts += 1
            self._emit("rejected_puts", 1)
            return False
        entries = self._entries
        now = self._clock()
        fresh = _Entry(value, now + self._ttl, version)
        old = entries.get(key)
        if old is not None:
            if old.expires_at <= now:
                self._evicted_expired += 1
                self._emit("evicted_expired", 1)
            else:
                fresh.referenced = old.referenced
            # Re-inserting at the newest end keeps the old end the oldest
            # expiry, which is what the per-store sweep relies on.
            entries[key] = fresh
            entries.move_to_end(key)
        else:
            entries[key] = fresh
        self._stores += 1
        self._emit("stores", 1)
        self._drop_expired(now, _SWEEP_PER_STORE)
        if len(entries) > self._max_entries:
            self._evict_for_capacity(now)
        return True

    def _accepts(self, key: int, token: int, version: int | None) -> bool:
        """The staleness checks of :meth:`store`."""
        if not self._usable or token < self._horizon or token > self._seq:
            return False
        floor = self._floors.get(key)
        if floor is not None and (version is None or version < floor):
            return False
        tomb = self._tombstones.get(key)
        if tomb is not None:
            tomb_seq, tomb_version = tomb
            if tomb_seq > token:
                return False
            if version is not None and tomb_version is not None and version < tomb_version:
                return False
        if version is not None:
            old = self._entries.get(key)
            if old is not None and old.version is not None and version < old.version:
                return False
        return True

    def _drop_expired(self, now: float, limit: int | None) -> int:
        """Evict expired entries from the old end, at most ``limit`` (None: all).

        Stops at the first live entry: the old end is ordered by store time
        except for entries moved by a second chance, which CLOCK or
        :meth:`sweep` catch later.
        """
        entries = self._entries
        dropped = 0
        while entries and (limit is None or dropped < limit):
            key = next(iter(entries))
            if entries[key].expires_at > now:
                break
            del entries[key]
            dropped += 1
        if dropped:
            self._evicted_expired += dropped
            self._emit("evicted_expired", dropped)
        return dropped

    def _evict_for_capacity(self, now: float) -> None:
        """CLOCK: evict from the old end until within ``max_entries``.

        Referenced live entries get a second chance. The number of second
        chances per call is capped at the table size, so readers re-setting
        bits concurrently cannot keep the hand spinning.
        """
        entries = self._entries
        chances = len(entries)
        expired = evicted = 0
        while len(entries) > self._max_entries:
            key = next(iter(entries))
            entry = entries[key]
            if entry.expires_at <= now:
                del entries[key]
                expired += 1
            elif entry.referenced and chances > 0:
                chances -= 1
                entry.referenced = False
                entries.move_to_end(key)
            else:
                del entries[key]
                evicted += 1
        if expired:
            self._evicted_expired += expired
            self._emit("evicted_expired", expired)
        if evicted:
            self._evicted_capacity += evicted
            self._emit("evicted_capacity", evicted)

    def invalidate(self, keys: Iterable[int], version: int | None = None) -> int:
        """Evict ``keys`` and tombstone them so in-flight older reads are refused.

        ``version``, when given, is the version the row now has (or had when
        it was deleted): later puts of an older version are refused even if
        their token is fresh. Tombstones beyond ``max_tombstones`` are pruned
        oldest first, moving the horizon forward.

        Returns:
            How many cached entries were removed (keys that were not cached
            are still tombstoned).

        Thread: the owning actor only.
        """
        self._seq += 1
        seq = self._seq
        entries = self._entries
        tombstones = self._tombstones
        removed = 0
        floors = self._floors
        for key in keys:
            if entries.pop(key, None) is not None:
                removed += 1
            if floors and floors.get(key, float("inf")) <= (
                float("inf") if version is None else version
            ):
                floors.pop(key, None)
            previous = tombstones.pop(key, None)
            kept_version = version
            if (
                previous is not None
                and previous[1] is not None
                and (kept_version is None or previous[1] > kept_version)
            ):
                kept_version = previous[1]
            # Popped and re-inserted so the old end stays the oldest seq,
            # which pruning relies on.
            tombstones[key] = (seq, kept_version)
        while len(tombstones) > self._max_tombstones:
            _, (pruned_seq, _) = tombstones.popitem(last=False)
            self._horizon = max(self._horizon, pruned_seq)
        if removed:
            self._evicted_invalidated += removed
            self._emit("evicted_invalidated", removed)
        return removed

    def flush(self) -> int:
        """Drop every entry and refuse every token taken before now.

        Returns:
            How many entries were dropped.

        Thread: the owning actor only.
        """
        old = self._entries
        # Swap rather than clear: readers holding the old dict finish their
        # lookup on it; it is freed when the last one lets go.
        self._entries = OrderedDict()
        self._tombstones = OrderedDict()  # the horizon below covers them all
        self._seq += 1
        self._horizon = self._seq
        dropped = len(old)
        if dropped:
            self._evicted_flush += dropped
            self._emit("evicted_flush", dropped)
        return dropped

    def enable(self) -> None:
        """Serve again, starting empty.

        Implies :meth:`flush`: while disabled (or before this call) change
        notifications may have been missed, so nothing cached or read before
        now is trusted.

        Raises:
            RuntimeError: if the table is retired.

        Thread: the owning actor only.
        """
        if self._retired:
            raise RuntimeError("a retired cache table cannot be enabled")
        self.flush()
        self._usable = True

    def disable(self) -> None:
        """Stop serving: readers bypass, puts are refused, entries dropped.

        Thread: the owning actor only.
        """
        # Unusable first, then empty: a reader that races with this sees the
        # last values, never values stored after the decision to disable.
        self._usable = False
        self.flush()

    def sweep(self) -> int:
        """Evict every expired entry, wherever it sits.

        O(size); meant for an occasional timer, the per-store sweep being
        enough to bound memory.

        Returns:
            How many entries were evicted.

        Thread: the owning actor only.
        """
        now = self._clock()
        entries = self._entries
        expired = [key for key, entry in entries.items() if entry.expires_at <= now]
        for key in expired:
            del entries[key]
        if expired:
            self._evicted_expired += len(expired)
            self._emit("evicted_expired", len(expired))
        return len(expired)

    def retire(self) -> None:
        """Disable for good; called when the owning actor stops.

        Thread: the owning actor (or whoever owns a table with no actor).
        """
        self._retired = True
        self.disable()
