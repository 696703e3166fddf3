"""A Python client generated from the served document walks through the API.

``openapi-python-client`` (pinned: :data:`GENERATOR`) reads
``/openapi.json`` from a real ``usermgmt serve`` and must generate without
a single warning (``--fail-on-warning``), with the settings and the one
template a consumer is pointed to by the README (``python_client/`` beside
this file). The package it writes must pass ``mypy --strict``, type every
operation precisely (no ``Any``, no ``str`` but for the Prometheus text),
and then carry a whole walk-through against another real server: log in,
create, read with ETag and 304, list following cursors, patch with
If-Match (200, then 412 with the old ETag), replace, delete, log out, with
each error the client can provoke parsed into the typed ``Problem``.

The generator runs in a virtualenv of its own (its dependencies are not
the project's), made on first use at :data:`GENERATOR_VENV`; without
access to the package index that fails, and so does the test. The
generated package imports only httpx, attrs and python-dateutil, which
the test extra installs.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.server import Server
from tests.waiting import wait_until

# The first test also waits for the generator's install (once) and a server.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(480)]

GENERATOR = "openapi-python-client==0.29.1"
ROOT = Path(__file__).resolve().parents[2]
GENERATOR_VENV = ROOT / ".venv-openapi-python-client"
SETTINGS = Path(__file__).with_name("python_client")
PACKAGE = "usermgmt_client"


def generator() -> Path:
    """The pinned generator's executable, installed into its own virtualenv if need be."""
    executable = GENERATOR_VENV / "bin" / "openapi-python-client"
    version = GENERATOR.split("==")[1]
    if executable.exists():
        shown = subprocess.run([executable, "--version"], capture_output=True, text=True,
                               timeout=60, check=False)
        if shown.stdout.strip().endswith(version):
            return executable
    for argv in ([sys.executable, "-m", "venv", "--clear", str(GENERATOR_VENV)],
                 [str(GENERATOR_VENV / "bin" / "pip"), "install", "--quiet",
                  "--disable-pip-version-check", GENERATOR]):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"installing {GENERATOR} failed:\n{done.stderr[-3000:]}"
    return executable


def run(argv: list[str | Path], cwd: Path, timeout: float,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def generated(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder holding the package generated from a real server's /openapi.json."""
    executable = generator()
    out = tmp_path_factory.mktemp("client")
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(out / "var")}
    with Server(env, out / "server.log", workers=2) as server:
        # The generator's lint and format hook (ruff) comes with it.
        path = f"{executable.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        done = run([executable, "generate", "--url", server.url + "/openapi.json",
                    "--fail-on-warning", "--meta", "none",
                    "--config", SETTINGS / "config.yaml",
                    "--custom-template-path", SETTINGS / "templates"],
                   cwd=out, timeout=120, env={**os.environ, "PATH": path})
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    assert "warning" not in report.lower(), report[-6000:]
    assert (out / PACKAGE / "__init__.py").exists(), report[-6000:]
    yield out


@pytest.fixture(scope="module")
def client(generated: Path) -> Iterator[types.ModuleType]:
    """The generated package, imported."""
    sys.path.insert(0, str(generated))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(generated))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def operation_modules(client: types.ModuleType) -> dict[str, types.ModuleType]:
    """``tag.operation -> module`` of every generated operation."""
    api = importlib.import_module(f"{PACKAGE}.api")
    found = {}
    for tag in pkgutil.iter_modules(api.__path__):
        package = importlib.import_module(f"{PACKAGE}.api.{tag.name}")
        for operation in pkgutil.iter_modules(package.__path__):
            found[f"{tag.name}.{operation.name}"] = importlib.import_module(
                f"{PACKAGE}.api.{tag.name}.{operation.name}")
    return found


def test_the_generated_package_passes_mypy_strict(generated: Path) -> None:
    done = run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(generated / ".mypy"),
                PACKAGE], cwd=generated, timeout=240)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]


def test_every_operation_has_a_tag_module_and_a_precise_return_type(client: types.ModuleType) -> None:
    modules = operation_modules(client)
    assert set(modules) == {
        "users.list_users", "users.create_user", "users.get_user", "users.replace_user",
        "users.patch_user", "users.delete_user", "sessions.login",
        "sessions.get_current_session", "sessions.logout", "operations.liveness",
        "operations.readiness", "operations.metrics", "operations.get_open_api",
        "dashboard.get_dashboard", "dashboard.kill_actor"}
    problem = importlib.import_module(f"{PACKAGE}.models").Problem
    for name, module in modules.items():
        assert hasattr(module, "sync"), f"{name}: no parsed answer (its type was Any)"
        returned = typing.get_args(inspect.signature(module.sync).return_annotation)
        assert problem in returned and type(None) in returned, (name, returned)
        assert Any not in returned, (name, returned)
        assert (str in returned) is (name == "operations.metrics"), (name, returned)
    patch = inspect.signature(modules["users.patch_user"].sync).parameters["body"]
    assert patch.default is inspect.Parameter.empty, "the PATCH body must be required"


def test_a_walk_through_with_the_generated_client(client: types.ModuleType, server: Server) -> None:
    modules = operation_modules(client)
    users, sessions, operations = ({name.split(".")[1]: module for name, module in modules.items()
                                    if name.startswith(tag + ".")}
                                   for tag in ("users", "sessions", "operations"))
    models = importlib.import_module(f"{PACKAGE}.models")
    sent: list[Any] = []  # every request the admin's client sends
    anonymous = client.Client(base_url=server.url, raise_on_unexpected_status=True)

    def problem(answer: Any, status: int, problem_type: str | None = None) -> Any:
        """The answer's parsed body, asserted to be a ``Problem`` of ``status``."""
        assert answer.status_code == status, (answer.status_code, answer.content)
        assert isinstance(answer.parsed, models.Problem), answer.parsed
        assert answer.parsed.status == status
        if problem_type is not None:
            assert answer.parsed.type_ == f"urn:usermgmt:problem:{problem_type}"
        return answer.parsed

    # Operations need no token.
    assert operations["liveness"].sync(client=anonymous) == models.Liveness(status="ok")
    ready = operations["readiness"].sync(client=anonymous)
    assert isinstance(ready, models.Readiness) and "database" in ready.checks
    assert operations["get_open_api"].sync(client=anonymous).openapi.startswith("3.1")
    assert "usermgmt_http_requests_total" in operations["metrics"].sync(client=anonymous)

    # Log in; a wrong password is the same 401 as an unknown email.
    wrong = sessions["login"].sync_detailed(
        client=anonymous, body=models.Login(email=server.admin.email, password="not it at all"))
    problem(wrong, 401, "invalid-credentials")
    session = sessions["login"].sync(
        client=anonymous, body=models.Login(email=server.admin.email,
                                            password=server.admin.password))
    assert isinstance(session, models.NewSession)
    admin = client.AuthenticatedClient(
        base_url=server.url, token=session.token, raise_on_unexpected_status=True,
        httpx_args={"event_hooks": {"request": [sent.append]}})
    current = sessions["get_current_session"].sync(client=admin)
    assert (current.user_id, current.role) == (session.user_id, models.Role.ADMIN)
    problem(sessions["get_current_session"].sync_detailed(client=anonymous), 401)

    # Create: 201 with an ETag; the same email again is 409, a bad one 422, a huge one 413.
    created = users["create_user"].sync_detailed(client=admin, body=models.UserInput(
        name="Ada Lovelace", email="ada@example.com", password="analytical engine"))
    assert created.status_code == 201 and isinstance(created.parsed, models.User)
    ada = created.parsed
    assert created.headers["ETag"] == f'"{ada.id}-1"'
    assert created.headers["Location"] == f"/api/users/{ada.id}"
    taken = users["create_user"].sync_detailed(client=admin, body=models.UserInput(
        name="Ada Again", email="ADA@example.com"))
    assert [e.field for e in problem(taken, 409, "duplicate-email").errors] == ["email"]
    invalid = users["create_user"].sync_detailed(client=admin, body=models.UserInput(
        name="", email="nope"))
    assert {e.field for e in problem(invalid, 422, "validation").errors} == {"name", "email"}
    # On a connection of its own: gthread drains at most 64 KiB of a refused
    # body and then closes the connection, which the next request would reuse.
    with client.AuthenticatedClient(base_url=server.url, token=session.token) as once:
        huge = users["create_user"].sync_detailed(client=once, body=models.UserInput(
            name="x" * 70_000, email="big@example.com"))
    problem(huge, 413, "body-too-large")

    # Read: 200 with an ETag, then 304 (parsed as None) while it is current; 404 when absent.
    read = users["get_user"].sync_detailed(ada.id, client=admin, x_request_id="walk-read-1")
    assert read.parsed == ada and read.headers["X-Request-ID"] == "walk-read-1"
    unchanged = users["get_user"].sync_detailed(ada.id, client=admin,
                                                if_none_match=read.headers["ETag"])
    assert unchanged.status_code == 304 and unchanged.parsed is None and unchanged.content == b""
    missing = users["get_user"].sync_detailed(ada.id + 1000, client=admin, x_request_id="walk-404")
    assert problem(missing, 404, "not-found").instance == "urn:usermgmt:request:walk-404"

    # List: follow `next` through pages of 2 until it is null.
    for n in range(3):
        users["create_user"].sync(client=admin, body=models.UserInput(
            name=f"User {n}", email=f"user{n}@example.com"))
    seen: list[int] = []
    after: Any = client.types.UNSET
    pages = 0
    while True:
        page = users["list_users"].sync(client=admin, limit=2, after=after)
        assert isinstance(page, models.UserPage) and len(page.data) <= 2
        seen.extend(user.id for user in page.data)
        pages += 1
        if page.next_ is None:
            break
        after = page.next_
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 5 and pages == 3
    found = users["list_users"].sync(client=admin, email="ADA@EXAMPLE.COM")
    assert [user.id for user in found.data] == [ada.id]
    bad_query = users["list_users"].sync_detailed(client=admin, email="a\x01@example.com")
    problem(bad_query, 400, "malformed-request")

    # Patch with If-Match: 200 and a new ETag; the old ETag is then 412.
    etag = read.headers["ETag"]
    patched = users["patch_user"].sync_detailed(
        ada.id, client=admin, body=models.UserPatch(name="Countess of Lovelace"), if_match=etag)
    assert patched.status_code == 200 and patched.parsed.name == "Countess of Lovelace"
    assert patched.parsed.version == 2 and patched.headers["ETag"] == f'"{ada.id}-2"'
    assert sent[-1].method == "PATCH"
    assert sent[-1].headers["Content-Type"] == "application/merge-patch+json"
    stale = users["patch_user"].sync_detailed(
        ada.id, client=admin, body=models.UserPatch(name="Lost update"), if_match=etag)
    problem(stale, 412, "precondition-failed")
    replaced = users["replace_user"].sync(
        ada.id, client=admin, body=models.UserReplace(name="Ada King", email="ada@example.org"),
        if_match=patched.headers["ETag"])
    assert (replaced.name, replaced.email, replaced.version) == ("Ada King", "ada@example.org", 3)

    # A member: its own record only; listing is 403, another user 404.
    member_session = sessions["login"].sync(
        client=anonymous, body=models.Login(email="ada@example.org", password="analytical engine"))
    member = client.AuthenticatedClient(base_url=server.url, token=member_session.token,
                                        raise_on_unexpected_status=True)
    assert users["get_user"].sync(ada.id, client=member).email == "ada@example.org"
    problem(users["list_users"].sync_detailed(client=member), 403, "forbidden")
    problem(users["get_user"].sync_detailed(session.user_id, client=member), 404)

    # Delete: 204 (parsed as None), then 404; the member's session ended with it.
    deleted = users["delete_user"].sync_detailed(ada.id, client=admin, if_match=f'"{ada.id}-3"')
    assert deleted.status_code == 204 and deleted.parsed is None
    problem(users["get_user"].sync_detailed(ada.id, client=admin), 404)
    # Other workers learn of a revocation within milliseconds (NOTIFY).
    wait_until(lambda: sessions["get_current_session"].sync_detailed(
        client=member).status_code == 401)
    problem(sessions["get_current_session"].sync_detailed(client=member), 401)

    # Log out: 204, and the token is refused from then on.
    logged_out = sessions["logout"].sync_detailed(client=admin)
    assert logged_out.status_code == 204 and logged_out.parsed is None
    wait_until(lambda: users["list_users"].sync_detailed(client=admin).status_code == 401)
    problem(users["list_users"].sync_detailed(client=admin), 401, "unauthenticated")

    # Last, as it locks this address's logins for a while: 429 with Retry-After.
    answers = [sessions["login"].sync_detailed(
        client=anonymous, body=models.Login(email="nobody@example.com", password="wrong"))
        for _ in range(8)]
    limited = answers[-1]
    problem(limited, 429, "rate-limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert requests.get(server.url + "/livez", timeout=5).status_code == 200
