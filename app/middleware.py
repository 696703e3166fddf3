"""Per-request bookkeeping: request id, RED metrics, one JSON access line.

One middleware does all three so a request pays for one clock read pair
and one pass over the response. The request id is accepted from the
client's ``X-Request-ID`` when it is safe (at most 128 of
``A-Z a-z 0-9 . _ ~ : @ / + = -``), otherwise generated; it is echoed in
the response, put in problem+json ``instance``, and added to every log
line written while the request is handled.

Hostile input is refused here, before any resource sees it: an
``X-Request-ID`` with NUL or control characters or bytes that are not
UTF-8 (merely unusual ids are replaced, not refused), and a query string
whose percent-decoded bytes are not UTF-8 or hold control characters
(Falcon itself would decode them with replacement characters) → 400.

The access line is written straight to stderr with one ``os.write`` (a
line under PIPE_BUF is never interleaved with another process's), not
through ``logging``: it is on the hot path of every request, and the
logging machinery would cost more than the rest of the bookkeeping.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

import falcon
import orjson

from app import metrics
from app.logs import REQUEST_ID
from app.problems import Problem

__all__ = ["RequestMiddleware"]

_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._~:@/+=-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Label values must come from a bounded set: any other method is "OTHER".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STDERR = 2


class RequestMiddleware:
    """Request id, metrics and access log for every request.

    Args:
        metrics_enabled: record Prometheus metrics.
        access_log: write one JSON line per request.
    """

    def __init__(self, *, metrics_enabled: bool = True, access_log: bool = True) -> None:
        self._metrics = metrics_enabled
        self._access_log = access_log
        self._pid = os.getpid()
        # prometheus_client's labels() takes a lock and hashes the label
        # values; the children for the few (method, route, status) triples a
        # service sees are looked up here instead.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        supplied = req.get_header("X-Request-ID")
        if supplied is not None and _SAFE_REQUEST_ID.fullmatch(supplied):
            request_id = supplied
        else:
            request_id = uuid.uuid4().hex
        req.context.request_id = request_id
        req.context.token = REQUEST_ID.set(request_id)
        req.context.started = time.perf_counter()
        if self._metrics:
            metrics.HTTP_IN_FLIGHT.inc()
        # Refused only now, so that the answer is counted and logged with
        # a request id like any other.
        if supplied is not None and request_id is not supplied and _hostile(supplied):
            raise _malformed("X-Request-ID", "must be printable UTF-8 without control characters")
        query = req.query_string
        if query and not _clean_query(query):
            raise _malformed("query", "must be UTF-8 without control characters once decoded")

    def process_response(self, req: falcon.Request, resp: falcon.Response,
                         resource: object, req_succeeded: bool) -> None:
        started = getattr(req.context, "started", None)
        if started is None:  # process_request did not run (should not happen)
            return
        elapsed = time.perf_counter() - started
        request_id: str = req.context.request_id
        resp.set_header("X-Request-ID", request_id)
        route = req.uri_template or "unmatched"
        status = resp.status_code
        method = req.method if req.method in _METHODS else "OTHER"
        if self._metrics:
            metrics.HTTP_IN_FLIGHT.dec()
            self._count(method, route, status, elapsed)
        if self._access_log:
            line = orjson.dumps({
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "info",
                "logger": "usermgmt.access",
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "pid": self._pid,
            }, option=orjson.OPT_APPEND_NEWLINE)
            os.write(_STDERR, line)
        REQUEST_ID.reset(req.context.token)

    def _count(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.HTTP_REQUESTS.labels(method, route, str(status))
        counter.inc()
        hkey = (method, route)
        histogram = self._histograms.get(hkey)
        if histogram is None:
            histogram = self._histograms[hkey] = metrics.HTTP_DURATION.labels(method, route)
        histogram.observe(elapsed)


def _hostile(value: str) -> bool:
    """NUL, control characters, or bytes that are not UTF-8 in a header value.

    WSGI hands header values over as latin-1 text, one character per byte.
    """
    if _CONTROL.search(value):
        return True
    try:
        value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return True
    return False


def _clean_query(query: str) -> bool:
    """Whether a raw query string decodes to UTF-8 without control characters."""
    try:
        decoded = unquote_to_bytes(query.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return not _CONTROL.search(decoded)


def _malformed(field: str, message: str) -> Problem:
    return Problem(400, f"malformed request: {field} {message}", problem_type="malformed-request",
                   title="Bad Request", errors=[{"field": field, "message": message}])
