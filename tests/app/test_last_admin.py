"""There is always at least one admin, however many admins act at once."""

from __future__ import annotations

import asyncio
from typing import Any

import falcon.testing
import psycopg
import pytest

from app.app import create_app
from app.passwords import Passwords
from app.runtime import Runtime
from tests.app.conftest import Account, insert_user
from tests.openapi_check import assert_conforms

RUNS = 20


def admins(db: psycopg.Connection[Any]) -> list[int]:
    return [int(row[0]) for row in db.execute("SELECT id FROM users WHERE role = 'admin'")]


def two_admins(db: psycopg.Connection[Any], passwords: Passwords, run: int) -> tuple[Account, Account]:
    """Two fresh admins, and every other admin demoted (by SQL) so these are the last two."""
    a = insert_user(db, passwords, f"a{run}@example.com", "admin a password", role="admin")
    b = insert_user(db, passwords, f"b{run}@example.com", "admin b password", role="admin")
    db.execute("UPDATE users SET role = 'member' WHERE role = 'admin' AND id <> ALL(%s)",
               ([a.user_id, b.user_id],))
    return a, b


async def each_acts_on_the_other(runtime: Runtime, a: Account, b: Account,
                                 method: str, body: dict[str, Any] | None) -> list[Any]:
    app = create_app(runtime.users, runtime.sessions)
    async with falcon.testing.ASGIConductor(app) as conductor:
        results = await asyncio.gather(*(
            conductor.simulate_request(method, f"/api/users/{target.user_id}", json=body,
                                       headers=actor.headers)
            for actor, target in ((a, b), (b, a))))
    for target, result in zip((b, a), results, strict=True):
        assert_conforms(method, f"/api/users/{target.user_id}", result)
    return list(results)


@pytest.mark.parametrize(("method", "body"), [("PATCH", {"role": "member"}), ("DELETE", None)],
                         ids=["demote", "delete"])
def test_two_admins_demoting_or_deleting_each_other_at_once_leave_one_admin(
    runtime: Runtime, db: psycopg.Connection[Any], passwords: Passwords,
    method: str, body: dict[str, Any] | None
) -> None:
    conflicts = 0
    for run in range(RUNS):
        a, b = two_admins(db, passwords, run)
        results = asyncio.run(each_acts_on_the_other(runtime, a, b, method, body))
        statuses = sorted(r.status_code for r in results)
        left = admins(db)
        assert len(left) == 1, (run, statuses, left)
        # The loser is refused: 409 by the database when both passed their
        # role checks at once; when the winner's commit came first, the
        # loser's own token already says member (404 for another's id, as
        # for any member) or, deleted, nobody (401).
        refused = 404 if method == "PATCH" else 401
        assert statuses in ([200, 409], [204, 409], [200, refused], [204, refused]), (run, statuses)
        for result in results:
            if result.status_code == 409:
                conflicts += 1
                assert result.json["type"] == "urn:usermgmt:problem:last-admin"
        db.execute("DELETE FROM users WHERE role = 'member' AND email LIKE '_%%@example.com'"
                   " AND email <> 'admin@example.com'")
    assert conflicts >= 1, "the database never had to decide"


def test_the_last_admin_cannot_be_demoted_or_deleted_even_by_sql(
    runtime: Runtime, db: psycopg.Connection[Any], admin: Account
) -> None:
    assert admins(db) == [admin.user_id]
    for statement in ("UPDATE users SET role = 'member' WHERE id = %s",
                      "DELETE FROM users WHERE id = %s"):
        with pytest.raises(psycopg.Error) as exc:
            db.execute(statement, (admin.user_id,))
        assert exc.value.sqlstate == "UM001"
    assert admins(db) == [admin.user_id]
