"""Read-through caching of GET /api/users/{id}, kept coherent by NOTIFY."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from actors.cache import Sync
from actors.errors import DatabaseUnavailable
from actors.messages import GetUsers
from app.runtime import Runtime
from tests.app.conftest import CheckedClient, deaf_to_notifications
from tests.waiting import wait_until


def sync_cache(runtime: Runtime) -> None:
    """Wait until the cache actor processed everything sent to it so far."""
    assert runtime.cache is not None and runtime.cache.actor_ref is not None
    runtime.cache.actor_ref.ask(Sync(), timeout=2)


def listener_ref(runtime: Runtime) -> Any:
    assert runtime.root is not None
    children = runtime.root.proxy().which_children().get(timeout=2)
    return {cid: ref for cid, ref, _ in children}["listener"]


def notifications_heard(runtime: Runtime) -> int:
    return int(listener_ref(runtime).proxy().notifications.get(timeout=2))


def settle(runtime: Runtime, writes: int) -> None:
    """Wait until the NOTIFY of ``writes`` writes reached the cache."""
    wait_until(lambda: notifications_heard(runtime) >= writes)
    sync_cache(runtime)


def create(client: CheckedClient, runtime: Runtime) -> dict[str, Any]:
    result = client.simulate_post("/api/users", json={"name": "Cached", "email": "c@example.com"})
    assert result.status_code == 201
    settle(runtime, 1)
    created: dict[str, Any] = result.json
    return created


def test_a_second_read_is_served_from_the_cache_without_a_database_worker(
    client: CheckedClient, runtime: Runtime
) -> None:
    user = create(client, runtime)
    first = client.simulate_get(f"/api/users/{user['id']}")
    sync_cache(runtime)
    checkouts = runtime.workers.stats().checkouts
    assert runtime.cache is not None
    hits = runtime.cache.stats().hits
    second = client.simulate_get(f"/api/users/{user['id']}")
    assert second.json == first.json
    assert second.headers["ETag"] == first.headers["ETag"]
    assert runtime.workers.stats().checkouts == checkouts
    assert runtime.cache.stats().hits == hits + 1


def test_a_write_through_the_api_is_visible_on_the_next_read(client: CheckedClient, runtime: Runtime) -> None:
    user = create(client, runtime)
    client.simulate_get(f"/api/users/{user['id']}")
    sync_cache(runtime)
    client.simulate_patch(f"/api/users/{user['id']}", json={"name": "Changed"})
    assert client.simulate_get(f"/api/users/{user['id']}").json["name"] == "Changed"
    client.simulate_delete(f"/api/users/{user['id']}")
    assert client.simulate_get(f"/api/users/{user['id']}").status_code == 404


def test_a_change_made_with_sql_evicts_the_cached_row_within_a_second(
    client: CheckedClient, runtime: Runtime, db: psycopg.Connection[Any]
) -> None:
    user = create(client, runtime)
    client.simulate_get(f"/api/users/{user['id']}")
    sync_cache(runtime)
    db.execute("UPDATE users SET name = 'From psql' WHERE id = %s", (user["id"],))
    wait_until(lambda: client.simulate_get(f"/api/users/{user['id']}").json["name"] == "From psql", 1.0)


def test_a_read_that_started_before_an_update_never_writes_the_old_row_back(
    client: CheckedClient, runtime: Runtime, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forces the interleaving: read row v1 → update to v2 → eviction processed → put of v1."""
    user = create(client, runtime)
    service = runtime.users
    real_ask = service._ask

    async def read_then_update(message: Any, *, idempotent: bool) -> Any:
        row = await real_ask(message, idempotent=idempotent)
        if isinstance(message, GetUsers):
            db.execute("UPDATE users SET name = 'Newer' WHERE id = %s", (user["id"],))
            # The listener evicts on NOTIFY: wait until the cache processed it.
            wait_until(lambda: notifications_heard(runtime) == 2)
            sync_cache(runtime)
        return row

    monkeypatch.setattr(service, "_ask", read_then_update)
    stale = client.simulate_get(f"/api/users/{user['id']}")
    assert stale.json["name"] == "Cached"  # the read itself saw v1
    monkeypatch.setattr(service, "_ask", real_ask)
    sync_cache(runtime)  # the put of v1 has been processed (and refused)
    assert runtime.cache is not None
    assert runtime.cache.stats().rejected_puts >= 1
    fresh = client.simulate_get(f"/api/users/{user['id']}")
    assert fresh.json["name"] == "Newer"
    assert fresh.json["version"] == 2


def test_while_the_listener_is_down_reads_bypass_the_cache(client: CheckedClient, runtime: Runtime) -> None:
    user = create(client, runtime)
    client.simulate_get(f"/api/users/{user['id']}")
    sync_cache(runtime)
    runtime.coherence.mark_incoherent()
    checkouts = runtime.workers.stats().checkouts
    assert client.simulate_get(f"/api/users/{user['id']}").status_code == 200
    # One for the token (the token cache is bypassed too), one for the user.
    assert runtime.workers.stats().checkouts == checkouts + 2


def test_when_the_database_is_unreachable_a_cached_row_is_still_served(
    client: CheckedClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = create(client, runtime)
    client.simulate_get(f"/api/users/{user['id']}")
    sync_cache(runtime)
    runtime.coherence.mark_incoherent()

    async def unreachable(message: Any, *, idempotent: bool) -> Any:
        raise DatabaseUnavailable("down")

    monkeypatch.setattr(runtime.users, "_ask", unreachable)
    assert client.simulate_get(f"/api/users/{user['id']}").status_code == 200
    missing = client.simulate_get("/api/users/999999")
    assert missing.status_code == 503
    assert missing.headers["Retry-After"] == "1"


def test_a_restarted_listener_flushes_the_cache_before_it_is_trusted_again(
    client: CheckedClient, runtime: Runtime, db: psycopg.Connection[Any]
) -> None:
    from supervisors import crash

    user = create(client, runtime)
    client.simulate_get(f"/api/users/{user['id']}")
    sync_cache(runtime)
    assert runtime.cache is not None and len(runtime.cache.table) == 1
    crash(listener_ref(runtime))
    wait_until(lambda: not runtime.coherence.is_coherent or len(runtime.cache.table) == 0, 2)  # type: ignore[union-attr]
    wait_until(lambda: runtime.coherence.is_coherent, 5)
    sync_cache(runtime)
    assert len(runtime.cache.table) == 0
    assert client.simulate_get(f"/api/users/{user['id']}").status_code == 200


# -- host-wide read-your-writes through the shared stamps -------------------------


def test_a_write_another_process_stamped_is_never_served_from_this_cache(
    client: CheckedClient, runtime: Runtime, db: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from actors.stamps import shared

    user = create(client, runtime)
    client.simulate_get(f"/api/users/{user['id']}")
    sync_cache(runtime)
    deaf_to_notifications(monkeypatch)
    # Another worker of the host commits a change; its NOTIFY is not here yet.
    db.execute("UPDATE users SET name = 'Elsewhere' WHERE id = %s", (user["id"],))
    time.sleep(0.2)
    assert client.simulate_get(f"/api/users/{user['id']}").json["name"] == "Cached"
    # ... and stamps it before answering its client: from now on, nobody serves the old row.
    shared().users.bump(user["id"])
    assert client.simulate_get(f"/api/users/{user['id']}").json["name"] == "Elsewhere"


def test_a_write_through_the_api_stamps_the_row_for_every_process(
    client: CheckedClient, runtime: Runtime
) -> None:
    from actors.stamps import shared

    user = create(client, runtime)
    before = shared().users.current(user["id"])
    assert client.simulate_patch(f"/api/users/{user['id']}", json={"name": "N"}).status_code == 200
    after_patch = shared().users.current(user["id"])
    assert after_patch != before
    assert client.simulate_delete(f"/api/users/{user['id']}").status_code == 204
    assert shared().users.current(user["id"]) != after_patch
