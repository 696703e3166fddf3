"""The service's supervision tree: its shape, its child ids, its actor kinds.

::

    root (rest_for_one)
     ├── db (one_for_one) ── db_worker_1 … db_worker_N   (DbWorker)
     ├── cache             users cache (owns the table; only it writes)
     ├── token_cache       bearer sessions; same kind of actor, own table
     └── listener          LISTEN users_changed; evicts from both caches

Everything that names a part of the tree — child ids, the ``kind`` label
of actor metrics, which actors the chaos switch may kill, what readiness
looks at — is read from here (the supervision library itself knows nothing
of the service).

A crashed DbWorker is replaced by a fresh one that joins the checkout pool
by itself. ``rest_for_one`` at the root: a cache restart also restarts the
listener, whose (re)start flushes the fresh caches and marks them coherent;
a listener restart alone leaves the cache actors running but flushes them.

The db supervisor's intensity scales with the number of workers: losing
the database breaks every worker's connection at once, which is one
restart each, not a reason to give up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pykka
from psycopg_pool import ConnectionPool

from actors.cache import CacheActor, CacheHandle, TokenCacheActor
from actors.cache_table import DEFAULT_MAX_ENTRIES, DEFAULT_TTL
from actors.change_listener import ChangeListener, Coherence
from actors.db_worker import DbWorker
from actors.worker_pool import WorkerPool
from supervisors import Backoff, ChildSpec, DynamicSupervisor, Supervisor, SupervisorEvent

__all__ = [
    "ACTOR_KINDS",
    "CACHE",
    "CHAOS_KINDS",
    "DB",
    "LISTENER",
    "ROOT",
    "TOKEN_CACHE",
    "CacheWiring",
    "TreeConfig",
    "db_worker_id",
    "start_tree",
    "tree_problem",
    "victims",
]

ROOT: Final = "root"
DB: Final = "db"
CACHE: Final = "cache"
TOKEN_CACHE: Final = "token_cache"  # noqa: S105 - a child id, not a secret
LISTENER: Final = "listener"


def db_worker_id(n: int) -> str:
    """The child id of the ``n``-th DbWorker (from 1)."""
    return f"db_worker_{n}"


ACTOR_KINDS: Final[dict[type[pykka.Actor], str]] = {
    DbWorker: "db_worker",
    CacheActor: "cache",
    TokenCacheActor: "token_cache",
    ChangeListener: "listener",
    Supervisor: "supervisor",
    DynamicSupervisor: "supervisor",
}
"""Actor class -> the ``kind`` label of actor metrics (anything else: ``other``)."""

CHAOS_KINDS: Final = ("db_worker", "cache", "listener", "supervisor", "any")
"""What the chaos switch may be asked to kill; ``any`` picks among all of them."""


RECONNECT: Final = Backoff(min_delay=0.05, max_delay=1.0)
"""Jittered exponential delays, 50 ms doubling up to 1 s, between connection attempts."""


@dataclass(frozen=True, slots=True)
class TreeConfig:
    """Sizes and limits of the service's tree (the runtime derives them from Settings)."""

    db_workers: int
    connect_timeout: float = 1.0
    worker_shutdown: float = 5.0
    # Restarts tolerated per worker within the period before the db
    # supervisor gives up (and escalates to the root).
    db_restarts_per_worker: int = 25
    db_period: float = 5.0
    root_intensity: int = 3
    root_period: float = 5.0
    cache_ttl: float = DEFAULT_TTL
    cache_max_entries: int = DEFAULT_MAX_ENTRIES
    # Between attempts to (re)connect while the database cannot be reached:
    # DbWorkers and the change listener stay up and try again.
    reconnect: Backoff = RECONNECT


@dataclass(frozen=True, slots=True)
class CacheWiring:
    """What the caches and their listener need: the process's handles and flag.

    Each handle given gets a supervised cache actor of its own, and the
    listener keeps them coherent; with neither there is no listener.
    """

    handle: CacheHandle[Any] | None
    coherence: Coherence
    conninfo: str
    connect_kwargs: dict[str, Any]
    token_handle: CacheHandle[Any] | None = None


def start_tree(
    config: TreeConfig,
    connections: ConnectionPool,
    workers: WorkerPool,
    *,
    cache: CacheWiring | None = None,
    on_query: Callable[[str, float], None] | None = None,
    on_db_error: Callable[[str], None] | None = None,
    on_give_up: Callable[[], None] | None = None,
    event_hook: Callable[[SupervisorEvent], None] | None = None,
) -> pykka.ActorRef[Any]:
    """Start the tree and return the root supervisor's ref.

    Without ``cache`` the tree has only the database branch.

    Raises:
        supervisors.StartError: if a child fails to start.
    """
    db_children = [
        ChildSpec(
            id=db_worker_id(n),
            actor_class=DbWorker,
            kwargs={
                "connections": connections,
                "workers": workers,
                "connect_timeout": config.connect_timeout,
                "reconnect_delay": config.reconnect.delay,
                "on_query": on_query,
                "on_error": on_db_error,
            },
            restart="permanent",
            shutdown=config.worker_shutdown,
            kill=workers.kill,
        )
        for n in range(1, config.db_workers + 1)
    ]
    children = [
        ChildSpec(
            id=DB,
            actor_class=Supervisor,
            kwargs={
                "strategy": "one_for_one",
                "intensity": config.db_restarts_per_worker * config.db_workers,
                "period": config.db_period,
                "name": DB,
                "children": db_children,
            },
            shutdown=config.worker_shutdown + 1.0,
        ),
    ]
    if cache is not None and (cache.handle is not None or cache.token_handle is not None):
        for child_id, actor_class, handle in ((CACHE, CacheActor, cache.handle),
                                              (TOKEN_CACHE, TokenCacheActor, cache.token_handle)):
            if handle is not None:
                children.append(ChildSpec(
                    id=child_id,
                    actor_class=actor_class,
                    kwargs={"handle": handle, "ttl": config.cache_ttl,
                            "max_entries": config.cache_max_entries},
                    shutdown=2.0,
                ))
        children.append(ChildSpec(
            id=LISTENER,
            actor_class=ChangeListener,
            kwargs={
                "conninfo": cache.conninfo,
                "cache": cache.handle,
                "coherence": cache.coherence,
                "connect_kwargs": cache.connect_kwargs,
                "reconnect_delay": config.reconnect.delay,
                "token_cache": cache.token_handle,
            },
            shutdown=2.0,
        ))
    return Supervisor.start(
        strategy="rest_for_one",
        intensity=config.root_intensity,
        period=config.root_period,
        name=ROOT,
        on_give_up=on_give_up,
        event_hook=event_hook,
        children=children,
    )


def _children(ref: pykka.ActorRef[Any]) -> dict[str, pykka.ActorRef[Any] | None]:
    return {child_id: child for child_id, child, _ in ref.proxy().which_children().get(timeout=1.0)}


def victims(root: pykka.ActorRef[Any] | None, kind: str) -> list[tuple[str, pykka.ActorRef[Any]]]:
    """Running actors of ``kind`` (one of :data:`CHAOS_KINDS`), as ``(child id, ref)``.

    Blocks for up to a second per supervisor asked: call it off the event loop.
    """
    if root is None:
        return []
    try:
        top = _children(root)
        db = top.get(DB)
        workers = [] if db is None else list(_children(db).items())
    except (pykka.ActorDeadError, pykka.Timeout):
        return []
    by_kind: dict[str, list[tuple[str, pykka.ActorRef[Any] | None]]] = {
        "db_worker": workers,
        "cache": [(CACHE, top.get(CACHE))],
        "listener": [(LISTENER, top.get(LISTENER))],
        "supervisor": [(DB, db)],
    }
    chosen = ([v for group in by_kind.values() for v in group] if kind == "any"
              else by_kind.get(kind, []))
    return [(c, r) for c, r in chosen if r is not None and r.is_alive()]


def tree_problem(root: pykka.ActorRef[Any] | None) -> str | None:
    """What is wrong with the tree's top level, or None when all of it runs.

    Blocks for up to a second: call it off the event loop.
    """
    if root is None or not root.is_alive():
        return "the root supervisor is not running"
    try:
        children = _children(root)
    except (pykka.ActorDeadError, pykka.Timeout):
        return "the root supervisor does not answer"
    down = [child_id for child_id, ref in children.items() if ref is None or not ref.is_alive()]
    return f"not running: {', '.join(down)}" if down else None
