"""What a real server logs while every error status is driven through it, at DEBUG.

Expected outcomes (404, 409, 412, ...) are answers, not failures: no
traceback for any of them; and no email, token or password in any log
line at any level.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.integration.server import Server, login
from tests.integration.test_login_limits import at_once

pytestmark = pytest.mark.integration

MEMBER_EMAIL = "quiet.member@example.com"
MEMBER_PASSWORD = "the member's secret"
WRONG_PASSWORD = "a wrong secret!"


@pytest.fixture
def debug_server(database_url: str, db: psycopg.Connection[Any], tmp_path: Path) -> Iterator[Server]:
    # A limit of 20 per subject: a flood of distinct accounts from one
    # address keeps up to 20 checks in flight, more than the Argon2 slots
    # take (503), and the rest is refused (429).
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(tmp_path / "var"),
           "USERMGMT_DB_WORKERS": "2", "USERMGMT_LOG_LEVEL": "DEBUG",
           "USERMGMT_LOGIN_RATE_LIMIT": "20"}
    with Server(env, tmp_path / "server.log", workers=2) as running:
        yield running


def drive_every_error_status(server: Server) -> tuple[set[int], list[str]]:
    """Answers seen, and the tokens handed out meanwhile."""
    url, http = server.url, server.http
    seen: set[int] = set()

    def keep(response: requests.Response) -> requests.Response:
        seen.add(response.status_code)
        return response

    created = keep(http.post(url + "/api/users", timeout=10, json={
        "name": "Quiet", "email": MEMBER_EMAIL, "password": MEMBER_PASSWORD}))
    member_id = created.json()["id"]
    member_token = login(requests.Session(), url, MEMBER_EMAIL, MEMBER_PASSWORD).json()["token"]
    as_member = {"Authorization": f"Bearer {member_token}"}
    item = f"{url}/api/users/{member_id}"
    keep(http.post(url + "/api/users", data=b"{", timeout=10,
                   headers={"Content-Type": "application/json"}))                        # 400
    keep(requests.get(url + "/api/users", timeout=10))                                  # 401
    keep(requests.get(url + "/api/users", timeout=10,
                      headers={"Authorization": f"Bearer {member_token}x"}))            # 401
    keep(login(requests.Session(), url, MEMBER_EMAIL, WRONG_PASSWORD))                   # 401
    keep(requests.get(url + "/api/users", headers=as_member, timeout=10))                # 403
    keep(requests.patch(item, headers=as_member, timeout=10,
                        json={"password": "a new secret 1", "current_password": WRONG_PASSWORD}))
    keep(requests.patch(item, headers=as_member, timeout=10,
                        json={"email": "moved." + MEMBER_EMAIL}))                        # 403
    keep(http.get(url + "/api/users/999999", timeout=10))                                # 404
    keep(http.get(url + "/nowhere", timeout=10))                                         # 404
    keep(http.put(url + "/api/users", json={}, timeout=10))                              # 405
    keep(http.post(url + "/api/users", timeout=10,
                   json={"name": "Dup", "email": MEMBER_EMAIL.upper()}))                 # 409
    keep(http.patch(item, json={"name": "Q"}, headers={"If-Match": '"1-99"'}, timeout=10))  # 412
    keep(http.post(url + "/api/users", data=b"{" + b" " * 70_000 + b"}", timeout=10,
                   headers={"Content-Type": "application/json"}))                       # 413
    keep(http.post(url + "/api/users", data=b"{}", timeout=10,
                   headers={"Content-Type": "text/plain"}))                             # 415
    keep(http.post(url + "/api/users", timeout=10,
                   json={"name": "X", "email": "not an email " + MEMBER_EMAIL}))          # 422
    for response in at_once([server], MEMBER_EMAIL, WRONG_PASSWORD, 1):
        keep(response)
    # Distinct accounts from one address: 503 past the Argon2 slots, 429 past the limit.
    flood = [f"nobody{n}@example.com" for n in range(40)]
    from concurrent.futures import ThreadPoolExecutor

    def guess(email: str) -> requests.Response:
        with requests.Session() as session:
            return login(session, url, email, WRONG_PASSWORD)

    with ThreadPoolExecutor(40) as pool:
        for response in pool.map(guess, flood):
            keep(response)
    return seen, [member_token, str(server.admin.token)]


def test_no_error_status_logs_a_traceback_or_a_secret(debug_server: Server) -> None:
    seen, tokens = drive_every_error_status(debug_server)
    assert {400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 503} <= seen, sorted(seen)
    time.sleep(1.0)  # let every worker's lines reach the log
    log = debug_server.log_path.read_text(errors="replace")
    assert '"level":"debug"' in log
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if line.startswith("{")]
    assert lines
    for line in lines:
        assert "exception" not in json.loads(line), line
    secrets = [MEMBER_EMAIL, MEMBER_EMAIL.upper(), debug_server.admin.email,
               MEMBER_PASSWORD, WRONG_PASSWORD, debug_server.admin.password, "nobody",
               "example.com", *tokens]
    for secret in secrets:
        assert secret not in log, secret
