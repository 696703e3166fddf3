"""The user record and the messages a DbWorker answers.

Messages are small frozen dataclasses sent with ``ActorRef.ask``; a
DbWorker dispatches on their type. ``if_match`` carries an If-Match
precondition: ``None`` means unconditional, ``ANY_VERSION`` (an empty
tuple) means "the user must exist" (``If-Match: *``), otherwise the row's
version must be one of the given versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

__all__ = [
    "ANY_VERSION",
    "CreateSession",
    "CreateUser",
    "Credentials",
    "DeleteSession",
    "DeleteUser",
    "GetSession",
    "GetUsers",
    "ListUsers",
    "LoginLimits",
    "Ping",
    "Refused",
    "ReleaseAttempt",
    "ReserveAttempt",
    "RowPage",
    "SessionCreated",
    "SessionRow",
    "UpdateUser",
    "UserRow",
    "Written",
]

ANY_VERSION: tuple[int, ...] = ()


UserRow: TypeAlias = tuple[int, str, str, str, int, datetime, datetime]
"""One row of ``users`` as read: id, name, email, role, version, inserted_at, updated_at."""


@dataclass(frozen=True, slots=True)
class RowPage:
    """A page of rows ordered by id; ``has_more`` when another page follows."""

    rows: list[UserRow]
    has_more: bool


@dataclass(frozen=True, slots=True)
class GetUsers:
    """Several users by id in one query; answers ``{id: UserRow}`` for those that exist.

    Concurrent reads of single users are coalesced into one of these (see
    :mod:`app.batching`): one round trip and one statement for the lot.
    """

    user_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """An expected refusal (not found, conflict, precondition, ...), answered as a value.

    A DbWorker answers domain errors this way rather than raising them, so
    that an everyday 404 or 409 is not logged as an actor failure; the
    asking side raises :attr:`error`.
    """

    error: Exception


@dataclass(frozen=True, slots=True)
class ListUsers:
    after_id: int
    limit: int
    email: str | None = None


@dataclass(frozen=True, slots=True)
class CreateUser:
    """Insert a user; ``password_hash`` None: the user cannot log in yet."""

    name: str
    email: str
    role: str = "member"
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class UpdateUser:
    """Set the given fields (``None`` = leave as is), in one transaction.

    Answers :class:`Written`. With ``password_hash``, every session of the
    user except ``keep_session`` (a token hash) is deleted in the same
    transaction.
    With ``expected_password_hash``, the update applies only while the
    stored hash is still that one (the caller verified the current
    password against it); otherwise :class:`~actors.errors.WrongPassword`.
    With ``same_email``, it applies only if the stored email already is
    ``email`` (a caller who may not change it without its current
    password); otherwise :class:`~actors.errors.CurrentPasswordRequired`.
    """

    user_id: int
    name: str | None
    email: str | None
    if_match: tuple[int, ...] | None = None
    role: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    expected_password_hash: str | None = field(default=None, repr=False)
    keep_session: bytes | None = field(default=None, repr=False)
    same_email: bool = False


@dataclass(frozen=True, slots=True)
class DeleteUser:
    """Delete a user and its sessions; answers :class:`Written` (``user`` None)."""

    user_id: int
    if_match: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Written:
    """What a committed write of a user changed.

    Attributes:
        user: the new row, None after a delete.
        version: the row's version after the write (before it, for a delete).
        session_keys: the token-cache keys of the sessions whose principal
            the write changed or ended (a new role or password, a deleted
            user); empty when none can have changed.
    """

    user: UserRow | None
    version: int
    session_keys: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Ping:
    """Round trip to the database: answers the connection's backend pid."""


# -- authentication -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """How password checks and logins are limited (see :class:`ReserveAttempt`).

    Attributes:
        attempts: failed password checks per ``window`` seconds, per
            subject (an account, an address, or an account at one of its
            known addresses).
        window: seconds.
        successes: successful logins per ``success_window`` seconds, per
            account.
        success_window: seconds.
        known_for: seconds an address stays known to an account after its
            last successful login from there.
        max_sessions: sessions per user; a login past it ends the oldest.
    """

    attempts: int = 5
    window: float = 60.0
    successes: int = 30
    success_window: float = 60.0
    known_for: float = 30 * 86_400.0
    max_sessions: int = 20


@dataclass(frozen=True, slots=True)
class ReserveAttempt:
    """Look up a user's credentials and reserve one password check, or refuse.

    Looked up by ``email`` (login; compared case-insensitively) or by
    ``user_id`` (checking a current password). The account subject is
    ``e:`` + lower-cased email, whether or not such a user exists. From an
    address the account has logged in from within ``known_for``, the check
    counts against that pair alone (``p:<account>|<address>``); from any
    other, against the account and the address (``a:<address>``).

    Under advisory locks on those subjects, the window's rows are counted
    (failures and reservations alike) and, below the limit, one row per
    subject is inserted for a new attempt: it counts as a failure until
    the password proves right (:class:`CreateSession` or
    :class:`ReleaseAttempt` delete it). Answers :class:`Credentials`.
    """

    email: str | None
    user_id: int | None
    address: str
    limits: LoginLimits = field(repr=False)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The answer to :class:`ReserveAttempt`.

    ``user_id``, ``role`` and ``password_hash`` are None for an unknown
    email (and ``password_hash`` for a user who has none). ``retry_after``
    is set, in whole seconds, when a subject reached its limit (failures,
    or the account's successful logins): no attempt was reserved and the
    password must not be checked at all. Otherwise ``attempt`` names the
    reservation; ``account`` is the account subject.
    """

    account: str
    user_id: int | None
    role: str | None
    password_hash: str | None = field(repr=False)
    retry_after: int | None
    attempt: int | None = None
    known: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseAttempt:
    """Delete a reserved attempt: its password was right, or never checked."""

    attempt: int


@dataclass(frozen=True, slots=True)
class CreateSession:
    """Store a session (only its token's SHA-256) for a successful login.

    In one transaction: the attempt's reservation is deleted, the login is
    counted against the account, the address becomes (or stays) known to
    the account, and past ``limits.max_sessions`` the user's oldest
    sessions end. Answers :class:`SessionCreated`.

    ``rehash`` is ``(old hash, new hash)`` when the password's hash should
    be upgraded to the current parameters; it is applied only if the
    stored hash is still the old one.
    """

    user_id: int
    token_hash: bytes = field(repr=False)
    ttl: float
    rehash: tuple[str, str] | None = field(default=None, repr=False)
    attempt: int | None = None
    account: str = ""
    address: str = ""
    limits: LoginLimits = field(default_factory=LoginLimits, repr=False)


@dataclass(frozen=True, slots=True)
class SessionCreated:
    """The new session's expiry and the token-cache keys of the sessions it ended."""

    expires_at: datetime
    ended_keys: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class GetSession:
    """The unexpired session of a token hash, or None."""

    token_hash: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A live session: its user, the user's role, its expiry (Unix time)."""

    user_id: int
    role: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class DeleteSession:
    """Revoke a session; answers whether it existed."""

    token_hash: bytes = field(repr=False)
