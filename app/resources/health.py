"""``/livez``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import falcon

from app import metrics
from app.encoding import dumps
from app.problems import Problem

__all__ = ["Liveness", "MetricsResource", "Readiness", "ReadinessCheck"]


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """A named check: returns None when fine, else what is wrong."""

    name: str
    check: Callable[[], str | None] = field(repr=False)


class Liveness:
    """The process serves HTTP. No dependency is checked on purpose: a
    database outage must not make an orchestrator restart every worker."""

    anonymous_methods = frozenset({"GET"})
    _BODY = dumps({"status": "ok"})

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._BODY


class Readiness:
    """Ready only when every check passes; 503 problem+json naming the failures."""

    anonymous_methods = frozenset({"GET"})

    def __init__(self, checks: list[ReadinessCheck], retry_after: int = 1) -> None:
        self._checks = checks
        self._retry_after = retry_after

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        failures = []
        for item in self._checks:
            try:
                problem = item.check()
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

    Args:
        before_scrape: refreshes this process's sampled gauges first.
    """

    # Scrapers carry no token; USERMGMT_METRICS_BIND keeps /metrics off the
    # public address instead (see app.auth).
    anonymous_methods = frozenset({"GET"})

    def __init__(self, before_scrape: Callable[[], None] | None = None) -> None:
        self._before_scrape = before_scrape

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._before_scrape is not None:
            self._before_scrape()
        resp.content_type = metrics.CONTENT_TYPE_LATEST
        resp.data = metrics.exposition()
