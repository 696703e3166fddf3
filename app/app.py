"""The Falcon application factory: routes, middleware, error handling.

``create_app`` only wires what it is given; :mod:`app.wsgi` builds the
real collaborators from the environment. Tests call ``create_app`` with
what they need.
"""

from __future__ import annotations

from collections.abc import Callable

import falcon
import orjson

from app.middleware import RequestMiddleware
from app.openapi import openapi_document
from app.problems import install_error_handling
from app.resources.chaos import ChaosResource, Victims
from app.resources.health import Liveness, MetricsResource, Readiness, ReadinessCheck
from app.resources.users import UserItem, UsersCollection
from app.users_service import UsersService

__all__ = ["create_app"]


class OpenApiResource:
    """Serves the OpenAPI document, encoded once."""

    def __init__(self) -> None:
        self._body = orjson.dumps(openapi_document())

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


App = falcon.App[falcon.Request, falcon.Response]


def create_app(
    users: UsersService,
    *,
    readiness: list[ReadinessCheck] | None = None,
    chaos: Victims | None = None,
    before_scrape: Callable[[], None] | None = None,
    retry_after: int = 1,
    metrics_enabled: bool = True,
    access_log: bool = True,
) -> App:
    """Build the WSGI application around a users service.

    Args:
        users: the users service.
        readiness: the checks behind ``/readyz`` (none: always ready).
        chaos: when given, mounts the chaos kill switch at
            ``/admin/chaos/kill`` (only with ``USERMGMT_CHAOS=1``).
        before_scrape: refreshes sampled gauges before ``/metrics`` answers.
        retry_after: seconds in ``Retry-After`` of 503 answers.
        metrics_enabled: record HTTP metrics.
        access_log: write one JSON line per request to stderr.
    """
    app = falcon.App(
        cors_enable=False,
        middleware=[RequestMiddleware(metrics_enabled=metrics_enabled, access_log=access_log)],
    )
    app.req_options.strip_url_path_trailing_slash = True
    # Query strings are parsed strictly: "a=1&a=2" stays a list, so it can be refused.
    app.req_options.auto_parse_qs_csv = False
    install_error_handling(app, retry_after=retry_after)
    app.add_route("/api/users", UsersCollection(users))
    app.add_route("/api/users/{user_id:int(min=1)}", UserItem(users))
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/livez", Liveness())
    app.add_route("/readyz", Readiness(readiness or [], retry_after=retry_after))
    app.add_route("/metrics", MetricsResource(before_scrape))
    if chaos is not None:
        app.add_route("/admin/chaos/kill", ChaosResource(chaos))
    return app
