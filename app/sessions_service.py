"""Sessions: log in with a password, authenticate a bearer token, log out.

A session is an opaque bearer token (``secrets.token_urlsafe(32)``: 32
random bytes) of which the database keeps only the SHA-256. Whoever reads
the ``sessions`` table cannot use what they read.

Authenticating a token (every request but a few) goes through the
process's token cache first, exactly like ``GET /api/users/{id}`` goes
through the users cache: the cache key is a 63-bit integer taken from the
token's hash (:func:`token_cache_key`), the cached :class:`Principal`
carries the full hash, which must match, and the session's expiry, which
must not have passed. A hit is one dict lookup, no actor hop. A revoked
session (logout, password change, role change, user deleted — whoever
did it, wherever) is evicted from every process's token cache by the
database's NOTIFY (see :mod:`actors.change_listener`); on the host where
it was revoked, the writer also bumps the session's stamp before it
answers (:mod:`actors.stamps`), so no process of that host accepts it from
the next request on. While the listener is down, every token is checked
against the database. When the database
cannot be reached at all (no DbWorker holds a connection, or the one asked
lost it or got no answer), a token still in the cache (stored at most
``USERMGMT_CACHE_TTL`` seconds ago, and not expired) is accepted, as cached
user rows are served: no revocation can be committed while the database
is down. The price, stated plainly: a host cut off from the database by a
network partition, while another host revokes a token, accepts it until
the partition heals or the cache entry expires, whichever comes first.

Password checks (logins, and ``current_password``) are limited in the
database, so the limits hold across every worker process and host (see
:class:`~actors.messages.ReserveAttempt` for the subjects and
:class:`~actors.messages.LoginLimits` for the numbers):

* each check is *reserved* before Argon2 runs, under advisory locks on
  its subjects, and counts as a failure until the password proves right:
  N concurrent guesses evaluate at most the limit, never more;
* failures count per account and per client address, except from an
  address the account logged in from recently ("known"), where they count
  against that pair alone: a guesser elsewhere, or one trying many
  accounts from a shared address, does not lock the owner out there;
* successful logins are limited per account, and sessions per user (a
  login past the cap ends the oldest, revoked like any other).

A subject at its limit is refused before the password is looked at, so a
refused attempt costs no Argon2 time.

A login is therefore two asks around the Argon2 check (reserve; then the
new session, which also releases the reservation): the rule of one ask
per request is broken on purpose, because the check must not run inside
a DbWorker holding its connection, and logins are rare. A wrong password
needs no second ask: its reservation already is its failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from actors.cache import CacheHandle
from actors.change_listener import Coherence
from actors.errors import (
    NotFound,
    NoWorkerAvailable,
    Unavailable,
    WrongPassword,
)
from actors.messages import (
    CreateSession,
    Credentials,
    DeleteSession,
    GetSession,
    LoginLimits,
    ReleaseAttempt,
    ReserveAttempt,
    SessionCreated,
    SessionRow,
)
from actors.stamps import StampTable
from actors.stamps import shared as shared_stamps
from app.domain import InvalidCredentials, RateLimited, Role
from app.passwords import Passwords
from app.read_through import ReadThrough
from app.worker_client import WorkerClient

__all__ = [
    "LoginRateLimit",
    "NewSession",
    "Principal",
    "SessionsService",
    "hash_token",
    "token_cache_key",
]

TOKEN_BYTES = 32
_sha256 = hashlib.sha256
_compare = hmac.compare_digest
# The first 8 bytes of a hash, big-endian, without slicing a copy out.
_FIRST_8_BYTES = struct.Struct(">Q").unpack_from
# Client addresses are stored as rate-limit subjects: bound what a broken
# proxy header or a Unix-socket peer could put there.
_MAX_ADDRESS_LENGTH = 64


def hash_token(token: str) -> bytes:
    """The SHA-256 of a token: what the database stores and looks up."""
    return hashlib.sha256(token.encode()).digest()


def token_cache_key(token_hash: bytes) -> int:
    """The token cache's key: the hash's first 8 bytes as a 63-bit integer.

    The same as the database's ``session_cache_key(token_hash)``, which
    names evicted sessions in ``t:<key>`` notifications.
    """
    key: int = _FIRST_8_BYTES(token_hash)[0] >> 1
    return key


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from: a live session's user, role and expiry.

    ``expires_at`` is Unix time. What the token cache holds, too; ``stamp``
    is the session's stamp taken before it was read (see
    :mod:`actors.stamps`): a cached principal is used only while that is
    still the session's current stamp.
    """

    user_id: int
    role: str
    token_hash: bytes = field(repr=False)
    expires_at: float
    stamp: int = field(default=0, repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just created: the token is shown to its owner once."""

    token: str = field(repr=False)
    user_id: int
    expires_at: datetime


# The limits of password checks, logins and sessions (one name for both
# sides of the actor boundary).
LoginRateLimit = LoginLimits


class SessionsService:
    """Logins, token authentication and logouts; used from the event loop.

    Args:
        client: asks DbWorkers.
        passwords: verifies (and re-hashes) passwords in the calling thread.
        ttl: seconds a new session lives.
        rate_limit: the limits of password checks, logins and sessions.
        cache: the process's token cache, or None to always ask the database.
        coherence: whether the change listener keeps the cache coherent.
        on_login: metrics hook, called with ``success``, ``failure`` or
            ``rate_limited`` after each login attempt.
        clock: Unix time (tests pass a fake one).
        stamps: the host's session stamps (default: the shared ones).
    """

    def __init__(
        self,
        client: WorkerClient,
        passwords: Passwords,
        *,
        ttl: float = 86_400.0,
        rate_limit: LoginRateLimit | None = None,
        cache: CacheHandle[Principal] | None = None,
        coherence: Coherence | None = None,
        on_login: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        stamps: StampTable | None = None,
    ) -> None:
        self._client = client
        self._passwords = passwords
        self._ttl = ttl
        self._limit = rate_limit or LoginLimits()
        self._cache = cache
        self._coherence = coherence or Coherence()
        self._on_login = on_login
        self._clock = clock
        self._stamps = stamps or shared_stamps().sessions
        self._through = ReadThrough(cache, self._coherence, self._stamps)

    # -- the hot path ------------------------------------------------------

    def cached(self, token: str) -> Principal | None:
        """The principal of a cached live session, or None (look it up with :meth:`authenticate`).

        Never waits: the hot path of every request.
        """
        if self._cache is None:
            return None
        digest = _sha256(token.encode()).digest()
        return self._through.hit(_FIRST_8_BYTES(digest)[0] >> 1, self._live(digest))

    def _live(self, digest: bytes) -> Callable[[Principal], bool]:
        """Whether a cached principal is the session of ``digest`` and has not expired."""
        def live(entry: Principal) -> bool:
            return _compare(entry.token_hash, digest) and entry.expires_at > self._clock()

        return live

    async def authenticate(self, token: str) -> Principal | None:
        """The principal of a live session, or None (unknown, expired, revoked).

        ``token`` must already be a syntactically valid token (printable
        ASCII of bounded length); see :mod:`app.auth`. Read through the
        token cache (see :mod:`app.read_through`).

        Raises: Unavailable (the database cannot be asked right now, and
            the token is not in the cache).
        """
        hit = self.cached(token)
        if hit is not None:
            return hit
        digest = _sha256(token.encode()).digest()

        async def read(stamp: int) -> tuple[Principal, None] | None:
            row: SessionRow | None = await self._client.ask(GetSession(digest),
                                                            idempotent=True)
            if row is None:
                return None
            return Principal(row.user_id, row.role, digest, row.expires_at, stamp), None

        def database_down(exc: Unavailable) -> bool:
            # Workers connected but busy: the database is up, and a
            # revocation this process has not heard of may be in it.
            return not (isinstance(exc, NoWorkerAvailable)
                        and self._client.workers.stats().members)

        return await self._through.load(_FIRST_8_BYTES(digest)[0] >> 1, read,
                                        usable=self._live(digest),
                                        stale_allowed=database_down)

    # -- logins ------------------------------------------------------------

    async def login(self, email: str, password: str, address: str) -> NewSession:
        """Check a password and open a session.

        An unknown email, a user without a password and a wrong password
        fail alike and after the same Argon2 work. A hash made with older
        parameters is replaced by a current one. Past the session cap, the
        user's oldest sessions end (revoked on this host at once, elsewhere
        by NOTIFY).

        Raises:
            RateLimited: a subject of this attempt reached its limit.
            InvalidCredentials: the email or the password is wrong.
            Unavailable: the database cannot be asked, or no Argon2 slot.
        """
        address = address[:_MAX_ADDRESS_LENGTH]
        credentials = await self._reserve(ReserveAttempt(email, None, address, self._limit))
        if credentials.retry_after is not None:
            self._count("rate_limited")
            raise RateLimited("too many logins; try again later", credentials.retry_after)
        stored = credentials.password_hash
        if not await self._verify(credentials, password) or credentials.user_id is None:
            # Its reservation stays: that is the failure, counted.
            self._count("failure")
            raise InvalidCredentials("the email or the password is not correct")
        assert stored is not None
        rehash = None
        if self._passwords.needs_rehash(stored):
            with contextlib.suppress(Unavailable):  # no slot: upgrade at the next login
                rehash = (stored, await self._passwords.hash_async(password))
        token = secrets.token_urlsafe(TOKEN_BYTES)
        try:
            created: SessionCreated = await self._client.ask(
                CreateSession(credentials.user_id, hash_token(token), self._ttl, rehash,
                              credentials.attempt, credentials.account, address, self._limit),
                idempotent=False,
            )
        except NotFound:
            # Deleted between the check and now.
            self._count("failure")
            raise InvalidCredentials("the email or the password is not correct") from None
        self._ended(created.ended_keys)
        self._count("success")
        return NewSession(token, credentials.user_id, created.expires_at)

    async def check_password(self, user_id: int, password: str, address: str) -> str:
        """Verify a user's current password; answers the hash it matched.

        Reserved and limited like logins (the account's and the address's
        failures are shared with login attempts).

        Raises:
            NotFound: no such user.
            RateLimited: a subject of this check reached its limit.
            WrongPassword: the password is not the user's (or it has none).
            Unavailable: the database cannot be asked, or no Argon2 slot.
        """
        credentials = await self._reserve(ReserveAttempt(
            None, user_id, address[:_MAX_ADDRESS_LENGTH], self._limit))
        if credentials.retry_after is not None:
            raise RateLimited("too many failed password checks; try again later",
                              credentials.retry_after)
        stored = credentials.password_hash
        if not await self._verify(credentials, password):
            raise WrongPassword("the current password is not correct")
        assert stored is not None
        await self._release(credentials)
        return stored

    async def logout(self, principal: Principal) -> None:
        """Revoke the principal's session, here at once and elsewhere by NOTIFY.

        Raises: Unavailable.
        """
        key = token_cache_key(principal.token_hash)
        try:
            await self._client.ask(DeleteSession(principal.token_hash), idempotent=False)
        finally:
            # Every process of this host refuses it from now on (also when
            # the outcome is unknown: it is looked up again, that is all).
            self._stamps.bump(key)
        if self._cache is not None:
            # This process's next request must not find it, NOTIFY or not.
            self._cache.invalidate_after_write(key)

    # -- helpers -----------------------------------------------------------

    async def _reserve(self, message: ReserveAttempt) -> Credentials:
        credentials: Credentials = await self._client.ask(message, idempotent=False)
        return credentials

    async def _verify(self, credentials: Credentials, password: str) -> bool:
        """Argon2 on a slot; a check that never ran gives its reservation back."""
        try:
            return await self._passwords.verify_async(credentials.password_hash, password)
        except Unavailable:
            await self._release(credentials)
            raise

    async def _release(self, credentials: Credentials) -> None:
        """Best effort: a reservation that stays counts as one failure, no more."""
        if credentials.attempt is not None:
            with contextlib.suppress(Unavailable):
                await self._client.ask(ReleaseAttempt(credentials.attempt), idempotent=True)

    def _ended(self, keys: tuple[int, ...]) -> None:
        """Sessions ended past the cap: refused on this host from now on."""
        for key in keys:
            self._stamps.bump(key)
            if self._cache is not None:
                self._cache.invalidate_after_write(key)

    def _count(self, result: str) -> None:
        if self._on_login is not None:
            self._on_login(result)
