"""The service's supervision tree, assembled in one place.

::

    root (rest_for_one)
     ├── db (one_for_one) ── DbWorker × N
     ├── cache             (owns the table; only it writes)
     ├── token_cache       (bearer sessions; same kind of actor, own table)
     └── listener          (LISTEN users_changed; evicts from both caches)

A crashed DbWorker is replaced by a fresh one that joins the checkout pool
by itself. ``rest_for_one`` at the root: a cache restart also restarts the
listener, whose (re)start flushes the fresh cache and marks it coherent; a
listener restart alone leaves the cache actor running but flushes it. The
token cache sits between the two for the same reason.

The db supervisor's intensity scales with the number of workers: losing
the database breaks every worker's connection at once, which is one
restart each, not a reason to give up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
from psycopg_pool import ConnectionPool

from actors.cache import CacheActor, CacheHandle, TokenCacheActor
from actors.change_listener import ChangeListener, Coherence
from actors.db_worker import DbWorker
from actors.worker_pool import WorkerPool
from supervisors import ChildSpec, Supervisor, SupervisorEvent

__all__ = ["TreeConfig", "start_service_tree"]


@dataclass(frozen=True, slots=True)
class TreeConfig:
    """Sizes and limits of the service's tree."""

    db_workers: int = 4
    connect_timeout: float = 1.0
    worker_shutdown: float = 5.0
    # Restarts tolerated per worker within the period before the db
    # supervisor gives up (and escalates to the root).
    db_restarts_per_worker: int = 25
    db_period: float = 5.0
    root_intensity: int = 3
    root_period: float = 5.0
    cache_ttl: float = 60.0
    cache_max_entries: int = 100_000


@dataclass(frozen=True, slots=True)
class CacheWiring:
    """What the caches and their listener need: the process's handles and flag.

    ``token_handle``, when given, gets a supervised token cache of its own,
    kept coherent by the same listener.
    """

    handle: CacheHandle[Any]
    coherence: Coherence
    conninfo: str
    connect_kwargs: dict[str, Any]
    token_handle: CacheHandle[Any] | None = None


def start_service_tree(
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
            id=f"db_worker_{n}",
            actor_class=DbWorker,
            kwargs={
                "connections": connections,
                "workers": workers,
                "connect_timeout": config.connect_timeout,
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
            id="db",
            actor_class=Supervisor,
            kwargs={
                "strategy": "one_for_one",
                "intensity": config.db_restarts_per_worker * config.db_workers,
                "period": config.db_period,
                "name": "db",
                "children": db_children,
            },
            shutdown=config.worker_shutdown + 1.0,
        ),
    ]
    if cache is not None:
        children += [
            ChildSpec(
                id="cache",
                actor_class=CacheActor,
                kwargs={
                    "handle": cache.handle,
                    "ttl": config.cache_ttl,
                    "max_entries": config.cache_max_entries,
                },
                shutdown=2.0,
            ),
        ]
        if cache.token_handle is not None:
            children.append(ChildSpec(
                id="token_cache",
                actor_class=TokenCacheActor,
                kwargs={
                    "handle": cache.token_handle,
                    "ttl": config.cache_ttl,
                    "max_entries": config.cache_max_entries,
                },
                shutdown=2.0,
            ))
        children.append(ChildSpec(
            id="listener",
            actor_class=ChangeListener,
            kwargs={
                "conninfo": cache.conninfo,
                "cache": cache.handle,
                "coherence": cache.coherence,
                "connect_kwargs": cache.connect_kwargs,
                "token_cache": cache.token_handle,
            },
            shutdown=2.0,
        ))
    return Supervisor.start(
        strategy="rest_for_one",
        intensity=config.root_intensity,
        period=config.root_period,
        name="root",
        on_give_up=on_give_up,
        event_hook=event_hook,
        children=children,
    )
