"""The Falcon application factory: routes, middleware, error handling.

``create_app`` only wires what it is given; :mod:`app.wsgi` builds the
real collaborators from the environment. Tests call ``create_app`` with
what they need.
"""

from __future__ import annotations

import falcon
import orjson

from app.openapi import openapi_document
from app.problems import install_error_handling
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


def create_app(users: UsersService, *, retry_after: int = 1) -> App:
    """Build the WSGI application around a users service."""
    app = falcon.App(cors_enable=False)
    app.req_options.strip_url_path_trailing_slash = True
    # Query strings are parsed strictly: "a=1&a=2" stays a list, so it can be refused.
    app.req_options.auto_parse_qs_csv = False
    install_error_handling(app, retry_after=retry_after)
    app.add_route("/api/users", UsersCollection(users))
    app.add_route("/api/users/{user_id:int(min=1)}", UserItem(users))
    app.add_route("/openapi.json", OpenApiResource())
    return app
