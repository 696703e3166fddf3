"""Logins, tokens, revocation and the failed-login rate limit."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher

from actors.cache import Sync
from app.config import Settings
from app.passwords import Passwords
from app.runtime import Runtime
from app.sessions_service import token_cache_key
from tests.app.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Account,
    CheckedClient,
    deaf_to_notifications,
    insert_user,
    make_client,
    open_session,
)
from tests.waiting import wait_until

MEMBER_PASSWORD = "member password 1"


def login(client: CheckedClient, email: str, password: str, address: str = "127.0.0.1") -> Any:
    return client.simulate_post("/api/sessions", json={"email": email, "password": password},
                                remote_addr=address)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def member(runtime: Runtime, db: psycopg.Connection[Any], passwords: Passwords) -> Account:
    return insert_user(db, passwords, "member@example.com", MEMBER_PASSWORD, name="Member")


# -- logging in -------------------------------------------------------------------

def test_a_login_answers_a_token_that_authenticates(anonymous: CheckedClient, admin: Account) -> None:
    result = login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert result.status_code == 201
    assert result.headers["Cache-Control"] == "no-store"
    body = result.json
    assert len(body["token"]) >= 43 and body["user_id"] == admin.user_id
    expires = datetime.fromisoformat(body["expires_at"])
    assert abs((expires - datetime.now(UTC)).total_seconds() - 86_400) < 60
    current = anonymous.simulate_get("/api/sessions/current", headers=bearer(body["token"]))
    assert current.status_code == 200
    assert current.json["user_id"] == admin.user_id and current.json["role"] == "admin"


def test_the_email_of_a_login_is_case_insensitive(anonymous: CheckedClient, admin: Account) -> None:
    assert login(anonymous, ADMIN_EMAIL.upper(), ADMIN_PASSWORD).status_code == 201


def test_only_the_sha256_of_a_token_is_stored(anonymous: CheckedClient, admin: Account,
                                              db: psycopg.Connection[Any]) -> None:
    token = login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD).json["token"]
    stored = [bytes(row[0]) for row in db.execute("SELECT token_hash FROM sessions")]
    assert hashlib.sha256(token.encode()).digest() in stored
    dump = str(db.execute("SELECT * FROM sessions").fetchall())
    assert token not in dump


def test_the_database_and_the_service_agree_on_token_cache_keys(db: psycopg.Connection[Any]) -> None:
    for n in range(50):
        digest = hashlib.sha256(str(n).encode()).digest()
        row = db.execute("SELECT session_cache_key(%s)", (digest,)).fetchone()
        assert row is not None and row[0] == token_cache_key(digest)
        assert 0 <= row[0] < 2**63


def test_unknown_email_wrong_password_and_no_password_fail_alike_after_the_same_argon2_work(
    anonymous: CheckedClient, admin: Account, client: CheckedClient, runtime: Runtime
) -> None:
    client.simulate_post("/api/users", json={"name": "NoPw", "email": "nopw@example.com"})
    answers = []
    for email, address in (("nobody@example.com", "10.0.0.1"), (ADMIN_EMAIL, "10.0.0.2"),
                           ("nopw@example.com", "10.0.0.3")):
        before = runtime.passwords.verifications
        result = login(anonymous, email, "wrong password!", address)
        # Every failure ran exactly one Argon2 verification: an unknown email
        # is checked against a dummy hash, so it takes as long.
        assert runtime.passwords.verifications == before + 1
        answers.append((result.status_code, result.json["type"], result.json["detail"],
                        result.headers["WWW-Authenticate"]))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401


def test_a_login_rehashes_a_password_hashed_with_older_parameters(
    anonymous: CheckedClient, db: psycopg.Connection[Any], passwords: Passwords
) -> None:
    old_hash = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash("old params pw 1")
    db.execute("INSERT INTO users (name, email, password_hash) VALUES ('O', 'o@example.com', %s)",
               (old_hash,))
    assert passwords.needs_rehash(old_hash)
    assert login(anonymous, "o@example.com", "old params pw 1").status_code == 201
    row = db.execute("SELECT password_hash FROM users WHERE email = 'o@example.com'").fetchone()
    assert row is not None and row[0] != old_hash and not passwords.needs_rehash(row[0])
    assert login(anonymous, "o@example.com", "old params pw 1").status_code == 201


@pytest.mark.parametrize("body", [{}, {"email": "a@example.com"}, {"password": "x"},
                                  {"email": "a@example.com", "password": "x", "role": "admin"},
                                  {"email": "", "password": "x"}, {"email": 5, "password": "x"},
                                  {"email": "a@example.com", "password": ""},
                                  {"email": "a@example.com", "password": "x" * 1025}])
def test_a_malformed_login_is_422(anonymous: CheckedClient, body: dict[str, Any]) -> None:
    assert anonymous.simulate_post("/api/sessions", json=body).status_code == 422


def test_the_session_lifetime_is_configurable(database_url: str, db: psycopg.Connection[Any],
                                              admin: Account, stop_actors: None) -> None:
    runtime = Runtime(Settings(database_url=database_url, db_workers=1, session_ttl=120),
                      database_url, passwords=Passwords(PasswordHasher(1, 8, 1)))
    runtime.start()
    try:
        assert runtime.wait_ready(10)
        # The admin's hash was made with the fixture's parameters: any works.
        session = asyncio.run(runtime.sessions.login(ADMIN_EMAIL, ADMIN_PASSWORD, "127.0.0.1"))
        assert abs((session.expires_at - datetime.now(UTC)).total_seconds() - 120) < 10
    finally:
        runtime.stop()


# -- rate limiting ----------------------------------------------------------------

def test_failed_logins_are_limited_per_email_with_retry_after(
    anonymous: CheckedClient, admin: Account, runtime: Runtime
) -> None:
    for n in range(5):
        assert login(anonymous, ADMIN_EMAIL, "wrong password!", f"10.1.0.{n}").status_code == 401
    before = runtime.passwords.verifications
    limited = login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.1.0.99")
    assert limited.status_code == 429
    assert limited.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Refused before the password is looked at: no Argon2 time to burn.
    assert runtime.passwords.verifications == before
    # Another account from the same addresses is not affected.
    assert login(anonymous, "nobody@example.com", "wrong password!", "10.1.0.1").status_code == 401


def test_failed_logins_are_limited_per_client_address(anonymous: CheckedClient, admin: Account) -> None:
    for n in range(5):
        assert login(anonymous, f"guess{n}@example.com", "wrong password!", "10.2.0.1").status_code == 401
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.2.0.1").status_code == 429
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.2.0.2").status_code == 201


def test_behind_a_trusted_proxy_logins_are_limited_per_forwarded_client(
    runtime: Runtime, admin: Account
) -> None:
    proxy = make_client(runtime, trusted_proxies=[ipaddress.ip_network("10.3.0.10/32")])

    def attempt(email: str, password: str, peer: str, forwarded: str) -> int:
        return int(proxy.simulate_post("/api/sessions", remote_addr=peer,
                                       headers={"X-Forwarded-For": forwarded},
                                       json={"email": email, "password": password}).status_code)

    # A client behind the proxy, prepending a forged address each time.
    for n in range(5):
        assert attempt(f"guess{n}@example.com", "wrong password!", "10.3.0.10",
                       f"198.51.100.{n}, 10.3.9.1") == 401
    assert attempt(ADMIN_EMAIL, ADMIN_PASSWORD, "10.3.0.10", "10.3.9.1") == 429
    # Another client behind the same proxy is not held back by it.
    assert attempt(ADMIN_EMAIL, ADMIN_PASSWORD, "10.3.0.10", "10.3.9.2") == 201
    # A peer that is not the proxy: its forged header is ignored, its own address counts.
    for n in range(5):
        assert attempt(f"probe{n}@example.com", "wrong password!", "10.3.7.7", "10.3.9.3") == 401
    assert attempt(ADMIN_EMAIL, ADMIN_PASSWORD, "10.3.7.7", "10.3.9.3") == 429
    assert attempt(ADMIN_EMAIL, ADMIN_PASSWORD, "10.3.0.10", "10.3.9.3") == 201


def test_successful_logins_are_not_limited(anonymous: CheckedClient, admin: Account) -> None:
    for _ in range(8):
        assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 201


@pytest.fixture
def strict_runtime(database_url: str, db: psycopg.Connection[Any], admin: Account,
                   stop_actors: None) -> Iterator[Runtime]:
    settings = Settings.from_env({"DATABASE_URL": database_url, "USERMGMT_DB_WORKERS": "1",
                                  "USERMGMT_LOGIN_RATE_LIMIT": "2/1"})
    runtime = Runtime(settings, database_url, passwords=Passwords(PasswordHasher(1, 8, 1)))
    runtime.start()
    assert runtime.wait_ready(10)
    yield runtime
    runtime.stop()


def test_the_limit_and_its_window_are_configurable_and_failures_age_out(strict_runtime: Runtime) -> None:
    anonymous = make_client(strict_runtime)
    assert login(anonymous, ADMIN_EMAIL, "wrong password!").status_code == 401
    assert login(anonymous, ADMIN_EMAIL, "wrong password!").status_code == 401
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 429
    time.sleep(1.1)
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 201


# -- revocation -------------------------------------------------------------------

def test_logging_out_revokes_the_token_at_once(anonymous: CheckedClient, admin: Account,
                                               runtime: Runtime) -> None:
    token = login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD).json["token"]
    assert anonymous.simulate_get("/api/users", headers=bearer(token)).status_code == 200
    assert anonymous.simulate_delete("/api/sessions/current", headers=bearer(token)).status_code == 204
    # No waiting for the NOTIFY: this process evicted it itself.
    assert anonymous.simulate_get("/api/users", headers=bearer(token)).status_code == 401
    assert anonymous.simulate_delete("/api/sessions/current", headers=bearer(token)).status_code == 401


def test_a_session_deleted_by_anyone_else_is_refused_within_a_second(
    anonymous: CheckedClient, admin: Account, db: psycopg.Connection[Any], runtime: Runtime
) -> None:
    token = open_session(db, admin.user_id)
    assert anonymous.simulate_get("/api/users", headers=bearer(token)).status_code == 200
    assert anonymous.simulate_get("/api/users", headers=bearer(token)).status_code == 200  # cached
    db.execute("DELETE FROM sessions WHERE token_hash = %s", (hashlib.sha256(token.encode()).digest(),))
    wait_until(lambda: anonymous.simulate_get("/api/users", headers=bearer(token)).status_code == 401, 1.0)


def test_deleting_a_user_revokes_every_session_of_it(
    client: CheckedClient, anonymous: CheckedClient, member: Account, db: psycopg.Connection[Any]
) -> None:
    second = open_session(db, member.user_id)
    for token in (member.token, second):
        assert anonymous.simulate_get("/api/sessions/current", headers=bearer(token)).status_code == 200
    assert client.simulate_delete(f"/api/users/{member.user_id}").status_code == 204
    for token in (member.token, second):
        wait_until(lambda t=token: anonymous.simulate_get(  # type: ignore[misc]
            "/api/sessions/current", headers=bearer(t)).status_code == 401, 1.0)
    assert db.execute("SELECT count(*) FROM sessions WHERE user_id = %s", (member.user_id,)).fetchone() == (0,)


def test_a_password_change_ends_every_other_session_but_the_current_one(
    anonymous: CheckedClient, member: Account, db: psycopg.Connection[Any]
) -> None:
    other = open_session(db, member.user_id)
    assert anonymous.simulate_get("/api/sessions/current", headers=bearer(other)).status_code == 200
    changed = anonymous.simulate_patch(
        f"/api/users/{member.user_id}", headers=member.headers,
        json={"password": "a brand new password", "current_password": MEMBER_PASSWORD})
    assert changed.status_code == 200
    assert anonymous.simulate_get("/api/sessions/current", headers=member.headers).status_code == 200
    wait_until(lambda: anonymous.simulate_get(
        "/api/sessions/current", headers=bearer(other)).status_code == 401, 1.0)


def test_an_admin_setting_a_password_ends_every_session_of_that_user(
    client: CheckedClient, anonymous: CheckedClient, member: Account
) -> None:
    assert anonymous.simulate_get("/api/sessions/current", headers=member.headers).status_code == 200
    assert client.simulate_patch(f"/api/users/{member.user_id}",
                                 json={"password": "reset by the admin"}).status_code == 200
    wait_until(lambda: anonymous.simulate_get(
        "/api/sessions/current", headers=member.headers).status_code == 401, 1.0)
    assert client.simulate_get("/api/users").status_code == 200  # the admin's own survives


# -- host-wide at once: the shared stamps, not the NOTIFY --------------------------

def test_with_notifications_late_a_revoked_session_is_refused_at_once(
    anonymous: CheckedClient, client: CheckedClient, admin: Account, member: Account,
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What another worker of the host sees right after the write answered."""
    second, outside = open_session(db, member.user_id), open_session(db, member.user_id)
    for token in (member.token, second, outside):
        assert anonymous.simulate_get("/api/sessions/current", headers=bearer(token)).status_code == 200
    deaf_to_notifications(monkeypatch)
    # Revoked by SQL, outside the service: only its NOTIFY can evict it.
    db.execute("DELETE FROM sessions WHERE token_hash = %s",
               (hashlib.sha256(outside.encode()).digest(),))
    time.sleep(0.2)
    assert anonymous.simulate_get("/api/sessions/current", headers=bearer(outside)).status_code == 200
    # A password change through the service stamps every session of the user.
    assert client.simulate_patch(f"/api/users/{member.user_id}",
                                 json={"password": "reset by the admin"}).status_code == 200
    for token in (member.token, second):
        assert anonymous.simulate_get("/api/sessions/current", headers=bearer(token)).status_code == 401


def test_with_notifications_late_a_new_role_applies_at_once(
    anonymous: CheckedClient, client: CheckedClient, member: Account,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    assert anonymous.simulate_get("/api/users", headers=member.headers).status_code == 403
    deaf_to_notifications(monkeypatch)
    assert client.simulate_patch(f"/api/users/{member.user_id}",
                                 json={"role": "admin"}).status_code == 200
    assert anonymous.simulate_get("/api/users", headers=member.headers).status_code == 200


def test_with_notifications_late_a_deleted_user_s_sessions_end_at_once(
    anonymous: CheckedClient, client: CheckedClient, member: Account,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    assert anonymous.simulate_get("/api/sessions/current", headers=member.headers).status_code == 200
    deaf_to_notifications(monkeypatch)
    assert client.simulate_delete(f"/api/users/{member.user_id}").status_code == 204
    assert anonymous.simulate_get("/api/sessions/current", headers=member.headers).status_code == 401


def test_a_logout_stamps_its_session_for_every_process_of_the_host(
    anonymous: CheckedClient, admin: Account
) -> None:
    from actors.stamps import shared

    token = login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD).json["token"]
    key = token_cache_key(hashlib.sha256(token.encode()).digest())
    before = shared().sessions.current(key)
    assert anonymous.simulate_delete("/api/sessions/current", headers=bearer(token)).status_code == 204
    assert shared().sessions.current(key) != before


def test_while_the_listener_is_down_tokens_are_checked_against_the_database(
    anonymous: CheckedClient, admin: Account, db: psycopg.Connection[Any], runtime: Runtime
) -> None:
    token = open_session(db, admin.user_id)
    assert anonymous.simulate_get("/api/users", headers=bearer(token)).status_code == 200
    runtime.coherence.mark_incoherent()
    db.execute("DELETE FROM sessions WHERE token_hash = %s", (hashlib.sha256(token.encode()).digest(),))
    # No notification needed: an incoherent cache is not trusted.
    assert anonymous.simulate_get("/api/users", headers=bearer(token)).status_code == 401


def test_argon2_runs_on_its_own_threads_never_on_the_event_loop_or_in_a_database_worker(
    anonymous: CheckedClient, client: CheckedClient, admin: Account, runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DbWorker must not hold its connection while Argon2 burns ~0.2 s of CPU,
    and the event loop must keep serving other connections meanwhile."""
    import threading

    threads: list[str] = []
    for name in ("hash", "verify"):
        real = getattr(runtime.passwords, name)

        def spy(*args: Any, _real: Any = real) -> Any:
            threads.append(threading.current_thread().name)
            return _real(*args)

        monkeypatch.setattr(runtime.passwords, name, spy)
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 201
    assert login(anonymous, ADMIN_EMAIL, "wrong password!").status_code == 401
    created = client.simulate_post("/api/users", json={"name": "H", "email": "h@example.com",
                                                       "password": "hashed somewhere"})
    assert created.status_code == 201
    assert client.simulate_patch(f"/api/users/{admin.user_id}", json={
        "password": "a new admin password", "current_password": ADMIN_PASSWORD}).status_code == 200
    assert len(threads) >= 4
    assert all(name.startswith("usermgmt-argon2") for name in threads), threads


def test_with_the_database_down_a_cached_token_still_works_but_not_with_busy_workers(
    anonymous: CheckedClient, admin: Account, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like cached users: no revocation can be committed while the database is down."""
    from actors.errors import DatabaseUnavailable, NoWorkerAvailable

    assert anonymous.simulate_get("/api/sessions/current", headers=admin.headers).status_code == 200
    assert runtime.tokens is not None and runtime.tokens.actor_ref is not None
    runtime.tokens.actor_ref.ask(Sync(), timeout=2)  # the put of that session has landed
    runtime.coherence.mark_incoherent()  # the listener lost its connection too
    client = runtime.sessions._client

    def down(message: Any, *, idempotent: bool) -> Any:
        raise DatabaseUnavailable("down")

    monkeypatch.setattr(client, "ask", down)
    assert anonymous.simulate_get("/api/sessions/current", headers=admin.headers).status_code == 200
    unknown = anonymous.simulate_get("/api/sessions/current", headers={"Authorization": "Bearer " + "x" * 43})
    assert unknown.status_code == 503 and unknown.headers["Retry-After"]

    def busy(message: Any, *, idempotent: bool) -> Any:
        raise NoWorkerAvailable("busy")

    monkeypatch.setattr(client, "ask", busy)
    # Workers hold connections: the database is up, so the cache is not trusted.
    assert anonymous.simulate_get("/api/sessions/current", headers=admin.headers).status_code == 503


# -- who a limit can lock --------------------------------------------------------

def test_a_correct_password_logs_in_from_a_shared_address_others_failed_from(
    anonymous: CheckedClient, admin: Account, member: Account
) -> None:
    """Behind a proxy or NAT, anyone's failures must not lock everyone out."""
    shared = "10.20.0.1"
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, shared).status_code == 201
    assert login(anonymous, member.email, MEMBER_PASSWORD, shared).status_code == 201
    for n in range(12):
        assert login(anonymous, f"guess{n}@example.com", "wrong password!", shared).status_code in (401, 429)
    assert login(anonymous, "one.more@example.com", "wrong password!", shared).status_code == 429
    # Accounts that logged in from this address before are not held back by it.
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, shared).status_code == 201
    assert login(anonymous, member.email, MEMBER_PASSWORD, shared).status_code == 201


def test_a_guesser_elsewhere_does_not_lock_the_owner_out_at_its_usual_address(
    anonymous: CheckedClient, admin: Account
) -> None:
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.21.0.1").status_code == 201
    for n in range(5):
        assert login(anonymous, ADMIN_EMAIL, "wrong password!", f"10.22.0.{n}").status_code == 401
    # From a new address the account's own limit holds...
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.23.0.1").status_code == 429
    # ...but not at the address the owner logs in from.
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.21.0.1").status_code == 201


def test_failures_from_a_known_address_are_limited_for_that_pair(
    anonymous: CheckedClient, admin: Account, runtime: Runtime
) -> None:
    """A known address is not a free pass: its own failures are limited too."""
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.24.0.1").status_code == 201
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.24.0.2").status_code == 201
    for _ in range(5):
        assert login(anonymous, ADMIN_EMAIL, "wrong password!", "10.24.0.1").status_code == 401
    before = runtime.passwords.verifications
    assert login(anonymous, ADMIN_EMAIL, "wrong password!", "10.24.0.1").status_code == 429
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.24.0.1").status_code == 429
    assert runtime.passwords.verifications == before
    # The account itself and its other known address are not held back.
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.24.0.2").status_code == 201


def test_successful_logins_leave_no_failure_behind(
    anonymous: CheckedClient, admin: Account, db: psycopg.Connection[Any]
) -> None:
    for _ in range(6):
        assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.25.0.1").status_code == 201
    assert db.execute("SELECT count(*) FROM login_failures").fetchone() == (0,)
    for _ in range(4):
        assert login(anonymous, ADMIN_EMAIL, "wrong password!", "10.25.0.2").status_code == 401
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.25.0.2").status_code == 201


def test_a_check_that_found_no_argon2_slot_gives_its_reservation_back(
    anonymous: CheckedClient, admin: Account, runtime: Runtime, db: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.passwords import PasswordSlotsBusy

    async def busy(*args: Any) -> Any:
        raise PasswordSlotsBusy("busy")

    monkeypatch.setattr(runtime.passwords, "verify_async", busy)
    for _ in range(8):
        result = login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.26.0.1")
        assert result.status_code == 503 and result.headers["Retry-After"]
    assert db.execute("SELECT count(*) FROM login_failures").fetchone() == (0,)
    monkeypatch.undo()
    assert login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD, "10.26.0.1").status_code == 201


# -- the limit under concurrency ----------------------------------------------------

def many_at_once(runtime: Runtime, email: str, password: str, n: int,
                 address: str = "10.30.0.1") -> tuple[list[BaseException | object], Passwords]:
    """``n`` concurrent logins through a service whose Argon2 slots never refuse."""
    from app.passwords import CpuSlots
    from app.sessions_service import SessionsService
    from app.worker_client import WorkerClient

    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
                          CpuSlots(slots=4, max_wait=60, max_queued=10_000))
    service = SessionsService(WorkerClient(runtime.workers, 30.0, 10.0), passwords)

    async def attempts() -> list[BaseException | object]:
        return await asyncio.gather(*(service.login(email, password, address)
                                      for _ in range(n)), return_exceptions=True)

    try:
        return asyncio.run(attempts()), passwords
    finally:
        passwords.slots.close()


def test_fifty_concurrent_wrong_passwords_evaluate_at_most_the_limit(
    runtime: Runtime, admin: Account, db: psycopg.Connection[Any]
) -> None:
    from app.domain import InvalidCredentials, RateLimited

    outcomes, passwords = many_at_once(runtime, ADMIN_EMAIL, "wrong password!", 50)
    kinds = [type(o).__name__ for o in outcomes]
    assert passwords.verifications <= 5, kinds
    assert sum(isinstance(o, InvalidCredentials) for o in outcomes) == passwords.verifications
    assert sum(isinstance(o, RateLimited) for o in outcomes) >= 45, kinds
    assert db.execute("SELECT count(*) FROM login_failures WHERE subject = %s",
                      ("e:" + ADMIN_EMAIL,)).fetchone() == (passwords.verifications,)


def test_concurrent_correct_logins_are_limited_per_account_and_sessions_capped(
    database_url: str, db: psycopg.Connection[Any], admin: Account, stop_actors: None
) -> None:
    from app.domain import RateLimited
    from app.sessions_service import NewSession

    settings = Settings.from_env({"DATABASE_URL": database_url, "USERMGMT_DB_WORKERS": "2",
                                  "USERMGMT_LOGIN_SUCCESS_LIMIT": "8",
                                  "USERMGMT_MAX_SESSIONS": "3"})
    runtime = Runtime(settings, database_url, passwords=Passwords(PasswordHasher(1, 8, 1)))
    runtime.start()
    try:
        assert runtime.wait_ready(10)
        limits = runtime.sessions._limit
        assert (limits.successes, limits.max_sessions) == (8, 3)
        service = runtime.sessions

        async def attempts() -> list[BaseException | object]:
            return await asyncio.gather(*(service.login(ADMIN_EMAIL, ADMIN_PASSWORD, "10.31.0.1")
                                          for _ in range(20)), return_exceptions=True)

        outcomes = asyncio.run(attempts())
    finally:
        runtime.stop()
    logged_in = [o for o in outcomes if isinstance(o, NewSession)]
    assert 1 <= len(logged_in) <= 8, [type(o).__name__ for o in outcomes]
    assert all(isinstance(o, (NewSession, RateLimited)) or "busy" in str(o) for o in outcomes)
    # The fixture's session plus those: at most 3 remain, the newest ones.
    assert db.execute("SELECT count(*) FROM sessions WHERE user_id = %s",
                      (admin.user_id,)).fetchone() == (3,)


def test_sessions_past_the_cap_end_oldest_first_and_are_refused_at_once(
    database_url: str, db: psycopg.Connection[Any], admin: Account, stop_actors: None
) -> None:
    settings = Settings.from_env({"DATABASE_URL": database_url, "USERMGMT_DB_WORKERS": "1",
                                  "USERMGMT_MAX_SESSIONS": "2"})
    runtime = Runtime(settings, database_url, passwords=Passwords(PasswordHasher(1, 8, 1)))
    runtime.start()
    try:
        assert runtime.wait_ready(10)
        anonymous = make_client(runtime)
        tokens = [login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD).json["token"] for _ in range(2)]
        for token in tokens:  # cached now
            assert anonymous.simulate_get("/api/sessions/current", headers=bearer(token)).status_code == 200
        newest = login(anonymous, ADMIN_EMAIL, ADMIN_PASSWORD).json["token"]
        # The fixture's session and the first login are gone; no NOTIFY awaited.
        assert anonymous.simulate_get("/api/sessions/current", headers=bearer(tokens[0])).status_code == 401
        assert anonymous.simulate_get("/api/sessions/current", headers=admin.headers).status_code == 401
        for token in (tokens[1], newest):
            assert anonymous.simulate_get("/api/sessions/current", headers=bearer(token)).status_code == 200
    finally:
        runtime.stop()
    assert db.execute("SELECT count(*) FROM sessions").fetchone() == (2,)
