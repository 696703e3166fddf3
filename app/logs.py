"""Structured logs: one JSON object per line on stderr.

Fields passed with ``extra=`` (event, supervisor, child, request_id, ...)
become keys of the line. Nothing here logs request bodies.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["REQUEST_ID", "JsonFormatter", "RequestContextFilter", "configure_logging"]

# The id of the request this thread is handling (set by the request middleware).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "usermgmt_request_id", default=None
)

# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class RequestContextFilter(logging.Filter):
    """Adds the current request id to every log record made during a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process or os.getpid(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # psycopg_pool narrates every checkout at INFO.
    logging.getLogger("psycopg.pool").setLevel(max(logging.WARNING, root.level))
