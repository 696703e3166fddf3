"""The domain's vocabulary: roles, the user entity, the errors only the app raises.

The DbWorkers (``actors/``) read and write rows; what a user *is* — its
roles, its JSON form, its entity tag — is the application's. Errors the
DbWorkers report live with them (:mod:`actors.errors`); these are decided
here, above them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from actors.errors import UsermgmtError
from actors.messages import UserRow

__all__ = ["InvalidCredentials", "RateLimited", "Role", "User", "UserPage"]


class Role(StrEnum):
    """What a user may do (see :mod:`app.auth` for the rules)."""

    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class User:
    """A user, as the API shows it (never with a password or its hash)."""

    id: int
    name: str
    email: str
    role: str
    version: int
    inserted_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        return cls(*row)

    @property
    def etag(self) -> str:
        """Strong entity-tag: changes exactly when the version does."""
        return f'"{self.id}-{self.version}"'

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "version": self.version,
            "inserted_at": self.inserted_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class UserPage:
    """A page of users ordered by id; ``has_more`` when another page follows."""

    users: list[User]
    has_more: bool


class InvalidCredentials(UsermgmtError):
    """A login failed: unknown email, wrong password or no password (alike)."""


class RateLimited(UsermgmtError):
    """Too many password checks for a subject; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
