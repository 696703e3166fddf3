"""Fixtures for the HTTP edge: a started runtime and a Falcon test client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import falcon.testing
import psycopg
import pytest

from app.app import create_app
from app.config import Settings
from tests.openapi_check import assert_conforms

if TYPE_CHECKING:
    from app.runtime import Runtime


@pytest.fixture
def runtime(database_url: str, db: psycopg.Connection[Any], stop_actors: None) -> Iterator[Runtime]:
    """This process's actor tree on the test database, with two DbWorkers."""
    from app.runtime import Runtime

    settings = Settings(database_url=database_url, db_workers=2, db_checkout_timeout=0.5,
                        statement_timeout=2.0)
    runtime = Runtime(settings, database_url)
    runtime.start()
    assert runtime.wait_ready(10), "DbWorkers did not connect"
    try:
        yield runtime
    finally:
        runtime.stop()


class CheckedClient(falcon.testing.TestClient):
    """A test client that checks every response against the OpenAPI document."""

    def simulate_request(self, *args: Any, **kwargs: Any) -> falcon.testing.Result:
        result = super().simulate_request(*args, **kwargs)
        method = kwargs.get("method") or args[0]
        path = kwargs.get("path") or args[1]
        assert_conforms(method, path, result)
        return result


@pytest.fixture
def client(runtime: Runtime) -> CheckedClient:
    return CheckedClient(create_app(runtime.users))
