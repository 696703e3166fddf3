"""The request edge: gunicorn's master, an asyncio worker, a guarded HTTP parser.

gunicorn's master forks and supervises the worker processes (the outermost
supervisor, as before). Each worker is uvicorn's gunicorn worker running
the Falcon ASGI app on uvloop with httptools' C parser: a connection costs
a small object and a coroutine while a request is handled, not a thread,
so slow or silent clients cannot starve the others (chosen by measurement,
see ``perf/results/edge.md``).

httptools enforces no limit and no timeout of its own, so
:class:`EdgeProtocol` adds what gunicorn's own parser had, and what an
event loop needs against slow clients:

- **header time**: the request line and headers must arrive within
  ``USERMGMT_HEADER_TIMEOUT`` seconds of the connection opening or of the
  request's first byte; a connection that sends nothing is closed then, one
  that sent part of a request gets 408;
- **body time**: a declared body must arrive within
  ``USERMGMT_BODY_TIMEOUT`` seconds after the headers, else 408;
- **sizes**: request line at most ``limit_request_line`` bytes (414), at
  most ``limit_request_fields`` headers of at most
  ``limit_request_field_size`` bytes each (431), and the whole head bounded
  accordingly (431), checked as bytes arrive;
- every refusal is ``application/problem+json`` and closes the connection;
  a malformed request is a 400 of the same form.

Deadlines are plain numbers on each connection, checked by one sweep per
second per worker process: a request pays two float assignments, not
timers.

:class:`Worker` adds the service's process rules on top of uvicorn's: on
SIGTERM the runtime turns not-ready *first* (``/readyz`` 503, so a load
balancer stops sending), then in-flight requests finish (up to gunicorn's
``graceful_timeout``) and the process returns normally through gunicorn's
``worker_exit`` hook, which stops the actors; a worker whose master has
died stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

__all__ = ["EdgeLimits", "EdgeProtocol", "Worker"]

logger = logging.getLogger(__name__)

_INF = float("inf")
_PROBLEM_TYPE_BASE = "urn:usermgmt:problem:"
# How often each worker process looks for connections past their deadline.
SWEEP_INTERVAL = 1.0
# How long a stopping worker keeps an idle kept-alive connection open for a
# request its client may already be sending (gunicorn's gthread: the same).
STOP_KEEPALIVE_LINGER = 2.0


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What a client may send, and how slowly."""

    header_timeout: float = 10.0
    body_timeout: float = 15.0
    limit_request_line: int = 4094
    limit_request_fields: int = 50
    limit_request_field_size: int = 4096

    @property
    def max_head_bytes(self) -> int:
        """An upper bound of a request head within the other limits."""
        return self.limit_request_line + 4 + self.limit_request_fields * (
            self.limit_request_field_size + 4) + 2


def problem_response(status: int, reason: str, problem_type: str, detail: str) -> bytes:
    """A complete HTTP/1.1 problem+json response that closes the connection."""
    body = orjson.dumps({"type": _PROBLEM_TYPE_BASE + problem_type, "title": reason,
                         "status": status, "detail": detail})
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class _Refuse(Exception):
    """Raised in a parser callback to stop parsing and answer ``response``."""

    def __init__(self, response: bytes) -> None:
        super().__init__()
        self.response = response


_LINE_TOO_LONG = problem_response(
    414, "URI Too Long", "request-line-too-long", "the request line is too long")
_TOO_MANY_FIELDS = problem_response(
    431, "Request Header Fields Too Large", "header-fields-too-large",
    "too many header fields")
_FIELD_TOO_LARGE = problem_response(
    431, "Request Header Fields Too Large", "header-fields-too-large",
    "a header field is too large")
_HEAD_TOO_LARGE = problem_response(
    431, "Request Header Fields Too Large", "header-fields-too-large",
    "the request head is too large")
_MALFORMED = problem_response(
    400, "Bad Request", "malformed-request", "the request is not valid HTTP/1.1")
_HEADER_TIMEOUT = problem_response(
    408, "Request Timeout", "request-timeout", "the request head took too long to arrive")
_IDLE = b"idle"  # an idle keep-alive connection: closed without a word, never sent
_BODY_TIMEOUT = problem_response(
    408, "Request Timeout", "request-timeout", "the request body took too long to arrive")


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits and deadlines above.

    Use :meth:`with_limits` to get a subclass bound to a set of limits.
    """

    limits: ClassVar[EdgeLimits] = EdgeLimits()

    @classmethod
    def with_limits(cls, limits: EdgeLimits) -> type[EdgeProtocol]:
        return type("EdgeProtocol", (cls,), {"limits": limits})

    # -- connection ---------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.limits.header_timeout
        self._phase_timeout: bytes | None = _HEADER_TIMEOUT
        self._head_bytes = 0
        self._in_head = True
        self._received = False
        self._url_bytes = 0
        self._has_body = False
        self._stopping = False
        _Sweeper.watch(self.loop, self.connections)

    def shutdown(self) -> None:
        """The worker stops (SIGTERM, a HUP reload): finish, then close.

        uvicorn closes an idle kept-alive connection at once, resetting a
        request its client sent meanwhile on a connection it had every
        reason to reuse. Instead it lingers: a request arriving within
        :data:`STOP_KEEPALIVE_LINGER` is answered, with ``Connection:
        close``; a connection still idle then is closed.
        """
        self._stopping = True
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(STOP_KEEPALIVE_LINGER, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        if not self.transport.is_closing() and (
                self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self._received = True
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._answer_and_close(_HEAD_TOO_LARGE)
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            super().data_received(b"")  # uvicorn's own upgrade handling (refused: no websockets)
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__
            self._answer_and_close(cause.response if isinstance(cause, _Refuse) else _MALFORMED)

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(_MALFORMED)

    # -- parser callbacks -----------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._url_bytes = 0
        self._has_body = False
        if self._phase_timeout is not _HEADER_TIMEOUT:
            self.deadline = self.loop.time() + self.limits.header_timeout
            self._phase_timeout = _HEADER_TIMEOUT

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.limit_request_line:
            raise _Refuse(_LINE_TOO_LONG)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self.limits.limit_request_fields:
            raise _Refuse(_TOO_MANY_FIELDS)
        if len(name) + len(value) + 2 > self.limits.limit_request_field_size:
            raise _Refuse(_FIELD_TOO_LARGE)
        name = name.lower()
        if name in (b"content-length", b"transfer-encoding"):
            self._has_body = True
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._has_body:
            self.deadline = self.loop.time() + self.limits.body_timeout
            self._phase_timeout = _BODY_TIMEOUT
        else:
            self.deadline = _INF
            self._phase_timeout = None
        # The request's cycle writes through a transport that sends the
        # response head with the first part of the body: one write (one
        # system call, one TCP segment) per response instead of two.
        transport = self.transport
        held = _HeadWithBody(transport)
        self.transport = held  # type: ignore[assignment]
        try:
            super().on_headers_complete()
        finally:
            self.transport = transport
        cycle = self.cycle
        if cycle is not None and cycle.transport is held:  # type: ignore[comparison-overlap]
            # A response without a body part (to HEAD) is complete all the same.
            cycle.on_response = held.flushing(cycle.on_response)
            if self._stopping:
                cycle.keep_alive = False  # the last request on this connection

    def on_message_complete(self) -> None:
        self.deadline = _INF
        self._phase_timeout = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # uvicorn's, except that an idle keep-alive connection gets a
        # deadline for the sweep instead of a timer of its own.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.deadline = self.loop.time() + self.timeout_keep_alive
            self._phase_timeout = _IDLE

    # -- deadlines ------------------------------------------------------

    def expire(self, now: float) -> None:
        """Called by the sweep: end the connection if its phase overran."""
        if self.deadline > now or self.transport.is_closing():
            return
        cycle = self.cycle
        if self._phase_timeout is _IDLE or (
                not self._received and self._phase_timeout is _HEADER_TIMEOUT):
            self.transport.close()  # idle, or it never said anything: nobody to answer
        elif cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()
        elif self._phase_timeout is not None:
            self._answer_and_close(self._phase_timeout)
        self.deadline = _INF

    def _answer_and_close(self, response: bytes) -> None:
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(response)
            if cycle is not None:
                # The app must not answer on a connection that is gone.
                cycle.response_complete = cycle.disconnected = True
                cycle.message_event.set()
        self.transport.close()


class _HeadWithBody:
    """A request's view of its connection that holds the response head for the body.

    uvicorn writes a response's status line and headers, then its body, as
    two writes. This holds the first (non-informational) write and sends it
    with the next one, or when the connection is closed. Everything else
    goes straight to the connection.
    """

    __slots__ = ("_held", "_passing", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._passing = False

    def write(self, data: bytes) -> None:
        if self._passing:
            self._transport.write(data)
        elif self._held is not None:
            self._passing = True
            self._transport.write(self._held + data)
            self._held = None
        elif data.startswith(b"HTTP/1.1 1"):  # 100 Continue: the client waits for it
            self._transport.write(data)
        else:
            self._held = data

    def flush(self) -> None:
        """Send what is held (a response without a body part, e.g. to HEAD)."""
        self._passing = True
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def flushing(self, on_response: Callable[[], None]) -> Callable[[], None]:
        """``on_response``, after sending what is held."""
        def complete() -> None:
            self.flush()
            on_response()

        return complete

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Sweeper:
    """One task per event loop that expires connections past their deadline."""

    _started: ClassVar[set[int]] = set()

    @classmethod
    def watch(cls, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        key = id(loop)
        if key in cls._started:
            return
        cls._started.add(key)
        loop.call_later(SWEEP_INTERVAL, cls._sweep, loop, connections)

    @classmethod
    def _sweep(cls, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        now = loop.time()
        for connection in list(connections):
            expire = getattr(connection, "expire", None)
            if expire is not None:
                try:
                    expire(now)
                except Exception:  # one broken connection must not stop the sweep
                    logger.exception("expiring a connection failed")
        if not loop.is_closed():
            loop.call_later(SWEEP_INTERVAL, cls._sweep, loop, connections)


class _Server(Server):
    """uvicorn's server, told what to do on the first signal to stop."""

    def __init__(self, config: Any, on_stop: Callable[[], None], parent_pid: int) -> None:
        super().__init__(config)
        self._on_stop = on_stop
        self._parent_pid = parent_pid

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not-ready first. SIGTERM is gunicorn's graceful stop, SIGINT and
        # SIGQUIT its quick one (no waiting for connections). The signal is
        # not re-raised after the shutdown (uvicorn would, killing the
        # process before gunicorn's worker_exit hook stops the actors).
        if not self.should_exit:
            with contextlib.suppress(Exception):
                self._on_stop()
        self.should_exit = True
        if sig in (signal.SIGINT, signal.SIGQUIT):
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0 and os.getppid() != self._parent_pid:
            logger.warning("the gunicorn master is gone; stopping",
                           extra={"event": "master_gone"})
            self.handle_exit(0, None)
        return await super().on_tick(counter)


class Worker(UvicornWorker):  # type: ignore[misc]
    """gunicorn worker class of ``usermgmt serve`` (see the module's docstring).

    Settings come from gunicorn's configuration (limits, keep-alive,
    graceful timeout) and from the service's settings (header and body
    timeouts, :class:`app.config.Settings`).
    """

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop",
        "http": EdgeProtocol,
        "lifespan": "off",
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from app.config import Settings

        cfg = self.cfg
        settings = Settings.from_env()
        default = EdgeLimits()
        limits = EdgeLimits(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            limit_request_line=cfg.limit_request_line or default.limit_request_line,
            limit_request_fields=cfg.limit_request_fields or default.limit_request_fields,
            limit_request_field_size=(cfg.limit_request_field_size
                                      or default.limit_request_field_size),
        )
        self.config.http = EdgeProtocol.with_limits(limits)
        self.config.timeout_graceful_shutdown = max(1, cfg.graceful_timeout - 1)

    async def _serve(self) -> None:
        from gunicorn.arbiter import Arbiter

        self.config.app = self.wsgi
        server = _Server(self.config, self._stopping, self.ppid)
        # To the server, not to gunicorn's Worker.handle_exit, which uvicorn
        # never looks at.
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGQUIT, server.handle_exit, signal.SIGQUIT, None)
        await server.serve(sockets=self.sockets)
        if not server.started:
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR)

    def _stopping(self) -> None:
        from app import asgi

        runtime = asgi.current_runtime()
        if runtime is not None:
            runtime.draining.set()
        logger.info("worker draining", extra={"event": "worker_draining"})
