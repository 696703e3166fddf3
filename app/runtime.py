"""What one worker process runs: connections, the actor tree, the service.

Built after fork (a psycopg pool cannot cross a fork) and stopped when the
worker exits; tests build one against the test database.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import pykka
from psycopg_pool import ConnectionPool

from actors.cache import CacheHandle
from actors.change_listener import Coherence
from actors.worker_pool import WorkerPool
from app.config import Settings
from app.users_service import UsersService, UserView
from supervisors import SupervisorEvent
from supervisors.service_tree import CacheWiring, TreeConfig, start_service_tree

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)

# Give up reconnecting in the pool's background after this long and let
# the next request for a connection start afresh: psycopg_pool's own
# backoff doubles up to minutes, far too slow to notice a database that
# came back. DbWorkers keep asking, each with its own short backoff.
POOL_RECONNECT_TIMEOUT = 2.0


class Runtime:
    """The per-process actor system and the users service on top of it.

    Args:
        settings: the service's settings.
        database_url: libpq URL or conninfo of the database.
        on_give_up: what to do when the root supervisor gives up (the
            service exits the worker process; tests record it).
        event_hook: receives every supervisor event (metrics).
    """

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        *,
        on_give_up: Callable[[], None] | None = None,
        event_hook: Callable[[SupervisorEvent], None] | None = None,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self._on_give_up = on_give_up
        self._event_hook = event_hook
        self.connections: ConnectionPool | None = None
        self.workers = WorkerPool()
        self.root: pykka.ActorRef[Any] | None = None
        self.cache: CacheHandle[UserView] | None = (
            CacheHandle() if settings.cache_enabled else None
        )
        self.coherence = Coherence()
        self.users = UsersService(
            self.workers,
            checkout_timeout=settings.db_checkout_timeout,
            ask_timeout=settings.statement_timeout + 1.0,
            cache=self.cache,
            coherence=self.coherence,
        )

    def connection_kwargs(self) -> dict[str, Any]:
        """Options of every DbWorker connection."""
        statement_ms = int(self.settings.statement_timeout * 1000)
        return {
            "autocommit": True,
            # Each worker keeps its connection: prepare hot statements at once.
            "prepare_threshold": 0,
            "application_name": self.settings.application_name,
            "connect_timeout": max(1, int(self.settings.db_connect_timeout)),
            "options": f"-c statement_timeout={statement_ms} -c TimeZone=UTC",
        }

    def start(self) -> None:
        """Open the connection pool and start the supervision tree.

        Does not wait for the database: workers that cannot connect keep
        retrying, and requests get 503 until one can.
        """
        n = self.settings.db_workers
        self.connections = ConnectionPool(
            self.database_url,
            kwargs=self.connection_kwargs(),
            min_size=n,
            # One spare so a replacement worker need not wait for the
            # pool to discard its predecessor's broken connection.
            max_size=n + 1,
            open=False,
            name="usermgmt",
            timeout=self.settings.db_connect_timeout,
            reconnect_timeout=POOL_RECONNECT_TIMEOUT,
            check=ConnectionPool.check_connection,
        )
        self.connections.open(wait=False)
        cache = None
        if self.cache is not None:
            kwargs = self.connection_kwargs()
            cache = CacheWiring(
                handle=self.cache,
                coherence=self.coherence,
                conninfo=self.database_url,
                connect_kwargs={k: kwargs[k] for k in ("application_name", "connect_timeout")},
            )
        self.root = start_service_tree(
            TreeConfig(
                db_workers=n,
                connect_timeout=min(1.0, self.settings.db_connect_timeout),
                worker_shutdown=self.settings.statement_timeout,
                cache_ttl=self.settings.cache_ttl,
                cache_max_entries=self.settings.cache_max_entries,
            ),
            self.connections,
            self.workers,
            cache=cache,
            on_give_up=self._on_give_up,
            event_hook=self._event_hook,
        )

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until every DbWorker holds a connection and the cache is coherent."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.workers.stats().members >= self.settings.db_workers and (
                self.cache is None or self.coherence.is_coherent
            ):
                return True
            time.sleep(0.01)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the tree (children in reverse order), then close the pool."""
        root, self.root = self.root, None
        if root is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                root.stop(block=True, timeout=timeout)
        connections, self.connections = self.connections, None
        if connections is not None:
            connections.close(timeout=timeout)
