"""Who may do what: 401 vs 403 vs 404, member rules, admin rules, no mass assignment."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import falcon.asgi
import falcon.testing
import psycopg
import pytest

from app.app import create_app
from app.passwords import Passwords
from app.runtime import Runtime
from tests.app.conftest import (
    ADMIN_PASSWORD,
    Account,
    CheckedClient,
    insert_user,
    make_client,
    open_session,
)
from tests.openapi_check import find_operation
from tests.waiting import wait_until

MEMBER_PASSWORD = "member password 1"


@pytest.fixture
def member(runtime: Runtime, db: psycopg.Connection[Any], passwords: Passwords) -> Account:
    return insert_user(db, passwords, "member@example.com", MEMBER_PASSWORD, name="Member")


@pytest.fixture
def other(runtime: Runtime, db: psycopg.Connection[Any], passwords: Passwords) -> Account:
    return insert_user(db, passwords, "other@example.com", "other password 1", name="Other")


@pytest.fixture
def as_member(runtime: Runtime, member: Account) -> CheckedClient:
    return make_client(runtime, member)


GUARDED = [
    ("GET", "/api/users"), ("POST", "/api/users"), ("GET", "/api/users/1"),
    ("PUT", "/api/users/1"), ("PATCH", "/api/users/1"), ("DELETE", "/api/users/1"),
    ("GET", "/api/sessions/current"), ("DELETE", "/api/sessions/current"),
]


# -- 401 ----------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_every_guarded_route_without_a_token_is_401_with_a_bearer_challenge(
    anonymous: CheckedClient, method: str, path: str
) -> None:
    result = anonymous.simulate_request(method, path, json={"name": "x", "email": "x@example.com"})
    assert result.status_code == 401
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.headers["WWW-Authenticate"] == 'Bearer realm="usermgmt"'


def test_every_documented_operation_but_the_anonymous_ones_is_guarded() -> None:
    from app.openapi import openapi_document

    document = openapi_document()
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"]}
    anonymous = {(m.upper(), p) for p, item in document["paths"].items()
                 for m, op in item.items() if isinstance(op, dict) and op.get("security") == []}
    assert anonymous == {("POST", "/api/sessions"), ("GET", "/livez"), ("GET", "/readyz"),
                         ("GET", "/openapi.json"), ("GET", "/metrics")}
    for method, path in GUARDED:
        found = find_operation(method, path)
        assert found is not None and "401" in found[1]["responses"], (method, path)


@pytest.mark.parametrize("path", ["/livez", "/openapi.json", "/metrics", "/readyz"])
def test_the_anonymous_routes_answer_without_a_token(anonymous: CheckedClient, path: str) -> None:
    assert anonymous.simulate_get(path).status_code == 200


@pytest.mark.parametrize("token", ["nope", "A" * 43, "x" * 300, "two words"])
def test_an_unknown_or_malformed_token_is_401_invalid_token(anonymous: CheckedClient, token: str) -> None:
    result = anonymous.simulate_get("/api/users", headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 401
    assert 'error="invalid_token"' in result.headers["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["Basic YWRtaW46YWRtaW4=", "Token abc", "Bearer", ""])
def test_another_scheme_or_no_token_is_401_without_an_error_code(anonymous: CheckedClient, header: str) -> None:
    result = anonymous.simulate_get("/api/users", headers={"Authorization": header})
    assert result.status_code == 401
    assert "WWW-Authenticate" in result.headers


def test_the_scheme_is_case_insensitive(anonymous: CheckedClient, admin: Account) -> None:
    result = anonymous.simulate_get("/api/users", headers={"Authorization": f"bEaReR {admin.token}"})
    assert result.status_code == 200


def test_an_expired_token_is_401(anonymous: CheckedClient, db: psycopg.Connection[Any], admin: Account) -> None:
    token = open_session(db, admin.user_id, ttl_seconds=-1)
    result = anonymous.simulate_get("/api/users", headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 401
    assert 'error="invalid_token"' in result.headers["WWW-Authenticate"]


def test_a_session_expiring_while_cached_is_refused_from_the_cache(
    anonymous: CheckedClient, db: psycopg.Connection[Any], admin: Account, runtime: Runtime
) -> None:
    token = open_session(db, admin.user_id, ttl_seconds=0.6)
    headers = {"Authorization": f"Bearer {token}"}
    assert anonymous.simulate_get("/api/sessions/current", headers=headers).status_code == 200
    assert runtime.tokens is not None
    wait_until(lambda: len(runtime.tokens.table) >= 1)  # type: ignore[union-attr]
    time.sleep(0.7)
    assert anonymous.simulate_get("/api/sessions/current", headers=headers).status_code == 401


# -- member ---------------------------------------------------------------------

def test_a_member_reads_its_own_record_with_its_role(as_member: CheckedClient, member: Account) -> None:
    result = as_member.simulate_get(f"/api/users/{member.user_id}")
    assert result.status_code == 200
    assert result.json["role"] == "member"
    assert "password" not in result.text and "argon2" not in result.text


def test_another_users_id_looks_exactly_like_a_missing_one_to_a_member(
    as_member: CheckedClient, other: Account
) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        seen = as_member.simulate_request(method, f"/api/users/{other.user_id}",
                                          json={"name": "x", "email": "x@example.com"})
        missing = as_member.simulate_request(method, f"/api/users/{other.user_id + 1000}",
                                             json={"name": "x", "email": "x@example.com"})
        assert seen.status_code == missing.status_code == 404, method
        assert seen.json["detail"].replace(str(other.user_id), "N") == \
            missing.json["detail"].replace(str(other.user_id + 1000), "N")


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/users"), ("POST", "/api/users")])
def test_a_member_cannot_list_or_create_users(as_member: CheckedClient, method: str, path: str) -> None:
    result = as_member.simulate_request(method, path, json={"name": "x", "email": "x@example.com"})
    assert result.status_code == 403
    assert result.headers["Content-Type"] == "application/problem+json"


def test_a_member_updates_its_name_and_email(as_member: CheckedClient, member: Account) -> None:
    result = as_member.simulate_patch(f"/api/users/{member.user_id}",
                                      json={"name": "Renamed", "email": "renamed@example.com",
                                            "current_password": MEMBER_PASSWORD})
    assert result.status_code == 200
    assert (result.json["name"], result.json["email"], result.json["role"]) == (
        "Renamed", "renamed@example.com", "member")


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_changing_your_own_email_requires_the_current_password(
    runtime: Runtime, as_member: CheckedClient, anonymous: CheckedClient, member: Account,
    db: psycopg.Connection[Any], method: str
) -> None:
    """A stolen token alone must not move the login to the thief's mailbox."""
    path = f"/api/users/{member.user_id}"
    body = {"name": "Member", "email": "thief@example.com"}
    missing = as_member.simulate_request(method, path, json=body)
    assert missing.status_code == 403
    assert missing.json["type"].endswith("current-password-required")
    assert missing.json["errors"][0]["field"] == "current_password"
    wrong = as_member.simulate_request(method, path, json={**body, "current_password": "nope"})
    assert wrong.status_code == 403 and wrong.json["type"].endswith("wrong-password")
    # Even a case-only change is a change of what is stored.
    upper = as_member.simulate_request(method, path, json={**body, "email": member.email.upper()})
    assert upper.status_code == 403
    assert db.execute("SELECT email, version FROM users WHERE id = %s",
                      (member.user_id,)).fetchone() == (member.email, 1)
    right = as_member.simulate_request(method, path,
                                       json={**body, "current_password": MEMBER_PASSWORD})
    assert right.status_code == 200 and right.json["email"] == "thief@example.com"
    assert anonymous.simulate_post("/api/sessions", json={
        "email": "thief@example.com", "password": MEMBER_PASSWORD}).status_code == 201


def test_sending_your_own_email_unchanged_needs_no_password(
    as_member: CheckedClient, member: Account
) -> None:
    path = f"/api/users/{member.user_id}"
    renamed = as_member.simulate_put(path, json={"name": "Renamed", "email": member.email})
    assert renamed.status_code == 200 and renamed.json["name"] == "Renamed"
    patched = as_member.simulate_patch(path, json={"email": member.email})
    assert patched.status_code == 200


def test_a_taken_email_is_not_revealed_to_a_token_without_the_password(
    as_member: CheckedClient, member: Account, other: Account
) -> None:
    result = as_member.simulate_patch(f"/api/users/{member.user_id}", json={"email": other.email})
    assert result.status_code == 403


def test_an_admin_changing_its_own_email_needs_its_password_but_not_for_others(
    client: CheckedClient, admin: Account, member: Account
) -> None:
    own = f"/api/users/{admin.user_id}"
    assert client.simulate_patch(own, json={"email": "boss@example.com"}).status_code == 403
    assert client.simulate_patch(own, json={"email": "boss@example.com",
                                            "current_password": ADMIN_PASSWORD}).status_code == 200
    other = client.simulate_patch(f"/api/users/{member.user_id}",
                                  json={"email": "moved@example.com"})
    assert other.status_code == 200 and other.json["email"] == "moved@example.com"


@pytest.mark.parametrize("body", [{"role": "admin"}, {"role": "member"}, {"id": 1}, {"version": 7},
                                  {"password_hash": "$argon2id$x"}, {"inserted_at": "2020-01-01"}])
def test_a_member_sending_a_field_it_may_not_set_is_422_and_nothing_changes(
    as_member: CheckedClient, member: Account, db: psycopg.Connection[Any], body: dict[str, Any]
) -> None:
    before = db.execute("SELECT * FROM users WHERE id = %s", (member.user_id,)).fetchone()
    result = as_member.simulate_patch(f"/api/users/{member.user_id}", json={"name": "N", **body})
    assert result.status_code == 422
    assert next(iter(body)) in [e["field"] for e in result.json["errors"]]
    assert db.execute("SELECT * FROM users WHERE id = %s", (member.user_id,)).fetchone() == before


def test_a_member_cannot_delete_even_itself(as_member: CheckedClient, member: Account) -> None:
    assert as_member.simulate_delete(f"/api/users/{member.user_id}").status_code == 403


def test_changing_your_own_password_requires_the_current_one(
    as_member: CheckedClient, anonymous: CheckedClient, member: Account
) -> None:
    path = f"/api/users/{member.user_id}"
    missing = as_member.simulate_patch(path, json={"password": "a new password 1"})
    assert missing.status_code == 403
    assert missing.json["errors"][0]["field"] == "current_password"
    wrong = as_member.simulate_patch(path, json={"password": "a new password 1",
                                                 "current_password": "not my password"})
    assert wrong.status_code == 403
    right = as_member.simulate_patch(path, json={"password": "a new password 1",
                                                 "current_password": MEMBER_PASSWORD})
    assert right.status_code == 200
    assert right.json["version"] == 2  # a password change is a change of the row
    login = anonymous.simulate_post("/api/sessions", json={"email": member.email,
                                                           "password": "a new password 1"})
    assert login.status_code == 201
    old = anonymous.simulate_post("/api/sessions", json={"email": member.email,
                                                         "password": MEMBER_PASSWORD})
    assert old.status_code == 401


def test_current_password_alone_is_422(as_member: CheckedClient, member: Account) -> None:
    result = as_member.simulate_patch(f"/api/users/{member.user_id}",
                                      json={"current_password": MEMBER_PASSWORD})
    assert result.status_code == 422


def test_wrong_current_passwords_are_rate_limited_like_logins(
    as_member: CheckedClient, member: Account, anonymous: CheckedClient
) -> None:
    path = f"/api/users/{member.user_id}"
    for _ in range(5):
        result = as_member.simulate_patch(path, json={"password": "a new password 1",
                                                      "current_password": "wrong password"})
        assert result.status_code == 403
    limited = as_member.simulate_patch(path, json={"password": "a new password 1",
                                                   "current_password": MEMBER_PASSWORD})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    # The account's failures count for logins too.
    login = anonymous.simulate_post("/api/sessions", json={"email": member.email,
                                                           "password": MEMBER_PASSWORD},
                                    remote_addr="10.0.0.9")
    assert login.status_code == 429


# -- admin ----------------------------------------------------------------------

def test_an_admin_creates_users_with_a_role_and_a_password(client: CheckedClient, anonymous: CheckedClient) -> None:
    created = client.simulate_post("/api/users", json={
        "name": "New Admin", "email": "second@example.com", "role": "admin",
        "password": "second admin password"})
    assert created.status_code == 201
    assert created.json["role"] == "admin"
    assert "password" not in created.json
    login = anonymous.simulate_post("/api/sessions", json={"email": "second@example.com",
                                                           "password": "second admin password"})
    assert login.status_code == 201


def test_a_user_created_without_a_password_is_a_member_who_cannot_log_in(
    client: CheckedClient, anonymous: CheckedClient
) -> None:
    created = client.simulate_post("/api/users", json={"name": "P", "email": "p@example.com"})
    assert created.json["role"] == "member"
    assert anonymous.simulate_post("/api/sessions", json={"email": "p@example.com",
                                                          "password": "anything at all"}).status_code == 401


def test_an_admin_sets_another_users_password_without_knowing_the_old_one(
    client: CheckedClient, anonymous: CheckedClient, member: Account
) -> None:
    result = client.simulate_patch(f"/api/users/{member.user_id}", json={"password": "set by the admin"})
    assert result.status_code == 200
    assert anonymous.simulate_post("/api/sessions", json={"email": member.email,
                                                          "password": "set by the admin"}).status_code == 201


def test_an_admin_cannot_demote_or_delete_itself(client: CheckedClient, admin: Account) -> None:
    path = f"/api/users/{admin.user_id}"
    assert client.simulate_patch(path, json={"role": "member"}).status_code == 403
    assert client.simulate_put(path, json={"name": "A", "email": "admin@example.com",
                                           "role": "member"}).status_code == 403
    assert client.simulate_delete(path).status_code == 403
    assert client.simulate_patch(path, json={"role": "admin", "name": "Still Admin"}).status_code == 200
    assert client.simulate_get("/api/users").status_code == 200


def test_a_role_change_takes_effect_on_the_members_next_requests(
    client: CheckedClient, as_member: CheckedClient, member: Account
) -> None:
    assert as_member.simulate_get("/api/users").status_code == 403  # its session is now cached
    promoted = client.simulate_patch(f"/api/users/{member.user_id}", json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json["role"] == "admin"
    # The role trigger NOTIFYs t:<key> for each of its sessions.
    wait_until(lambda: as_member.simulate_get("/api/users").status_code == 200, 1.0)
    client.simulate_patch(f"/api/users/{member.user_id}", json={"role": "member"})
    wait_until(lambda: as_member.simulate_get("/api/users").status_code == 403, 1.0)


def test_the_chaos_switch_is_for_admins_only(runtime: Runtime, member: Account, admin: Account) -> None:
    def client_for(account: Account) -> falcon.testing.TestClient:
        app = create_app(runtime.users, runtime.sessions, chaos=lambda kind: [])
        return falcon.testing.TestClient(app, headers=account.headers)

    assert client_for(member).simulate_post("/admin/chaos/kill", json={"kind": "any"}).status_code == 403
    assert client_for(admin).simulate_post("/admin/chaos/kill", json={"kind": "any"}).status_code == 409


# -- wiring -----------------------------------------------------------------------

def test_an_app_built_without_the_middleware_fails_closed(runtime: Runtime, admin: Account) -> None:
    """The benchmark's variant: guarded resources find no principal and refuse."""
    app = create_app(runtime.users, runtime.sessions, without_authentication=True)
    result = falcon.testing.TestClient(app).simulate_get("/api/users")
    assert result.status_code == 500


def test_with_a_metrics_port_metrics_answer_only_there_and_nothing_else_does(
    runtime: Runtime, admin: Account
) -> None:
    # Unchecked client: a 404 for an API route on the metrics port is not an
    # answer of the API's, and the document does not describe it.
    app = create_app(runtime.users, runtime.sessions, metrics_port=9100)
    client = falcon.testing.TestClient(app, headers=admin.headers)
    assert client.simulate_get("/metrics", port=9100).status_code == 200
    assert client.simulate_get("/api/users", port=9100).status_code == 404
    assert client.simulate_get("/livez", port=9100).status_code == 404
    assert client.simulate_get("/api/users").status_code == 200
    # Decided by the route that would serve the request, however its path is spelled.
    for path in ("/metrics", "//metrics", "///metrics", "/%2Fmetrics", "/metrics/"):
        assert client.simulate_get(path).status_code == 404, path


def test_made_up_methods_are_not_remembered(runtime: Runtime, admin: Account) -> None:
    """The middleware's memo of guarded (resource, method) pairs stays bounded."""
    from app.auth import AuthMiddleware
    from app.resources.users import UsersCollection

    middleware = AuthMiddleware(runtime.sessions)
    resource = UsersCollection(runtime.users)
    for method in [f"X{n}" for n in range(50)] + ["GET", "POST"]:
        req = falcon.testing.create_asgi_req(method=method, path="/api/users",
                                             headers=admin.headers)
        asyncio.run(middleware.process_resource(req, falcon.asgi.Response(), resource, {}))
    assert set(middleware._guarded) == {(UsersCollection, "GET"), (UsersCollection, "POST")}


def test_with_a_metrics_port_the_dashboard_and_its_login_are_served_there_too(
    runtime: Runtime, admin: Account
) -> None:
    app = create_app(runtime.users, runtime.sessions, metrics_port=9100,
                     dashboard=runtime.dashboard)
    client = falcon.testing.TestClient(app, headers=admin.headers)
    for port in (9100, None):
        kwargs = {} if port is None else {"port": port}
        assert client.simulate_get("/dashboard", **kwargs).status_code == 200
        assert client.simulate_get("/dashboard/dashboard.js", **kwargs).status_code == 200
        assert client.simulate_get("/api/dashboard", **kwargs).status_code == 200
        assert client.simulate_get("/api/sessions/current", **kwargs).status_code == 200
    assert client.simulate_get("/api/users", port=9100).status_code == 404
