"""``/livez``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import falcon

from actors.errors import Unavailable
from app import metrics
from app.encoding import dumps
from app.problems import Problem

__all__ = ["Liveness", "MetricsResource", "Readiness", "ReadinessCheck", "readiness_checks"]


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """A named check: answers None when fine, else what is wrong."""

    name: str
    check: Callable[[], Awaitable[str | None]] = field(repr=False)


def readiness_checks(draining: threading.Event, tree_problem: Callable[[], str | None],
                     ping: Callable[[], Awaitable[object]]) -> list[ReadinessCheck]:
    """What ``/readyz`` verifies in a worker: not draining, the tree up, the database reached.

    Args:
        draining: set once the worker was told to stop.
        tree_problem: what is wrong with the supervision tree, or None
            (blocking: it asks the root supervisor; run off the event loop).
        ping: one database round trip through a DbWorker; raises
            :class:`~actors.errors.Unavailable` when it cannot.
    """

    async def not_draining() -> str | None:
        return "the worker is shutting down" if draining.is_set() else None

    async def tree() -> str | None:
        return await asyncio.to_thread(tree_problem)

    async def database() -> str | None:
        try:
            await ping()
        except Unavailable as exc:
            return str(exc)
        return None

    return [ReadinessCheck("draining", not_draining),
            ReadinessCheck("supervision_tree", tree),
            ReadinessCheck("database", database)]


class Liveness:
    """The process serves HTTP. No dependency is checked on purpose: a
    database outage must not make an orchestrator restart every worker."""

    anonymous_methods = frozenset({"GET"})
    _BODY = dumps({"status": "ok"})

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._BODY


class Readiness:
    """Ready only when every check passes; 503 problem+json naming the failures."""

    anonymous_methods = frozenset({"GET"})

    def __init__(self, checks: list[ReadinessCheck], retry_after: int = 1) -> None:
        self._checks = checks
        self._retry_after = retry_after

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        failures = []
        for item in self._checks:
            try:
                problem = await item.check()
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem is not None:
                failures.append({"field": item.name, "message": problem})
        if failures:
            raise Problem(
                503,
                "not ready: " + ", ".join(f["field"] for f in failures),
                problem_type="not-ready",
                title="Service Unavailable",
                errors=failures,
                headers={"Retry-After": str(self._retry_after)},
            )
        resp.content_type = falcon.MEDIA_JSON
        resp.data = dumps({"status": "ready", "checks": [c.name for c in self._checks]})


class MetricsResource:
    """Prometheus text exposition of every worker process.

    Rendering reads every worker's files (milliseconds of CPU): it runs off
    the event loop, at most one at a time per process, and scrapers that
    ask while one is being rendered, or within ``reuse_for`` seconds after,
    get that same exposition. A flood of scrapes therefore costs about one
    rendering per ``reuse_for`` seconds, whatever its rate.

    Args:
        before_scrape: refreshes this process's sampled gauges first.
        reuse_for: seconds a rendered exposition is served again.
        clock: monotonic clock (tests pass a fake one).
    """

    # Scrapers carry no token; USERMGMT_METRICS_BIND keeps /metrics off the
    # public address instead (see app.auth).
    anonymous_methods = frozenset({"GET"})
    serves_metrics = True
    DEFAULT_REUSE_FOR = 0.25

    def __init__(self, before_scrape: Callable[[], None] | None = None,
                 reuse_for: float = DEFAULT_REUSE_FOR,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._before_scrape = before_scrape
        self._reuse_for = reuse_for
        self._clock = clock
        self._rendering: asyncio.Future[bytes] | None = None
        self._last: tuple[float, bytes] = (float("-inf"), b"")
        self.renderings = 0
        """Expositions rendered so far (tests read it)."""

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = metrics.CONTENT_TYPE_LATEST
        rendered_at, body = self._last
        if self._clock() - rendered_at < self._reuse_for:
            resp.data = body
            return
        rendering = self._rendering
        if rendering is None:
            rendering = self._rendering = asyncio.ensure_future(self._render())
        resp.data = await asyncio.shield(rendering)

    async def _render(self) -> bytes:
        try:
            body = await asyncio.to_thread(self._render_now)
            self._last = (self._clock(), body)
            return body
        finally:
            self._rendering = None

    def _render_now(self) -> bytes:
        if self._before_scrape is not None:
            self._before_scrape()
        self.renderings += 1
        return metrics.exposition()
