"""Gunicorn settings and server hooks for ``usermgmt serve``.

Also usable as ``gunicorn -c python:app.gunicorn_conf 'app.asgi:get_app()'``.
The worker class is :class:`app.edge.Worker` (an asyncio worker; see
:mod:`app.edge`). The actor tree lives in each worker: built by
``get_app`` after fork, stopped in ``worker_exit`` so no actor thread or
connection outlives it.

On SIGTERM a worker first turns not-ready (``/readyz`` answers 503, so a
load balancer stops sending), finishes its in-flight requests (up to
``graceful_timeout``), and only then stops its actors.

The master never imports the application (the hooks import it lazily in
the worker): in multiprocess mode every metric the master created would
show up in /metrics as a phantom process.
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

__all__ = ["control_socket", "hooks"]

logger = logging.getLogger(__name__)

worker_class = "app.edge.Worker"
graceful_timeout = 30
# Seconds an idle keep-alive connection stays open.
keepalive = 5
# Hostile input stops at the door: gunicorn answers 400 (or 431/414)
# before the application sees a request line, a header or a header count
# beyond these. The API needs short lines and a dozen small headers; the
# largest legitimate one is Authorization (~50 bytes).
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 4096
# gunicorn 25+ binds a control socket at one path per user by default
# (~/.gunicorn/gunicorn.ctl): every server of that user would share it,
# the last one started taking it over and the first one stopped deleting
# it for the others. Reload and stop by signal instead (HUP, TERM).
control_socket_disable = True


def on_starting(server: Any) -> None:
    """In the master, before any worker is forked: the host's shared stamp tables.

    Every worker inherits the same memory (see :mod:`actors.stamps`), which
    is what makes a write visible to every worker of the host at once. The
    module imports nothing but the standard library.
    """
    from actors import stamps

    stamps.shared()


def post_worker_init(worker: Any) -> None:
    """Freeze the start-up heap.

    Everything built so far (modules, the app, the actor tree) lives as
    long as the worker: ``gc.freeze()`` takes it out of the collector's
    sight, so a full collection no longer walks a few hundred thousand
    objects that can never be garbage (a pause of tens of milliseconds, in
    whichever request happened to allocate at the time).
    """
    gc.freeze()


def worker_exit(server: Any, worker: Any) -> None:
    """Stop the worker's actors after its in-flight requests finished."""
    from app import asgi

    asgi.stop_runtime()


def child_exit(server: Any, worker: Any) -> None:
    """In the master: drop a dead worker's live gauges from /metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def control_socket() -> dict[str, Any]:
    """The control-socket setting, as gunicorn settings (none before gunicorn 25.1)."""
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        return {"control_socket_disable": control_socket_disable}
    return {}


def hooks() -> dict[str, Any]:
    """The server hooks, as gunicorn settings."""
    return {
        "on_starting": on_starting,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
    }
