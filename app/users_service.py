"""The users service: the only way from the HTTP edge to the database.

A plain object used from request threads. For each operation it checks
out an idle DbWorker, asks it one message, and turns actor failures into
domain errors: a worker that died before handling the message (so it
did nothing) is replaced by another, once; a read whose worker lost its
connection is retried once on another worker (reads are idempotent).
"""

from __future__ import annotations

from typing import Any

import pykka

from actors.errors import DatabaseUnavailable, WorkerCrashed
from actors.messages import (
    CreateUser,
    DeleteUser,
    GetUser,
    ListUsers,
    Ping,
    UpdateUser,
    User,
    UserPage,
)
from actors.worker_pool import WorkerPool

__all__ = ["UsersService"]


class UsersService:
    """Users CRUD through the DbWorker pool.

    Args:
        workers: the checkout pool of DbWorkers.
        checkout_timeout: longest wait for an idle worker, in seconds.
        ask_timeout: longest wait for a worker's answer; set it above the
            database's statement timeout so the database cancels first.
    """

    def __init__(self, workers: WorkerPool, checkout_timeout: float, ask_timeout: float) -> None:
        self._workers = workers
        self._checkout_timeout = checkout_timeout
        self._ask_timeout = ask_timeout

    def get(self, user_id: int) -> User:
        """Raises: NotFound, Unavailable."""
        user: User = self._ask(GetUser(user_id), idempotent=True)
        return user

    def list(self, after_id: int, limit: int, email: str | None = None) -> UserPage:
        """Raises: Unavailable."""
        page: UserPage = self._ask(ListUsers(after_id, limit, email), idempotent=True)
        return page

    def create(self, name: str, email: str) -> User:
        """Raises: DuplicateEmail, InvalidData, Unavailable."""
        user: User = self._ask(CreateUser(name, email), idempotent=False)
        return user

    def update(
        self,
        user_id: int,
        name: str | None,
        email: str | None,
        if_match: tuple[int, ...] | None = None,
    ) -> User:
        """Raises: NotFound, DuplicateEmail, PreconditionFailed, Unavailable."""
        user: User = self._ask(UpdateUser(user_id, name, email, if_match), idempotent=False)
        return user

    def delete(self, user_id: int, if_match: tuple[int, ...] | None = None) -> int:
        """Delete a user; returns the version it had.

        Raises: NotFound, PreconditionFailed, Unavailable.
        """
        version: int = self._ask(DeleteUser(user_id, if_match), idempotent=False)
        return version

    def ping(self) -> bool:
        """One database round trip through a worker. Raises: Unavailable."""
        result: bool = self._ask(Ping(), idempotent=True)
        return result

    def _ask(self, message: Any, *, idempotent: bool) -> Any:
        for attempt in (1, 2):
            worker = self._workers.checkout(self._checkout_timeout)
            try:
                return worker.ask(message, timeout=self._ask_timeout)
            except pykka.ActorDeadError:
                # The worker ended before handling the message: nothing was
                # done, so any operation may go to another worker.
                if attempt == 2:
                    raise WorkerCrashed("the database worker stopped; try again") from None
            except pykka.Timeout:
                raise DatabaseUnavailable("the database did not answer in time") from None
            except WorkerCrashed:
                # Its connection broke mid-request: the outcome of a write is
                # unknown, but a read can safely go to another worker.
                if not idempotent or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
