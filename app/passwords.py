"""Password hashing: Argon2id with argon2-cffi's default parameters.

Only the hash is ever stored; a password is never logged, returned or put
in a metric. Hashing and verifying cost about 0.2 s of CPU each (that is
the point), so they never run inside a DbWorker (a worker must not hold
its database connection while Argon2 runs) nor on the event loop (every
other connection of the process would wait): requests await
:meth:`Passwords.hash_async` and :meth:`Passwords.verify_async`, which
run Argon2 on a few threads of its own (argon2-cffi releases the GIL).

Those threads are the process's *slots* for Argon2, about one per core:
a flood of logins cannot take more CPU than that, so other routes keep
their latency. A request that cannot get a slot within a short wait is
refused with :class:`PasswordSlotsBusy` (503 with ``Retry-After``)
instead of queueing without bound.

Unknown users are verified against a dummy hash made with the same
parameters, so a failed login takes as long whether or not the email
exists (no user enumeration by timing).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from actors.errors import Unavailable

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "CpuSlots",
    "PasswordSlotsBusy",
    "Passwords",
]

T = TypeVar("T")

MIN_PASSWORD_LENGTH = 12
# Argon2 takes any length, but hashing a megabyte would be a cheap way to
# burn the server's CPU.
MAX_PASSWORD_LENGTH = 1024


class PasswordSlotsBusy(Unavailable):
    """Every Argon2 slot of this process stayed busy for the whole wait."""


class CpuSlots:
    """Runs CPU-heavy calls on a few threads of their own, with a bounded wait.

    A call waits for a free thread at most ``max_wait`` seconds (checked
    when a thread picks it up: a call that waited longer is dropped
    without running) and at most ``max_queued`` calls wait at once; past
    either, :class:`PasswordSlotsBusy`. So a caller waits at most
    ``max_wait`` plus one call's duration.

    Args:
        slots: threads, i.e. calls running at once (default: CPU count).
        max_wait: seconds a call may wait for a thread.
        max_queued: calls that may wait at once (default: 4 per slot).
    """

    DEFAULT_MAX_WAIT = 0.5

    def __init__(self, slots: int | None = None, max_wait: float = DEFAULT_MAX_WAIT,
                 max_queued: int | None = None) -> None:
        self.slots = slots or os.cpu_count() or 1
        self._max_wait = max_wait
        self._max_queued = max_queued if max_queued is not None else 4 * self.slots
        self._executor = ThreadPoolExecutor(max_workers=self.slots,
                                            thread_name_prefix="usermgmt-argon2")
        self._lock = threading.Lock()
        self._queued = 0
        self.refused = 0
        """Calls refused so far (no slot within the wait, or too many waiting)."""

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on a slot thread, awaited.

        Raises:
            PasswordSlotsBusy: no slot within the wait, or too many waiting.
        """
        with self._lock:
            if self._queued >= self._max_queued:
                self.refused += 1
                raise PasswordSlotsBusy("too many password checks at once; try again")
            self._queued += 1
        deadline = time.monotonic() + self._max_wait
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._start, deadline, fn, args)

    def _start(self, deadline: float, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        # In a slot thread.
        with self._lock:
            self._queued -= 1
            late = time.monotonic() > deadline
            if late:
                self.refused += 1
        if late:
            raise PasswordSlotsBusy("too many password checks at once; try again")
        return fn(*args)

    def close(self) -> None:
        """Stop the threads once the calls already queued are done."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Passwords:
    """Hashes and verifies passwords; safe to share between threads.

    Args:
        hasher: the Argon2 hasher; the default is argon2-cffi's Argon2id
            with its default (RFC 9106 low-memory) parameters. Tests pass
            cheaper parameters.
        slots: where the ``*_async`` methods run Argon2 (default: one
            slot per CPU, half a second's wait).
    """

    def __init__(self, hasher: PasswordHasher | None = None,
                 slots: CpuSlots | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = slots
        self._dummy: str | None = None
        self._lock = threading.Lock()
        self.verifications = 0
        """Argon2 verifications run so far (tests compare login paths with it)."""

    @property
    def slots(self) -> CpuSlots:
        """The process's Argon2 slots (made on first use)."""
        if self._slots is None:
            with self._lock:
                if self._slots is None:
                    self._slots = CpuSlots()
        return self._slots

    async def hash_async(self, password: str) -> str:
        """:meth:`hash` on an Argon2 slot. Raises: PasswordSlotsBusy."""
        return await self.slots.run(self.hash, password)

    async def verify_async(self, stored: str | None, password: str) -> bool:
        """:meth:`verify` on an Argon2 slot. Raises: PasswordSlotsBusy."""
        return await self.slots.run(self.verify, stored, password)

    def hash(self, password: str) -> str:
        """A fresh Argon2id hash (PHC string, random salt) of ``password``.

        Thread: any; costs one Argon2 computation.
        """
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``.

        ``stored`` None (no such user, or a user without a password) is
        checked against a dummy hash and answers False, after the same
        amount of work as a real check. A malformed stored hash is a
        mismatch, never an exception.

        Thread: any; costs one Argon2 computation.
        """
        target = stored if stored is not None else self._dummy_hash()
        self.verifications += 1
        try:
            matched = self._hasher.verify(target, password)
        except (VerificationError, InvalidHashError):
            return False
        return matched and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True

    def _dummy_hash(self) -> str:
        # Made on first use, not at start: every worker process (and every
        # test's runtime) would otherwise pay an Argon2 hash up front.
        dummy = self._dummy
        if dummy is None:
            with self._lock:
                if self._dummy is None:
                    self._dummy = self._hasher.hash(secrets.token_urlsafe(24))
                dummy = self._dummy
        return dummy
