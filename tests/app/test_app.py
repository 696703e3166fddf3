"""What ``create_app`` wires for every route: OPTIONS, and the query-parameter rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon.testing
import pytest

from app.app import create_app
from tests.app.conftest import Account, CheckedClient

if TYPE_CHECKING:
    from app.runtime import Runtime

ROUTES = ["/api/users", "/api/users/1", "/api/sessions", "/api/sessions/current", "/livez",
          "/readyz", "/openapi.json", "/metrics"]


@pytest.mark.parametrize("path", ROUTES)
def test_options_allows_what_a_405_allows_options_included(runtime: Runtime, path: str) -> None:
    # Not a CheckedClient: OPTIONS is HTTP's, not an operation of the document.
    client = falcon.testing.TestClient(create_app(runtime.users, runtime.sessions))
    options = client.simulate_options(path)
    refused = client.simulate_request("TRACE", path)
    assert options.status_code == 200 and options.content == b""
    assert refused.status_code == 405
    assert options.headers["Allow"] == refused.headers["Allow"]
    assert "OPTIONS" in options.headers["Allow"].split(", ")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/users/{admin}"), ("PUT", "/api/users/{admin}"), ("PATCH", "/api/users/{admin}"),
    ("DELETE", "/api/users/{admin}"), ("POST", "/api/users"), ("GET", "/api/users"),
    ("POST", "/api/sessions"), ("GET", "/api/sessions/current"),
    ("DELETE", "/api/sessions/current"), ("GET", "/livez"), ("GET", "/readyz"),
    ("GET", "/openapi.json"), ("GET", "/metrics"),
])
def test_a_query_parameter_the_operation_does_not_define_is_422_naming_it(
        client: CheckedClient, admin: Account, method: str, path: str) -> None:
    result = client.simulate_request(method, path.format(admin=admin.user_id),
                                     query_string="verbose=1&limit=5", json={})
    assert result.status_code == 422, result.text
    fields = [error["field"] for error in result.json["errors"]]
    assert "verbose" in fields
    assert ("limit" in fields) is (path != "/api/users" or method != "GET")


def test_a_defined_query_parameter_given_twice_is_422(client: CheckedClient) -> None:
    result = client.simulate_get("/api/users", query_string="limit=1&limit=2")
    assert result.status_code == 422
    assert result.json["errors"] == [{"field": "limit", "message": "must be given once"}]


def test_an_unknown_query_parameter_does_not_hide_a_missing_token_or_method(
        anonymous: CheckedClient, client: CheckedClient) -> None:
    assert anonymous.simulate_get("/api/users/1", query_string="x=1").status_code == 401
    assert client.simulate_request("PUT", "/livez", query_string="x=1").status_code == 405
    assert client.simulate_get("/nowhere", query_string="x=1").status_code == 404


def test_a_query_string_without_parameters_is_no_parameter(client: CheckedClient) -> None:
    assert client.simulate_get("/livez", query_string="&").status_code == 200
