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

Access lines are written straight to stderr with ``os.write``, not through
``logging``: they are on the hot path of every request, and the logging
machinery would cost more than the rest of the bookkeeping. The lines of
one turn of the event loop go out together (:class:`AccessLog`), in writes
of whole lines of at most PIPE_BUF bytes, so that a write is never
interleaved with another process's: one system call for many requests
under load, and a line is written at the latest when the loop turns. For
the same reason the line is formatted rather than serialised (every field
is either a number or drawn from a JSON-safe set: validated or generated
request ids, methods, route templates converted and encoded once per
route), the timestamp's seconds are formatted once a second, generated
request ids come from a per-process PRNG rather than ``os.urandom`` (they
must be unique, not secret), requests in flight are a set sampled into
the gauge rather than a gauge written twice per request, and the counts go
through :data:`app.metrics.TALLY` (per-thread, flushed every second).

Routes are labelled (in metrics and access lines alike) with the template
users read, ``/api/users/{user_id}``, not Falcon's converter syntax.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from typing import Any
from urllib.parse import unquote_to_bytes

import falcon
import orjson

from app import metrics
from app.logs import REQUEST_ID
from app.problems import Problem
from app.validation import has_control_or_format

__all__ = ["AccessLog", "RequestMiddleware", "route_template"]

_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._~:@/+=-]{1,128}")
# RFC 9110 5.5: a field value may hold HTAB but no other control character.
_FIELD_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Label values must come from a bounded set: any other method is "OTHER".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STDERR = 2
# A field of a Falcon route template, with a converter: "{user_id:int(min=1)}"
# (the field syntax of falcon.routing.compiled).
_FIELD_WITH_CONVERTER = re.compile(r"\{([^}:]*):[^}]*\}")


class RequestMiddleware:
    """Request id, metrics and access log for every request.

    Args:
        metrics_enabled: record Prometheus metrics.
        access_log: write one JSON line per request.
    """

    def __init__(self, *, metrics_enabled: bool = True, access_log: bool = True) -> None:
        self._metrics = metrics_enabled
        self._access_log = access_log
        self._log = AccessLog()
        self._pid = os.getpid()
        # Seeded from os.urandom when the middleware is built, i.e. after the fork.
        self._random = random.Random()
        self._stamp = (0, "")  # (Unix second, its ISO 8601 text), replaced whole
        # Falcon's template of the matched route -> (its label, the label in JSON).
        self._routes: dict[str | None, tuple[str, str]] = {}
        # prometheus_client's labels() takes a lock and hashes the label
        # values; the children for the few (method, route, status) triples a
        # service sees are looked up here instead.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    async def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        supplied = req.get_header("X-Request-ID")
        if supplied is not None and _SAFE_REQUEST_ID.fullmatch(supplied):
            request_id = supplied
        else:
            request_id = f"{self._random.getrandbits(128):032x}"
        req.context.request_id = request_id
        req.context.token = REQUEST_ID.set(request_id)
        req.context.started = time.perf_counter()
        if self._metrics:
            metrics.IN_FLIGHT.enter(req)
        # Refused only now, so that the answer is counted and logged with
        # a request id like any other.
        if supplied is not None and request_id is not supplied and _hostile(supplied):
            raise _malformed("X-Request-ID", "must be printable UTF-8 without control characters")
        query = req.query_string
        if query and not _clean_query(query):
            raise _malformed("query", "must be UTF-8 without control characters once decoded")

    async def process_response(self, req: falcon.Request, resp: falcon.Response,
                               resource: object, req_succeeded: bool) -> None:
        started = getattr(req.context, "started", None)
        if started is None:  # process_request did not run (should not happen)
            return
        elapsed = time.perf_counter() - started
        request_id: str = req.context.request_id
        resp.set_header("X-Request-ID", request_id)
        template = req.uri_template
        known = self._routes.get(template)
        if known is None:  # once per route: no regex on the hot path
            route = route_template(template)
            known = self._routes[template] = (route, orjson.dumps(route).decode())
        route, route_json = known
        status = resp.status_code
        method = req.method if req.method in _METHODS else "OTHER"
        if self._metrics:
            metrics.IN_FLIGHT.leave(req)
            self._count(method, route, status, elapsed)
        if self._access_log:
            line = (f'{{"time":"{self._timestamp()}","level":"info","logger":"usermgmt.access",'
                    f'"request_id":"{request_id}","method":"{method}","route":{route_json},'
                    f'"status":{status},"duration_ms":{elapsed * 1000:.3f},"pid":{self._pid}}}\n')
            self._log.write(line.encode())
        REQUEST_ID.reset(req.context.token)

    def _timestamp(self) -> str:
        """Now in ISO 8601 with milliseconds, UTC (as ``datetime.isoformat``)."""
        now = time.time()
        second = int(now)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{stamp[1]}.{int((now - second) * 1000):03d}+00:00"

    def _count(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.HTTP_REQUESTS.labels(method, route, str(status))
        metrics.TALLY.count(counter)
        hkey = (method, route)
        histogram = self._histograms.get(hkey)
        if histogram is None:
            histogram = self._histograms[hkey] = metrics.HTTP_DURATION.labels(method, route)
        metrics.TALLY.observe(histogram, elapsed)


class AccessLog:
    """Access lines gathered during one turn of the event loop, written together.

    A line is written at the latest when the loop has run the callbacks it
    had ready (``call_soon``), or at once outside a loop. Writes hold whole
    lines and at most :data:`PIPE_BUF` bytes: each is atomic on a pipe, so
    lines of several processes sharing stderr never mix.

    Args:
        fd: where to write (stderr).
    """

    PIPE_BUF = 4096

    def __init__(self, fd: int = _STDERR) -> None:
        self._fd = fd
        self._lines: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, line: bytes) -> None:
        if self._size + len(line) > self.PIPE_BUF:
            self.flush()
        self._lines.append(line)
        self._size += len(line)
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        lines, self._lines, self._size = self._lines, [], 0
        if lines:
            os.write(self._fd, b"".join(lines))


def route_template(uri_template: str | None) -> str:
    """The route as users read it, for labels and logs; ``"unmatched"`` for no route.

    ``/api/users/{user_id:int(min=1)}`` (Falcon's template, converter
    included) → ``/api/users/{user_id}`` (the path of the OpenAPI document).
    """
    if not uri_template:
        return "unmatched"
    return _FIELD_WITH_CONVERTER.sub(r"{\1}", uri_template)


def _hostile(value: str) -> bool:
    """NUL, control characters, or bytes that are not UTF-8 in a header value.

    Falcon hands header values over as latin-1 text, one character per byte.
    """
    if _FIELD_VALUE_CONTROL.search(value):
        return True
    try:
        value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return True
    return False


def _clean_query(query: str) -> bool:
    """Whether a raw query string decodes to UTF-8 without control or format characters."""
    try:
        decoded = unquote_to_bytes(query.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return not has_control_or_format(decoded)


def _malformed(field: str, message: str) -> Problem:
    return Problem(400, f"malformed request: {field} {message}", problem_type="malformed-request",
                   title="Bad Request", errors=[{"field": field, "message": message}])
