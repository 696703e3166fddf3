"""The service's supervision tree, assembled in one place.

::

    root (rest_for_one)
     └── db (one_for_one) ── DbWorker × N

A crashed DbWorker is replaced by a fresh one that joins the checkout pool
by itself. The db supervisor's intensity scales with the number of
workers: losing the database breaks every worker's connection at once,
which is one restart each, not a reason to give up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
from psycopg_pool import ConnectionPool

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


def start_service_tree(
    config: TreeConfig,
    connections: ConnectionPool,
    workers: WorkerPool,
    *,
    on_give_up: Callable[[], None] | None = None,
    event_hook: Callable[[SupervisorEvent], None] | None = None,
) -> pykka.ActorRef[Any]:
    """Start the tree and return the root supervisor's ref.

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
            },
            restart="permanent",
            shutdown=config.worker_shutdown,
            kill=workers.kill,
        )
        for n in range(1, config.db_workers + 1)
    ]
    return Supervisor.start(
        strategy="rest_for_one",
        intensity=config.root_intensity,
        period=config.root_period,
        name="root",
        on_give_up=on_give_up,
        event_hook=event_hook,
        children=[
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
        ],
    )
