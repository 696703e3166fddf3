"""Errors the DbWorkers and their checkout pool report.

The HTTP edge maps each to one status in one place (``app.problems``);
the application adds its own (``app.domain``: InvalidCredentials 401,
RateLimited 429; ``app.passwords``: PasswordSlotsBusy 503)::

    UsermgmtError
     ├── NotFound               404  no such user
     ├── DuplicateEmail         409  email taken (case-insensitively)
     ├── LastAdmin              409  the change would leave no admin
     ├── PreconditionFailed     412  If-Match did not match the row version
     ├── InvalidData            422  the database refused a value (backstop to validation)
     ├── WrongPassword          403  current_password is not the user's password (any more)
     ├── CurrentPasswordRequired 403 one's own email changed without current_password
     └── Unavailable            503  try again later (Retry-After)
          ├── NoWorkerAvailable      no idle DbWorker within the checkout wait, or shed
          ├── DatabaseUnavailable    connection lost, server down or query cancelled
          └── WorkerCrashed          the DbWorker died while handling the request
"""

from __future__ import annotations

__all__ = [
    "CurrentPasswordRequired",
    "DatabaseUnavailable",
    "DuplicateEmail",
    "InvalidData",
    "LastAdmin",
    "NoWorkerAvailable",
    "NotFound",
    "PreconditionFailed",
    "Unavailable",
    "UsermgmtError",
    "WorkerCrashed",
    "WrongPassword",
]


class UsermgmtError(Exception):
    """Base of every domain error."""


class NotFound(UsermgmtError):
    """The user does not exist (or no longer exists)."""


class DuplicateEmail(UsermgmtError):
    """Another user already has this email, compared case-insensitively."""


class LastAdmin(UsermgmtError):
    """Demoting or deleting this admin would leave none (decided by the database)."""


class PreconditionFailed(UsermgmtError):
    """The request's If-Match precondition does not hold."""


class InvalidData(UsermgmtError):
    """The database rejected a value that validation let through."""


class WrongPassword(UsermgmtError):
    """The current password given is not (or no longer) the user's password."""


class CurrentPasswordRequired(UsermgmtError):
    """Changing this (one's own email or password) needs the current password."""


class Unavailable(UsermgmtError):
    """The request could not be served now; the client may retry."""


class NoWorkerAvailable(Unavailable):
    """No DbWorker became idle within the checkout wait (or load is shed)."""


class DatabaseUnavailable(Unavailable):
    """The database could not be reached or did not answer in time."""


class WorkerCrashed(Unavailable):
    """The DbWorker handling the request died before answering."""
