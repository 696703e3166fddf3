"""The ASGI entry point: ``gunicorn -c python:app.gunicorn_conf 'app.asgi:get_app()'``.

``get_app`` runs in each gunicorn worker after fork (never with
``--preload``): it reads the environment, applies pending migrations
(under an advisory lock, so workers and hosts starting together do not
race), starts this process's actor tree and returns the Falcon ASGI app,
served by :class:`app.edge.Worker`. The gunicorn hooks in
:mod:`app.gunicorn_conf` stop the tree when the worker exits.
"""

from __future__ import annotations

import logging
import os

import falcon.asgi
import psycopg

from app.app import create_app
from app.config import ConfigError, Settings
from app.logs import configure_logging
from app.migrations import apply_migrations
from app.runtime import Runtime

__all__ = ["current_runtime", "get_app"]

logger = logging.getLogger(__name__)

# Exit status of a worker whose root supervisor gave up: not gunicorn's
# 3 or 4, which would make the master halt instead of forking a new worker.
GIVE_UP_EXIT_STATUS = 70

_runtime: Runtime | None = None


def current_runtime() -> Runtime | None:
    """This process's runtime, once :func:`get_app` has built it."""
    return _runtime


def _give_up() -> None:
    logger.critical(
        "root supervisor gave up; exiting so that gunicorn starts a fresh worker",
        extra={"event": "worker_give_up"},
    )
    logging.shutdown()
    os._exit(GIVE_UP_EXIT_STATUS)


def get_app() -> falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]:
    """Build this process's runtime and the Falcon app around it.

    Raises:
        ConfigError: if the configuration is unusable (no DATABASE_URL).
    """
    global _runtime  # noqa: PLW0603 - one runtime per worker process, by design
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    if settings.database_url is None:
        raise ConfigError(
            "DATABASE_URL is not set: point it at PostgreSQL, or run `usermgmt serve`, "
            "which starts the embedded database"
        )
    if settings.migrate_on_start:
        try:
            apply_migrations(settings.database_url, connect_timeout=settings.db_connect_timeout)
        except psycopg.OperationalError as exc:
            # A worker forked while the database is down must still come up
            # (and answer 503) rather than make the master halt.
            logger.error("could not apply migrations: %s", exc, extra={"event": "migrate_failed"})
    if _runtime is not None:
        _runtime.stop()
    _runtime = Runtime(settings, settings.database_url, on_give_up=_give_up,
                       instrumented=settings.metrics_enabled)
    _runtime.start()
    metrics_port = int(settings.metrics_bind.rpartition(":")[2]) if settings.metrics_bind else None
    return create_app(
        _runtime.users,
        _runtime.sessions,
        readiness=_runtime.readiness_checks(),
        chaos=_runtime.chaos_victims if settings.chaos_enabled else None,
        dashboard=_runtime.dashboard,
        before_scrape=_runtime.sample_now,
        retry_after=settings.retry_after,
        metrics_enabled=settings.metrics_enabled,
        access_log=settings.access_log and settings.log_level in ("DEBUG", "INFO"),
        metrics_port=metrics_port,
        trusted_proxies=settings.trusted_proxies,
    )


def stop_runtime(timeout: float = 10.0) -> None:
    """Stop this process's actor tree and pool (gunicorn ``worker_exit``)."""
    global _runtime
    runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.stop(timeout=timeout)
