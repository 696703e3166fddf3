"""The Falcon application factory: routes, middleware, error handling.

``create_app`` only wires what it is given; :mod:`app.asgi` builds the
real collaborators from the environment. Tests call ``create_app`` with
what they need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import falcon
import falcon.asgi
import falcon.responders
import falcon.routing
import orjson

from app.auth import AuthMiddleware, ListenerSplit
from app.config import Network
from app.dashboard.service import Dashboard
from app.http import AsciiIntConverter
from app.middleware import RequestMiddleware, route_template
from app.openapi import openapi_document
from app.problems import install_error_handling
from app.resources.chaos import ChaosResource, Victims
from app.resources.dashboard import DashboardData, DashboardKill, dashboard_assets
from app.resources.health import Liveness, MetricsResource, Readiness, ReadinessCheck
from app.resources.sessions import CurrentSession, SessionsCollection
from app.resources.users import UserItem, UsersCollection
from app.sessions_service import SessionsService
from app.users_service import UsersService
from app.validation import check_query_parameters

__all__ = ["create_app"]


class OpenApiResource:
    """Serves the OpenAPI document, encoded once."""

    anonymous_methods = frozenset({"GET"})

    def __init__(self) -> None:
        self._body = orjson.dumps(openapi_document())

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


class Router(falcon.routing.CompiledRouter):
    """Falcon's router, with OPTIONS listed in the ``Allow`` of its own answer.

    Falcon leaves OPTIONS out of that list, yet puts it in a 405's ``Allow``;
    here every route answers OPTIONS with the methods a 405 names.
    """

    def map_http_methods(self, resource: object, **kwargs: Any) -> Any:
        method_map: dict[str, Any] = super().map_http_methods(resource, **kwargs)
        if "OPTIONS" not in method_map:
            # "_asgi" is what falcon.asgi.App passes to add_route.
            method_map["OPTIONS"] = falcon.responders.create_default_options(
                sorted([*method_map, "OPTIONS"]), asgi=kwargs.get("_asgi", False))
        return method_map


class QueryParameters:
    """Refuses (422) any query parameter that the operation does not define.

    One rule for every route, read from the OpenAPI document, so that what
    it promises and what is refused cannot drift apart; a route it does not
    describe takes none. Runs after authentication: 401 comes first.
    """


    def __init__(self, document: dict[str, Any]) -> None:
        self._allowed = {
            (path, method.upper()): frozenset(
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "query")
            for path, item in document["paths"].items()
            for method, operation in item.items() if method != "parameters"
        }

    async def process_resource(self, req: falcon.Request, resp: falcon.Response,
                               resource: object, params: dict[str, Any]) -> None:
        """Raises: ValidationFailed: naming each unknown or repeated parameter."""
        method = req.method
        # No route (404) or no such method (405, OPTIONS): Falcon's answer stands.
        if not req.query_string or not hasattr(resource, "on_" + method.lower()):
            return
        template = route_template(req.uri_template)
        check_query_parameters(req.params, self._allowed.get((template, method), ()))


App = falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]


def create_app(
    users: UsersService,
    sessions: SessionsService,
    *,
    readiness: list[ReadinessCheck] | None = None,
    chaos: Victims | None = None,
    dashboard: Dashboard | None = None,
    before_scrape: Callable[[], None] | None = None,
    retry_after: int = 1,
    metrics_enabled: bool = True,
    access_log: bool = True,
    metrics_port: int | None = None,
    without_authentication: bool = False,
    trusted_proxies: Sequence[Network] = (),
) -> App:
    """Build the ASGI application around a users service.

    Every route but the anonymous ones (see :mod:`app.auth`) requires a
    bearer token.

    Args:
        users: the users service.
        sessions: logins and token checks.
        readiness: the checks behind ``/readyz`` (none: always ready).
        chaos: when given, mounts the chaos kill switch at
            ``/admin/chaos/kill`` (only with ``USERMGMT_CHAOS=1``).
        dashboard: when given, mounts the dashboard: its page at
            ``/dashboard``, its data at ``/api/dashboard`` and its kill
            switch at ``/api/dashboard/kill`` (which kills only if the
            dashboard offers kills: ``USERMGMT_CHAOS=1``).
        before_scrape: refreshes sampled gauges before ``/metrics`` answers.
        retry_after: seconds in ``Retry-After`` of 503 answers.
        metrics_enabled: record HTTP metrics.
        access_log: write one JSON line per request to stderr.
        metrics_port: with a separate metrics listener, its port: only it
            serves ``/metrics``, and it serves nothing else.
        without_authentication: leave the authentication middleware out.
            For perf/bench_auth.py's side-by-side measurement only: no
            setting reaches it, and guarded resources then fail (500) for
            want of a principal unless the caller supplies one.
        trusted_proxies: proxies whose ``X-Forwarded-For`` names the client
            that failed password checks are counted against (see
            :func:`app.auth.client_address`).
    """
    middleware: list[RequestMiddleware | ListenerSplit | AuthMiddleware | QueryParameters] = [
        RequestMiddleware(metrics_enabled=metrics_enabled, access_log=access_log)]
    if metrics_port is not None:
        middleware.append(ListenerSplit(metrics_port))
    if not without_authentication:
        middleware.append(AuthMiddleware(sessions))
    middleware.append(QueryParameters(openapi_document()))
    app: App = falcon.asgi.App(cors_enable=False, middleware=middleware, router=Router())
    app.req_options.strip_url_path_trailing_slash = True
    # Query strings are parsed strictly: "a=1&a=2" stays a list, so it can be refused.
    app.req_options.auto_parse_qs_csv = False
    app.router_options.converters["int"] = AsciiIntConverter
    install_error_handling(app, retry_after=retry_after)
    app.add_route("/api/users", UsersCollection(users))
    app.add_route("/api/users/{user_id:int(min=1)}", UserItem(users, sessions, trusted_proxies))
    app.add_route("/api/sessions", SessionsCollection(sessions, trusted_proxies))
    app.add_route("/api/sessions/current", CurrentSession(sessions))
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/livez", Liveness())
    app.add_route("/readyz", Readiness(readiness or [], retry_after=retry_after))
    app.add_route("/metrics", MetricsResource(before_scrape))
    if chaos is not None:
        app.add_route("/admin/chaos/kill", ChaosResource(chaos))
    if dashboard is not None:
        for path, asset in dashboard_assets().items():
            app.add_route(path, asset)
        app.add_route("/api/dashboard", DashboardData(dashboard))
        app.add_route("/api/dashboard/kill", DashboardKill(dashboard))
    return app
