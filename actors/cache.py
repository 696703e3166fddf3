"""An ETS-style read-through cache: one actor writes, request threads read.

The pieces::

    request thread ──get/read_token──▶ CacheHandle.table (CacheTable)   no hop
          │                                   ▲ writes
          └──put (tell)──▶ CacheActor ────────┘
    change listener ──evict / evict_many / flush / enable / disable (tell)──┘

* :class:`~actors.cache_table.CacheTable` holds the entries. Only its actor
  writes it; readers look values up directly (an ETS *protected* table with
  read concurrency). See :mod:`actors.cache_table` for the token protocol
  that keeps a slow reader from writing back a row an update already evicted.
* :class:`CacheActor` owns one table per life. Every write reaches it as a
  one-way ``tell`` of a small message (:class:`Put`, :class:`Evict`,
  :class:`EvictMany`, :class:`Flush`, :class:`Enable`, :class:`Disable`,
  :class:`Sweep`); nothing on the request path ever waits for it.
* :class:`CacheHandle` is what the rest of the process holds: created once,
  passed to every incarnation of the actor (``CacheActor.start(handle=h)``),
  it always points at the live actor's table and mailbox.

Restarts. A supervisor restarts the actor by starting a new
``CacheActor(handle=h)``. The new instance builds a fresh, empty table and
installs it into the handle in ``on_start``; the old instance retired its
table in ``on_stop``/``on_failure`` (emptied, marked unusable), so from the
moment the old actor dies readers bypass the cache until the new one is up.
Tokens taken from the old table are refused by the new one, so nothing read
before the restart is written back after it.

Reader recipe (request thread)::

    cached = handle.get(user_id)
    if cached is not None:
        return cached
    token = handle.read_token(user_id)   # BEFORE the database read
    row = db.get(user_id)
    handle.put(user_id, encode(row), token, version=row.version)
    return ...

Always go through ``handle.get(...)`` rather than keeping ``handle.get`` or
``handle.table`` in a variable: the handle re-points both on restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

import pykka
from pykka import ActorDeadError, ActorRef

from actors.cache_table import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_TTL,
    CacheStats,
    CacheTable,
    EvictionReason,
    StatHook,
    StatName,
)

__all__ = [
    "CacheActor",
    "CacheHandle",
    "CacheStats",
    "CacheTable",
    "Disable",
    "Enable",
    "Evict",
    "EvictMany",
    "EvictionReason",
    "Flush",
    "Put",
    "StatHook",
    "StatName",
    "Sweep",
    "Sync",
    "TokenCacheActor",
]

logger = logging.getLogger(__name__)

V = TypeVar("V")


# ----------------------------------------------------------------------
# Messages: frozen, slotted, sent with ``tell`` (``ask`` works too and
# answers the method's return value).
# ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Put:
    """Store ``value`` unless stale; see :meth:`CacheTable.store`. Answers bool."""

    key: int
    value: object
    token: int
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Evict:
    """Invalidate one key (its row changed or is gone). Answers entries removed.

    ``version`` is the row's version after the change, when known: later puts
    of older versions are refused.
    """

    key: int
    version: int | None = None


@dataclass(frozen=True, slots=True)
class EvictMany:
    """Invalidate several keys with one message. Answers entries removed."""

    keys: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Flush:
    """Drop everything and refuse every earlier token. Answers entries dropped."""


@dataclass(frozen=True, slots=True)
class Enable:
    """Serve again (implies a flush). Sent by the change listener after it
    (re)connects, since notifications may have been missed meanwhile."""


@dataclass(frozen=True, slots=True)
class Disable:
    """Stop serving (readers bypass) until :class:`Enable`, e.g. while the
    change listener is disconnected."""


@dataclass(frozen=True, slots=True)
class Sweep:
    """Evict every expired entry now. Answers entries evicted."""


@dataclass(frozen=True, slots=True)
class Sync:
    """Barrier: ``ask`` it to wait until the actor processed every message the
    same thread sent before. Answers the table's :class:`CacheStats`."""


# ----------------------------------------------------------------------
# The handle
# ----------------------------------------------------------------------


class CacheHandle(Generic[V]):
    """The process-wide entry point to the cache; survives actor restarts.

    Create one per process, pass it to every ``CacheActor.start(handle=...)``.
    Until an actor installs its table (and after it stops) the handle holds a
    retired table: ``get`` answers None and puts are not sent, so callers
    simply read the database.

    Attributes:
        get: ``get(key) -> value | None``, the current table's
            :meth:`CacheTable.get` (bound directly, so a lookup costs no
            extra call). Thread: any.
        read_token: ``read_token(key) -> int``, the current table's
            :meth:`CacheTable.read_token`. Take it before reading the
            database on a miss. Thread: any.
    """

    __slots__ = ("_lock", "_on_stat", "_ref", "_table", "get", "read_token")

    get: Callable[[int], V | None]
    read_token: Callable[[int], int]

    def __init__(self) -> None:
        # Guards install/retire/hook changes against each other; readers never
        # take it.
        self._lock = threading.Lock()
        self._on_stat: StatHook | None = None
        self._ref: ActorRef[Any] | None = None
        self._table: CacheTable[V] = CacheTable.retired_table()
        self.get = self._table.get
        self.read_token = self._table.read_token

    @property
    def table(self) -> CacheTable[V]:
        """The current table (retired when no actor is running). Thread: any."""
        return self._table

    @property
    def usable(self) -> bool:
        """Whether the current table serves reads. Thread: any."""
        return self._table.usable

    @property
    def actor_ref(self) -> ActorRef[Any] | None:
        """The live cache actor, or None when none is installed. Thread: any."""
        return self._ref

    def stats(self) -> CacheStats:
        """The current table's counters (they restart at zero with each actor).

        Thread: any.
        """
        return self._table.stats()

    @property
    def on_stat(self) -> StatHook | None:
        """The stat hook, kept across restarts (see :data:`StatHook`)."""
        return self._on_stat

    @on_stat.setter
    def on_stat(self, hook: StatHook | None) -> None:
        """Install the stat hook on the current and every future table.

        Thread: any.
        """
        with self._lock:
            self._on_stat = hook
            self._table.set_on_stat(hook)

    # -- writes: one-way tells, dropped when no actor is alive -----------

    def put(self, key: int, value: V, token: int, version: int | None = None) -> None:
        """Offer a value read from the database to the cache; never blocks.

        Not sent when the cache is not serving or its mailbox already holds
        ``max_pending_puts`` puts; silently dropped when the actor is dead.
        Either way the only cost is a later miss.

        Args:
            key: the key looked up.
            value: what ``get`` should answer from now on.
            token: ``read_token(key)`` taken BEFORE the database read.
            version: the row's version, if any; older versions never
                replace newer ones.

        Thread: any (request threads).
        """
        if self._ref is None or not self._table.admit_put():
            return
        # A dead actor drops it: the next table starts empty anyway.
        self._tell(Put(key, value, token, version))

    def evict(self, key: int, version: int | None = None) -> bool:
        """Invalidate ``key``; tell, no wait.

        Returns:
            False if no live actor took the message. Nothing is lost then:
            the next actor starts with an empty table and refuses every
            token taken before it started.

        Thread: any (the change listener, request threads after a write).
        """
        return self._tell(Evict(key, version))

    def invalidate_after_write(self, key: int, version: int | None = None) -> bool:
        """Evict ``key`` after this process committed a write to it.

        Unlike :meth:`evict`, readers stop seeing the old value before this
        returns (see :meth:`CacheTable.invalidate_now`), so the writer's next
        read sees its write. ``version`` is the row's new version, None for
        a delete.

        Thread: any (request threads after a write).
        """
        self._table.invalidate_now(key, version)
        return self._tell(Evict(key, version))

    def evict_many(self, keys: Iterable[int]) -> bool:
        """Invalidate several keys with one message; see :meth:`evict`."""
        return self._tell(EvictMany(tuple(keys)))

    def flush(self) -> bool:
        """Drop everything; see :class:`Flush`. False if no live actor."""
        return self._tell(Flush())

    def enable(self) -> bool:
        """Serve again, starting empty; see :class:`Enable`. False if no live actor."""
        return self._tell(Enable())

    def disable(self) -> bool:
        """Bypass the cache until enabled; see :class:`Disable`. False if no live actor."""
        return self._tell(Disable())

    def sweep(self) -> bool:
        """Evict expired entries now; see :class:`Sweep`. False if no live actor."""
        return self._tell(Sweep())

    def _tell(self, message: object) -> bool:
        ref = self._ref
        if ref is None:
            return False
        try:
            ref.tell(message)
        except ActorDeadError:
            return False
        return True

    # -- wiring, called by CacheActor in its own thread ------------------

    def _install(self, table: CacheTable[V], ref: ActorRef[Any]) -> None:
        """Point the handle at a new actor's table and mailbox.

        Order matters only for wasted work, never for correctness: a reader
        mixing a new table's token with the old mailbox is dropped (dead
        actor), an old token sent to the new actor is refused (older than its
        horizon).
        """
        with self._lock:
            if self._ref is not None and self._ref.is_alive() and self._ref is not ref:
                logger.warning("cache handle re-pointed while %s is still alive", self._ref)
            table.set_on_stat(self._on_stat)
            self._ref = ref
            self._table = table
            self.get = table.get
            self.read_token = table.read_token

    def _release(self, table: CacheTable[V], ref: ActorRef[Any]) -> None:
        """Forget ``ref`` if it is still the installed actor.

        The retired table stays installed (empty, unusable, hook kept so the
        bypasses of the downtime are counted) and its tokens stay below the
        next table's horizon; a newer actor that already installed itself is
        left alone.
        """
        with self._lock:
            if self._ref is ref and self._table is table:
                self._ref = None


# ----------------------------------------------------------------------
# The actor
# ----------------------------------------------------------------------


class CacheActor(pykka.ThreadingActor):
    """Owns one :class:`CacheTable` for its whole life; the table's only writer.

    Start it with a handle for supervised use::

        handle = CacheHandle[bytes]()                      # once per process
        ref = CacheActor.start(handle=handle, ttl=60.0)    # and on every restart

    or with no handle and reach the table through the actor, e.g.
    ``ref.proxy().table.get()`` once at wiring time (no restart support).

    Messages (tell): :class:`Put`, :class:`Evict`, :class:`EvictMany`,
    :class:`Flush`, :class:`Enable`, :class:`Disable`, :class:`Sweep`;
    :class:`Sync` (ask) is a barrier. The same operations are methods, so
    ``ref.proxy().evict(1)`` works too (ignore the future for tell
    semantics, at the price of allocating one).

    Args:
        table: a table to own instead of creating one; must not be retired.
            Not allowed together with ``handle``: a supervisor restarting
            with the same arguments would hand the new actor the old table,
            and a restarted cache must start empty.
        ttl: entry lifetime in seconds for the table this actor creates.
        max_entries: capacity of the table this actor creates.
        handle: the process's :class:`CacheHandle`; the actor installs its
            table into it on start and releases it on stop or failure.
        max_tombstones: tombstone bound of the table this actor creates.
        max_pending_puts: put backlog bound of the table this actor creates.
        clock: monotonic clock of the table this actor creates.
        start_enabled: whether the table this actor creates serves at once.
            False makes the cache wait for an :class:`Enable`, i.e. serve
            only once the change listener is connected; whoever (re)starts
            the cache must then make sure the listener sends one (e.g. a
            rest-for-one supervisor that restarts the listener after it).

    Raises:
        ValueError: if both ``table`` and ``handle`` are given, if ``table``
            is retired, or on invalid table settings.

    Thread: ``__init__`` runs in the starting thread; every other method runs
    in the actor's own thread (through messages or a proxy).
    """

    def __init__(
        self,
        table: CacheTable[Any] | None = None,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        handle: CacheHandle[Any] | None = None,
        max_tombstones: int = 10_000,
        max_pending_puts: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        start_enabled: bool = True,
    ) -> None:
        super().__init__()
        if table is not None and handle is not None:
            raise ValueError("pass either a table or a handle, not both")
        if table is None:
            # Built here, per instance, so every incarnation starts empty.
            table = CacheTable(
                ttl=ttl,
                max_entries=max_entries,
                max_tombstones=max_tombstones,
                max_pending_puts=max_pending_puts,
                clock=clock,
                start_enabled=start_enabled,
            )
        elif table.retired:
            raise ValueError("the table is retired; give the new actor a fresh table")
        self._table: CacheTable[Any] = table
        self._handle = handle

    @property
    def table(self) -> CacheTable[Any]:
        """The table this actor owns; readers may use it from any thread."""
        return self._table

    # -- lifecycle -------------------------------------------------------

    def on_start(self) -> None:
        """Install the fresh table into the handle (actor thread).

        Done here rather than in ``__init__`` so the handle never points at
        an actor whose thread did not start.
        """
        if self._handle is not None:
            self._handle._install(self._table, self.actor_ref)

    def on_stop(self) -> None:
        """Retire the table so readers bypass it (actor thread)."""
        self._shutdown()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Retire the table after a crash (actor thread); see :meth:`on_stop`."""
        self._shutdown()

    def _shutdown(self) -> None:
        # Retire first: from here on nothing this actor cached is served,
        # even to readers that still hold the old table.
        self._table.retire()
        if self._handle is not None:
            self._handle._release(self._table, self.actor_ref)

    # -- messages --------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        """Dispatch a message to the method of the same name (actor thread)."""
        # Put first: it is by far the most frequent message.
        if type(message) is Put:
            return self._table.store(message.key, message.value, message.token, message.version)
        match message:
            case Evict(key=key, version=version):
                return self._table.invalidate((key,), version)
            case EvictMany(keys=keys):
                return self._table.invalidate(keys)
            case Flush():
                return self._table.flush()
            case Enable():
                return self._table.enable()
            case Disable():
                return self._table.disable()
            case Sweep():
                return self._table.sweep()
            case Sync():
                return self._table.stats()
            case _:
                return super().on_receive(message)

    def put(self, key: int, value: object, token: int, version: int | None = None) -> bool:
        """:class:`Put` as a proxy method; True if stored (actor thread)."""
        return self._table.store(key, value, token, version)

    def evict(self, key: int, version: int | None = None) -> int:
        """:class:`Evict` as a proxy method; entries removed (actor thread)."""
        return self._table.invalidate((key,), version)

    def evict_many(self, keys: Iterable[int]) -> int:
        """:class:`EvictMany` as a proxy method; entries removed (actor thread)."""
        return self._table.invalidate(keys)

    def flush(self) -> int:
        """:class:`Flush` as a proxy method; entries dropped (actor thread)."""
        return self._table.flush()

    def enable(self) -> None:
        """:class:`Enable` as a proxy method (actor thread)."""
        self._table.enable()

    def disable(self) -> None:
        """:class:`Disable` as a proxy method (actor thread)."""
        self._table.disable()

    def sweep(self) -> int:
        """:class:`Sweep` as a proxy method; entries evicted (actor thread)."""
        return self._table.sweep()

    def stats(self) -> CacheStats:
        """The table's counters (actor thread when called through a proxy)."""
        return self._table.stats()


class TokenCacheActor(CacheActor):
    """The bearer-token cache: a :class:`CacheActor` under a name of its own.

    Identical behaviour; the distinct class lets supervisors, metrics
    (``actors_alive{kind}``) and chaos tooling tell the token cache from
    the users cache.
    """
