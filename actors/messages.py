"""The user record and the messages a DbWorker answers.

Messages are small frozen dataclasses sent with ``ActorRef.ask``; a
DbWorker dispatches on their type. ``if_match`` carries an If-Match
precondition: ``None`` means unconditional, ``ANY_VERSION`` (an empty
tuple) means "the user must exist" (``If-Match: *``), otherwise the row's
version must be one of the given versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ANY_VERSION",
    "CreateUser",
    "DeleteUser",
    "GetUser",
    "ListUsers",
    "Ping",
    "UpdateUser",
    "User",
    "UserPage",
]

ANY_VERSION: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class User:
    """One row of ``users``."""

    id: int
    name: str
    email: str
    version: int
    inserted_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The user as the API shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "version": self.version,
            "inserted_at": self.inserted_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class UserPage:
    """A page of users ordered by id; ``has_more`` when another page follows."""

    users: list[User]
    has_more: bool


@dataclass(frozen=True, slots=True)
class GetUser:
    user_id: int


@dataclass(frozen=True, slots=True)
class ListUsers:
    after_id: int
    limit: int
    email: str | None = None


@dataclass(frozen=True, slots=True)
class CreateUser:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class UpdateUser:
    """Set the given fields (``None`` = leave as is)."""

    user_id: int
    name: str | None
    email: str | None
    if_match: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class DeleteUser:
    user_id: int
    if_match: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """Round trip to the database: answers the connection's backend pid."""
