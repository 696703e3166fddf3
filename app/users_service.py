"""The users service: the HTTP edge's way to users in the database.

A plain object used from the event loop. For each database operation it
checks out an idle DbWorker and asks it one message (see
:class:`~app.worker_client.WorkerClient` for how actor failures become
domain errors). Passwords are hashed before the message is sent, on an
Argon2 slot (see :mod:`app.passwords`): a DbWorker never burns CPU on
Argon2 while it holds its connection, and the event loop never does.

Reads of one user go through the process's cache first (no actor hop, no
await on a hit) and are cached as ready-to-send JSON; misses are coalesced
into batches (:mod:`app.coalescing`). Every write, after its commit and
before it answers, bumps the user's stamp in the host's shared stamp table
(:mod:`actors.stamps`), so no worker process of the host serves the old row
from then on; it also evicts the user locally, and the change listener
evicts it in every process of every host through the database's NOTIFY.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.cache import CacheHandle
from actors.change_listener import Coherence
from actors.errors import CurrentPasswordRequired, NotFound, Unavailable
from actors.messages import (
    CreateUser,
    DeleteUser,
    GetUsers,
    ListUsers,
    Ping,
    RowPage,
    UpdateUser,
    UserRow,
    Written,
)
from actors.stamps import StampTable
from actors.stamps import shared as shared_stamps
from actors.worker_pool import WorkerPool
from app.coalescing import ReadCoalescer
from app.domain import Role, User, UserPage
from app.encoding import dumps
from app.passwords import Passwords
from app.read_through import ReadThrough
from app.worker_client import WorkerClient

__all__ = ["UserView", "UsersService"]




@dataclass(frozen=True, slots=True)
class UserView:
    """A user as sent: the row, its ETag and its encoded JSON body.

    ``stamp`` is the user's stamp taken before the row was read: the view
    is served from the cache only while that is still the current stamp.
    """

    user: User
    etag: str
    body: bytes
    stamp: int = 0

    @classmethod
    def of(cls, user: User, stamp: int = 0) -> UserView:
        return cls(user, user.etag, dumps(user.to_json()), stamp)


class UsersService:
    """Users CRUD through the DbWorker pool, with a read-through cache.

    Args:
        workers: the checkout pool of DbWorkers.
        checkout_timeout: longest wait for an idle worker, in seconds.
        ask_timeout: longest wait for a worker's answer; set it above the
            database's statement timeout so the database cancels first.
        cache: the process's cache, or None to always read the database.
        coherence: whether the change listener currently keeps the cache
            coherent; while it does not, reads go to the database.
        passwords: hashes new passwords (default: Argon2id defaults).
        stamps: the host's user stamps (default: the shared ones).
        session_stamps: the host's session stamps, bumped for the sessions
            a write changes (default: the shared ones).
    """

    def __init__(
        self,
        workers: WorkerPool,
        checkout_timeout: float,
        ask_timeout: float,
        cache: CacheHandle[UserView] | None = None,
        coherence: Coherence | None = None,
        *,
        passwords: Passwords | None = None,
        stamps: StampTable | None = None,
        session_stamps: StampTable | None = None,
    ) -> None:
        self._client = WorkerClient(workers, checkout_timeout, ask_timeout)
        host = shared_stamps()
        self._stamps = stamps or host.users
        self._session_stamps = session_stamps or host.sessions
        self.reads = ReadCoalescer(self._get_many, lambda: workers.stats().members,
                                   max_wait=checkout_timeout)
        self._cache = cache
        self._through = ReadThrough(cache, coherence or Coherence(), self._stamps)
        self.cached = self._through.hit
        """``cached(user_id)``: the user from the cache when it may be served; never waits."""
        self._passwords = passwords or Passwords()

    async def get(self, user_id: int) -> UserView:
        """One user, from the cache when it may be served (see :mod:`app.read_through`).

        Raises: NotFound, Unavailable.
        """
        hit = self.cached(user_id)
        if hit is not None:
            return hit

        async def read(stamp: int) -> tuple[UserView, int | None]:
            user = await self._read(user_id)
            return UserView.of(user, stamp), user.version

        view = await self._through.load(user_id, read)
        assert view is not None
        return view

    async def _get_many(self, message: GetUsers) -> dict[int, UserRow]:
        rows: dict[int, UserRow] = await self._ask(message, idempotent=True)
        return rows

    async def _read(self, user_id: int) -> User:
        row = await self.reads.load(user_id)
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        return User.from_row(row)

    async def list(self, after_id: int, limit: int, email: str | None = None) -> UserPage:
        """Raises: Unavailable."""
        page: RowPage = await self._ask(ListUsers(after_id, limit, email), idempotent=True)
        return UserPage([User.from_row(row) for row in page.rows], page.has_more)

    async def create(self, name: str, email: str, role: Role = Role.MEMBER,
                     password: str | None = None) -> User:
        """Create a user; without a password it cannot log in until given one.

        Raises: DuplicateEmail, InvalidData, Unavailable.
        """
        password_hash = None if password is None else await self._passwords.hash_async(password)
        row: UserRow = await self._ask(CreateUser(name, email, role, password_hash),
                                       idempotent=False)
        return User.from_row(row)

    async def update(
        self,
        user_id: int,
        name: str | None,
        email: str | None,
        if_match: tuple[int, ...] | None = None,
        *,
        role: str | None = None,
        password: str | None = None,
        expected_password_hash: str | None = None,
        keep_session: bytes | None = None,
        own: bool = False,
    ) -> User:
        """Change the given fields (None: leave as is).

        A new ``password`` is hashed here and ends every session of the
        user but ``keep_session`` (a token hash), in the same transaction.
        ``expected_password_hash``: apply only while that is still the
        stored hash (the caller verified the current password against it).
        ``own``: the caller changes its own account, under the rule of
        :meth:`check_own_change`.

        Raises: NotFound, DuplicateEmail, PreconditionFailed, WrongPassword,
            CurrentPasswordRequired, Unavailable.
        """
        verified = expected_password_hash is not None
        if own and not verified:
            self.check_own_change(password, current_password=None)
        password_hash = None if password is None else await self._passwords.hash_async(password)
        try:
            written: Written = await self._ask(
                UpdateUser(user_id, name, email, if_match, role=role, password_hash=password_hash,
                           expected_password_hash=expected_password_hash,
                           keep_session=keep_session,
                           # Sending one's own email unchanged needs no
                           # password; a new one does, decided by the
                           # database against the row it updates.
                           same_email=own and not verified),
                idempotent=False,
            )
        except Unavailable:
            self._stamps.bump(user_id)  # its outcome is unknown: assume it changed
            raise
        self._written(user_id, written)
        assert written.user is not None
        return User.from_row(written.user)

    async def delete(self, user_id: int, if_match: tuple[int, ...] | None = None) -> int:
        """Delete a user; returns the version it had.

        Raises: NotFound, PreconditionFailed, Unavailable.
        """
        try:
            written: Written = await self._ask(DeleteUser(user_id, if_match), idempotent=False)
        except Unavailable:
            self._stamps.bump(user_id)  # its outcome is unknown: assume it changed
            raise
        self._written(user_id, written)
        return written.version

    @staticmethod
    def check_own_change(password: str | None, current_password: str | None) -> None:
        """The rule for changing one's own account, in one place.

        A stolen token must not be enough to lock the owner out: a new
        password needs ``current_password`` (checked here, before any
        work), and so does a new login email (checked by the database
        against the row it updates, see :meth:`update`'s ``own``).

        Raises: CurrentPasswordRequired.
        """
        if password is not None and current_password is None:
            raise CurrentPasswordRequired("changing your own password requires current_password")

    async def ping(self) -> bool:
        """One database round trip through a worker. Raises: Unavailable."""
        await self._ask(Ping(), idempotent=True)
        return True

    def _written(self, user_id: int, written: Written) -> None:
        # Read-your-writes on this host without waiting for the NOTIFY: no
        # process serves the old row, or the changed sessions, from now on.
        self._stamps.bump(user_id)
        for key in written.session_keys:
            self._session_stamps.bump(key)
        if self._cache is not None:
            version = written.version if written.user is not None else None
            self._cache.invalidate_after_write(user_id, version)

    async def _ask(self, message: Any, *, idempotent: bool) -> Any:
        # A method of its own so that tests can intercept every database call.
        return await self._client.ask(message, idempotent=idempotent)
