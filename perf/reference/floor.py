"""The ceiling: gunicorn and Falcon answering constant bytes, nothing else.

No middleware, no authentication, no database: ``GET /api/users`` and
``GET /api/users/{id}`` answer the same small JSON body (the size of a
user). Served with the same gunicorn settings as the service and the
reference, it is the fastest any Falcon application can answer on this
machine, so its throughput divided by the reference's is the largest
ratio a service can reach under those settings (``perf/bench.py`` reports
it beside the workloads).
"""

from __future__ import annotations

import falcon
import falcon.asgi

__all__ = ["get_app", "get_asgi_app"]

BODY = (b'{"id":1,"name":"Bench User 1","email":"bench-user-1@bench.example.com",'
        b'"role":"user","version":1,"created_at":"2026-01-01T00:00:00.000000+00:00",'
        b'"updated_at":"2026-01-01T00:00:00.000000+00:00"}')


class Constant:
    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int | None = None) -> None:
        resp.data = BODY
        resp.content_type = falcon.MEDIA_JSON


def get_app() -> falcon.App[falcon.Request, falcon.Response]:
    app = falcon.App()
    app.add_route("/api/users", Constant())
    app.add_route("/api/users/{user_id:int(min=1)}", Constant())
    return app


class AsyncConstant:
    async def on_get(self, req: falcon.Request, resp: falcon.Response,
                     user_id: int | None = None) -> None:
        resp.data = BODY
        resp.content_type = falcon.MEDIA_JSON


def get_asgi_app() -> falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]:
    """The same answers from ``falcon.asgi``, for the asyncio workers."""
    app: falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response] = falcon.asgi.App()
    app.add_route("/api/users", AsyncConstant())
    app.add_route("/api/users/{user_id:int(min=1)}", AsyncConstant())
    return app
