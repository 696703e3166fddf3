"""Password hashing: Argon2id with argon2-cffi's default parameters.

Only the hash is ever stored; a password is never logged, returned or put
in a metric. Hashing and verifying cost about 0.2 s of CPU each (that is
the point), so they run in the request thread, never inside a DbWorker:
a worker must not hold its database connection while Argon2 runs.

Unknown users are verified against a dummy hash made with the same
parameters, so a failed login takes as long whether or not the email
exists (no user enumeration by timing).
"""

from __future__ import annotations

import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "Passwords"]

MIN_PASSWORD_LENGTH = 12
# Argon2 takes any length, but hashing a megabyte would be a cheap way to
# burn the server's CPU.
MAX_PASSWORD_LENGTH = 1024


class Passwords:
    """Hashes and verifies passwords; safe to share between threads.

    Args:
        hasher: the Argon2 hasher; the default is argon2-cffi's Argon2id
            with its default (RFC 9106 low-memory) parameters. Tests pass
            cheaper parameters.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None
        self._lock = threading.Lock()
        self.verifications = 0
        """Argon2 verifications run so far (tests compare login paths with it)."""

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
