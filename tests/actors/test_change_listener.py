"""The change listener: NOTIFY → evict, flush on (re)connect, crash on loss."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pykka
import pytest

from actors.cache import CacheActor, CacheHandle, Sync
from actors.change_listener import ChangeListener, Coherence, GetStatus
from supervisors import Backoff, ChildSpec, Supervisor
from tests.waiting import wait_until

RECONNECT = Backoff(min_delay=0.05, max_delay=1.0)


@pytest.fixture
def tree(database_url: str, db: psycopg.Connection[Any], stop_actors: None) -> Iterator[tuple[CacheHandle[str], Coherence, pykka.ActorRef[Any]]]:
    handle: CacheHandle[str] = CacheHandle()
    coherence = Coherence()
    root = Supervisor.start(
        strategy="rest_for_one",
        intensity=5,
        period=5.0,
        children=[
            ChildSpec(id="cache", actor_class=CacheActor, kwargs={"handle": handle}),
            ChildSpec(id="listener", actor_class=ChangeListener, kwargs={
                "conninfo": database_url, "cache": handle, "coherence": coherence,
                "connect_kwargs": {"application_name": "listener-test"},
                "reconnect_delay": RECONNECT.delay}),
        ],
    )
    wait_until(lambda: coherence.is_coherent)
    yield handle, coherence, root
    root.stop(timeout=5)


def heard(root: pykka.ActorRef[Any], count: int) -> None:
    """Wait until the listener applied ``count`` notifications, then the cache did."""
    listener = {c: r for c, r, _ in root.proxy().which_children().get(timeout=2)}["listener"]
    wait_until(lambda: listener.proxy().notifications.get(timeout=2) >= count)


def cached(handle: CacheHandle[str], key: int, value: str) -> None:
    sync(handle)  # evictions already sent are processed before the token
    token = handle.read_token(key)
    handle.put(key, value, token)
    sync(handle)
    assert handle.get(key) == value


def sync(handle: CacheHandle[str]) -> None:
    assert handle.actor_ref is not None
    handle.actor_ref.ask(Sync(), timeout=2)


def test_an_update_made_with_sql_evicts_the_id(tree: Any, db: psycopg.Connection[Any]) -> None:
    handle, _, root = tree
    row = db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@x.io') RETURNING id").fetchone()
    assert row is not None
    heard(root, 1)
    cached(handle, row[0], "v1")
    db.execute("UPDATE users SET name = 'b' WHERE id = %s", (row[0],))
    wait_until(lambda: handle.get(row[0]) is None, 1.0)


def test_a_delete_evicts_the_id(tree: Any, db: psycopg.Connection[Any]) -> None:
    handle, _, root = tree
    row = db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@x.io') RETURNING id").fetchone()
    assert row is not None
    heard(root, 1)
    cached(handle, row[0], "v1")
    db.execute("DELETE FROM users WHERE id = %s", (row[0],))
    wait_until(lambda: handle.get(row[0]) is None, 1.0)


def test_a_truncate_flushes_everything(tree: Any, db: psycopg.Connection[Any]) -> None:
    handle, _, _ = tree
    cached(handle, 1, "one")
    cached(handle, 2, "two")
    db.execute("TRUNCATE users CASCADE")
    wait_until(lambda: handle.get(1) is None and handle.get(2) is None, 1.0)


def test_a_terminated_connection_makes_the_cache_incoherent_until_a_new_listener_flushed_it(
    tree: Any, db: psycopg.Connection[Any]
) -> None:
    handle, coherence, root = tree
    listener_before = {c: r for c, r, _ in root.proxy().which_children().get(timeout=2)}["listener"]
    cached(handle, 7, "seven")
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'listener-test'")
    wait_until(lambda: {c: r for c, r, _ in root.proxy().which_children().get(timeout=2)}["listener"]
               not in (None, listener_before), 3.0)
    wait_until(lambda: coherence.is_coherent, 3.0)
    sync(handle)
    assert handle.get(7) is None


def test_a_listener_that_cannot_connect_keeps_retrying_without_failing_its_start() -> None:
    handle: CacheHandle[str] = CacheHandle()
    coherence = Coherence()
    failures: list[int] = []  # the attempt number of each failure, as asked for its delay

    def delay(attempt: int) -> float:
        failures.append(attempt)
        return 0.05

    ref = ChangeListener.start("postgresql://nobody@127.0.0.1:1/none", handle, coherence,
                               {"connect_timeout": 1}, reconnect_delay=delay)
    try:
        wait_until(lambda: len(failures) >= 3, 5.0, "three failed connection attempts")
        assert failures[:3] == [0, 1, 2]  # each retry failed again, and backed off further
        assert ref.is_alive()
        assert not coherence.is_coherent
        assert ref.proxy().status().get(timeout=2).listening is False
    finally:
        ref.stop(timeout=5)


def test_status_tells_whether_it_listens_and_when_it_last_heard(
    tree: Any, db: psycopg.Connection[Any]
) -> None:
    _, _, root = tree
    listener = {c: r for c, r, _ in root.proxy().which_children().get(timeout=2)}["listener"]
    before = listener.proxy().status().get(timeout=2)
    assert before.listening and before.connected_at is not None
    assert (before.notifications, before.last_notification_at) == (0, None)
    started = time.time()
    db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@x.io')")
    heard(root, 1)
    after = listener.ask(GetStatus(), timeout=2)
    assert after == listener.proxy().status().get(timeout=2)
    assert after.notifications == 1
    assert after.last_notification_at is not None and after.last_notification_at >= started
