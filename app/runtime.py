"""What one worker process runs: connections, the actor tree, the services.

Wiring only: it builds each part from the settings and hands them to each
other; what a part does lives with it (the tree in :mod:`app.tree`,
readiness in :mod:`app.resources.health`, metrics sampling in
:mod:`app.metrics`). Built after fork (a psycopg pool cannot cross a fork)
and stopped when the worker exits; tests build one against the test
database.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka
from psycopg_pool import ConnectionPool

from actors.cache import CacheHandle
from actors.change_listener import Coherence
from actors.worker_pool import WorkerPool
from app import metrics, tree
from app.config import POOL_SPARE_CONNECTIONS, Settings
from app.dashboard.service import Dashboard
from app.metrics import MetricsSampler
from app.passwords import Passwords
from app.resources.health import ReadinessCheck, readiness_checks
from app.sessions_service import LoginRateLimit, Principal, SessionsService
from app.users_service import UsersService, UserView
from app.worker_client import WorkerClient
from supervisors import SupervisorEvent

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
        event_hook: receives every supervisor event (in addition to the
            metrics, when ``instrumented``).
        instrumented: record Prometheus metrics for the actor system.
        passwords: the password hasher (tests pass cheaper Argon2
            parameters; the service uses argon2-cffi's defaults).
    """

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        *,
        on_give_up: Callable[[], None] | None = None,
        event_hook: Callable[[SupervisorEvent], None] | None = None,
        instrumented: bool = True,
        passwords: Passwords | None = None,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self._on_give_up = on_give_up
        self._event_hook = event_hook
        self._instrumented = instrumented
        self.draining = threading.Event()
        self._sampler: MetricsSampler | None = None
        self.connections: ConnectionPool | None = None
        self.workers = WorkerPool(
            on_wait=metrics.observe_checkout_wait if instrumented else None,
            on_timeout=metrics.DB_CHECKOUT_TIMEOUTS.inc if instrumented else None,
            queue_target=settings.queue_target,
            queue_interval=settings.queue_interval,
        )
        self.root: pykka.ActorRef[Any] | None = None
        self.cache: CacheHandle[UserView] | None = (
            CacheHandle() if settings.cache_enabled else None
        )
        self.coherence = Coherence()
        self.passwords = passwords or Passwords()
        self.users = UsersService(
            self.workers,
            checkout_timeout=settings.db_checkout_timeout,
            ask_timeout=settings.statement_timeout + 1.0,
            cache=self.cache,
            coherence=self.coherence,
            passwords=self.passwords,
        )
        # Bearer sessions get a cache of their own, kept coherent by the
        # same listener.
        self.tokens: CacheHandle[Principal] | None = (
            CacheHandle() if settings.token_cache_enabled else None
        )
        self.dashboard = Dashboard(
            root=lambda: self.root,
            pool=self.workers,
            caches={"users": self.cache, "tokens": self.tokens},
            coherence=self.coherence,
            directory=settings.dashboard_dir,
            chaos=settings.chaos_enabled,
            instrumented=instrumented,
        )
        self.sessions = SessionsService(
            WorkerClient(self.workers, settings.db_checkout_timeout,
                         settings.statement_timeout + 1.0),
            self.passwords,
            ttl=settings.session_ttl,
            rate_limit=LoginRateLimit(
                settings.login_rate_limit, settings.login_rate_window,
                settings.login_success_limit, settings.login_success_window,
                settings.known_address_ttl, settings.max_sessions),
            cache=self.tokens,
            coherence=self.coherence,
            on_login=metrics.count_login if instrumented else None,
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
            max_size=n + POOL_SPARE_CONNECTIONS,
            open=False,
            name="usermgmt",
            timeout=self.settings.db_connect_timeout,
            reconnect_timeout=POOL_RECONNECT_TIMEOUT,
            check=ConnectionPool.check_connection,
        )
        self.connections.open(wait=False)
        cache = None
        if self.settings.listens:
            kwargs = self.connection_kwargs()
            cache = tree.CacheWiring(
                handle=self.cache,
                coherence=self.coherence,
                conninfo=self.database_url,
                connect_kwargs={
                    "application_name": f"{self.settings.application_name}-listener",
                    "connect_timeout": kwargs["connect_timeout"],
                },
                token_handle=self.tokens,
            )
        self.root = tree.start_tree(
            tree.TreeConfig(
                db_workers=n,
                connect_timeout=min(1.0, self.settings.db_connect_timeout),
                worker_shutdown=self.settings.statement_timeout,
                cache_ttl=self.settings.cache_ttl,
                cache_max_entries=self.settings.cache_max_entries,
            ),
            self.connections,
            self.workers,
            cache=cache,
            on_query=metrics.observe_query if self._instrumented else None,
            on_db_error=metrics.count_db_error if self._instrumented else None,
            on_give_up=self._on_give_up,
            event_hook=self._supervisor_event,
        )
        if self._instrumented:
            metrics.declare_known_series(self.root)
            users_cache = self.cache
            gauges = metrics.RuntimeGauges(
                self.workers, tree.ACTOR_KINDS,
                cache_size=(lambda: len(users_cache.table)) if users_cache is not None else None,
                counters=[
                    metrics.CacheCounters(handle, requests, evictions)
                    for handle, requests, evictions in (
                        (self.cache, metrics.CACHE_REQUESTS, metrics.CACHE_EVICTIONS),
                        (self.tokens, metrics.TOKEN_CACHE_REQUESTS, None))
                    if handle is not None
                ])
            self._sampler = MetricsSampler(gauges.sample)
            self._sampler.start()
        self.dashboard.start()

    def _supervisor_event(self, event: SupervisorEvent) -> None:
        self.dashboard.journal.record(event)
        if self._instrumented:
            metrics.record_supervisor_event(event)
        if self._event_hook is not None:
            self._event_hook(event)

    def sample_now(self) -> None:
        """Refresh this process's sampled gauges (right before a scrape)."""
        if self._sampler is not None:
            self._sampler.sample_now()

    def chaos_victims(self, kind: str) -> list[tuple[str, pykka.ActorRef[Any]]]:
        """Running actors of ``kind`` (see :data:`app.tree.CHAOS_KINDS`); blocks briefly."""
        return tree.victims(self.root, kind)

    def readiness_checks(self) -> list[ReadinessCheck]:
        """What ``/readyz`` verifies: not draining, the tree up, the database reached."""
        return readiness_checks(self.draining, lambda: tree.tree_problem(self.root),
                                self.users.ping)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until every DbWorker holds a connection and the caches are coherent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.workers.stats().members >= self.settings.db_workers and (
                not self.settings.listens or self.coherence.is_coherent
            ):
                return True
            time.sleep(0.01)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the tree (children in reverse order), then close the pool."""
        self.draining.set()
        self.dashboard.stop()
        root, self.root = self.root, None
        if root is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                root.stop(block=True, timeout=timeout)
        # Last, so its final flush has what the actors counted while stopping.
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.stop()
        connections, self.connections = self.connections, None
        if connections is not None:
            connections.close(timeout=timeout)
        self.passwords.slots.close()
