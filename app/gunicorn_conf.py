"""Gunicorn settings and server hooks for ``usermgmt serve``.

Also usable as ``gunicorn -c python:app.gunicorn_conf 'app.wsgi:get_app()'``.
The actor tree lives in each worker: built by ``get_app`` after fork,
stopped in ``worker_exit`` so no actor thread or connection outlives it.
"""

from __future__ import annotations

import logging
from typing import Any

from app import wsgi

__all__ = ["hooks"]

logger = logging.getLogger(__name__)


def worker_exit(server: Any, worker: Any) -> None:
    """Stop the worker's actors after its in-flight requests finished."""
    wsgi.stop_runtime()


def hooks() -> dict[str, Any]:
    """The server hooks, as gunicorn settings."""
    return {"worker_exit": worker_exit}


worker_class = "gthread"
graceful_timeout = 30
