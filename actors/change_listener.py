"""ChangeListener: keeps this process's cache coherent with the database.

A database trigger NOTIFYs ``users_changed`` with ``<id>:<version>`` on
every insert, update and delete, whoever made it (this process, another
worker, another host, psql); ``*`` after a TRUNCATE. The listener holds its
own ``LISTEN`` connection (not from the pool: it must never be borrowed)
and evicts each changed id from the cache.

The same channel carries session changes for the optional token cache:
``t:<key>`` when a session is deleted (revoked, or its user deleted) or
its user's role changed, ``t:*`` after a TRUNCATE of ``sessions``. ``*``
flushes both caches. Both caches share one coherence flag: a listener
that is down may miss a revocation as easily as a user change.

Coherence rules:

* Notifications may have been missed while the listener had no connection,
  so after every (re)connect it flushes the cache *after* ``LISTEN`` is in
  place, and only then marks the cache coherent.
* While it is not coherent, request threads do not answer from the cache:
  they read the database (and fall back to a cached row only when the
  database itself cannot be reached — nobody can change a row then).

A reader thread owned by the actor waits for notifications so that the
actor's mailbox stays free. When the connection drops, the reader tells the
actor, which crashes ("let it crash"): its supervisor starts a fresh
listener, which reconnects — or, while the database is down, keeps retrying
with backoff without failing its start, so an outage does not burn through
the supervisor's restart intensity.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pykka

from actors.cache import CacheHandle
from actors.retry import RetryLater

__all__ = [
    "CHANNEL",
    "ChangeListener",
    "Coherence",
    "GetStatus",
    "ListenerConnectionLost",
    "ListenerStatus",
]

logger = logging.getLogger(__name__)

CHANNEL = "users_changed"
# How often the reader thread looks up from waiting to check for a stop.
_POLL_SECONDS = 0.5


class ListenerConnectionLost(Exception):
    """The LISTEN connection dropped; the listener ends to be replaced."""


class Coherence:
    """Whether cached rows may be served: set only while a listener listens.

    Thread: any; ``is_coherent`` is a lock-free read on the request path.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def is_coherent(self) -> bool:
        return self._event.is_set()

    def mark_coherent(self) -> None:
        self._event.set()

    def mark_incoherent(self) -> None:
        self._event.clear()


@dataclass(frozen=True, slots=True)
class ListenerStatus:
    """What a listener can say about itself (for operators).

    Attributes:
        listening: whether its LISTEN connection is up.
        notifications: notifications applied since this listener started.
        last_notification_at: Unix time of the last one, if any.
        connected_at: Unix time its connection was made, if it has one.
    """

    listening: bool
    notifications: int
    last_notification_at: float | None
    connected_at: float | None


@dataclass(frozen=True, slots=True)
class GetStatus:
    """Ask it of a listener: answers its :class:`ListenerStatus` (no proxy needed)."""


class _Connect:
    """Sent to itself: try to connect again."""


class _Lost:
    """Sent by the reader thread: the connection dropped."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ChangeListener(pykka.ThreadingActor):
    """LISTENs for user changes and evicts them from the process's cache.

    Args:
        conninfo: database URL or conninfo.
        cache: the process's users cache handle, if any.
        coherence: the flag request threads consult before a cache hit.
        token_cache: the process's token cache handle, if any; keys are
            the ``t:<key>`` payloads.
        connect_kwargs: extra connection options (application_name, ...).
        reconnect_delay: seconds before connection attempt ``n`` (0-based)
            after a failure (the service passes its Backoff's delays).
    """

    use_daemon_thread = True

    def __init__(
        self,
        conninfo: str,
        cache: CacheHandle[Any] | None,
        coherence: Coherence,
        connect_kwargs: dict[str, Any] | None = None,
        *,
        reconnect_delay: Callable[[int], float],
        token_cache: CacheHandle[Any] | None = None,
    ) -> None:
        super().__init__()
        self._conninfo = conninfo
        # The caches it keeps coherent (either may be off).
        self._caches = tuple(c for c in (cache, token_cache) if c is not None)
        self._cache = cache
        self._token_cache = token_cache
        self._coherence = coherence
        self._connect_kwargs = dict(connect_kwargs or {})
        self._conn: psycopg.Connection[Any] | None = None
        self._reader: threading.Thread | None = None
        self._stopping = threading.Event()
        self._retry = RetryLater(reconnect_delay, _Connect(), event="listener_connect_retry",
                                 what="change listener cannot connect")
        self._connected_at: float | None = None
        self._last_notification_at: float | None = None
        self.notifications = 0

    # -- lifecycle (actor thread) ----------------------------------------

    def on_start(self) -> None:
        self._coherence.mark_incoherent()
        self._connect()

    def on_stop(self) -> None:
        self._shutdown()

    def on_failure(self, *_exc_info: object) -> None:
        self._shutdown()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Connect):
            if self._conn is None:
                self._connect()
            return None
        if isinstance(message, _Lost):
            raise ListenerConnectionLost(f"LISTEN connection lost: {message.error}")
        if isinstance(message, GetStatus):
            return self.status()
        return super().on_receive(message)

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up."""
        return self._conn is not None

    def status(self) -> ListenerStatus:
        """Whether it listens and what it heard (actor thread, through a proxy)."""
        return ListenerStatus(
            listening=self._conn is not None,
            notifications=self.notifications,
            last_notification_at=self._last_notification_at,
            connected_at=self._connected_at if self._conn is not None else None,
        )

    def _connect(self) -> None:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, **self._connect_kwargs)
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            self._retry.failed(self.actor_ref, exc)
            return
        self._retry.succeeded()
        self._conn = conn
        self._connected_at = time.time()
        # LISTEN is in place: anything changed from now on will be heard, so
        # emptying the cache now leaves nothing stale in it.
        for handle in self._caches:
            handle.flush()
        self._coherence.mark_coherent()
        self._reader = threading.Thread(
            target=self._read, args=(conn,), name="change-listener-reader", daemon=True
        )
        self._reader.start()
        logger.info("change listener listening", extra={"event": "listener_connected"})

    def _shutdown(self) -> None:
        self._coherence.mark_incoherent()
        self._stopping.set()
        self._retry.cancel()
        conn, self._conn = self._conn, None
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=_POLL_SECONDS * 4)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _tell(self, message: object) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(message)

    # -- reader thread ---------------------------------------------------

    def _read(self, conn: psycopg.Connection[Any]) -> None:
        """Wait for notifications and evict; report a dropped connection."""
        try:
            while not self._stopping.is_set():
                for notify in conn.notifies(timeout=_POLL_SECONDS):
                    self._apply(notify.payload)
                    if self._stopping.is_set():
                        return
        except psycopg.Error as exc:
            if not self._stopping.is_set():
                # Until a new listener flushed the cache, nothing cached is
                # trusted.
                self._coherence.mark_incoherent()
                self._tell(_Lost(exc))

    def _apply(self, payload: str) -> None:
        if payload.startswith("t:"):
            self._apply_token(payload[2:])
        elif payload == "*":
            for handle in self._caches:
                handle.flush()
        elif self._cache is not None:
            user_id, _, version = payload.partition(":")
            try:
                self._cache.evict(int(user_id), int(version) if version else None)
            except ValueError:
                logger.warning("ignoring malformed notification %r", payload,
                               extra={"event": "listener_bad_payload"})
        # Counted once the eviction is on its way (tests wait on it).
        self._last_notification_at = time.time()
        self.notifications += 1

    def _apply_token(self, key: str) -> None:
        tokens = self._token_cache
        if tokens is None:
            return
        if key == "*":
            tokens.flush()
            return
        try:
            tokens.evict(int(key))
        except ValueError:
            logger.warning("ignoring malformed notification %r", "t:" + key,
                           extra={"event": "listener_bad_payload"})
