"""RFC 9457 problem details: every error the service sends.

Domain errors and validation failures are mapped to HTTP here, in one
place; Falcon's own errors (404 route, 405, 413, ...) are rendered by the
same serializer, so every error body is ``application/problem+json``.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon
import falcon.asgi
import orjson

from actors.errors import (
    CurrentPasswordRequired,
    DuplicateEmail,
    InvalidData,
    LastAdmin,
    NotFound,
    PreconditionFailed,
    Unavailable,
    UsermgmtError,
    WrongPassword,
)
from app.domain import InvalidCredentials, RateLimited
from app.validation import ValidationFailed

__all__ = ["PROBLEM_JSON", "Problem", "current_password_required", "install_error_handling"]

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# A validation problem lists at most this many field errors (a 64 KiB body
# of unknown keys would otherwise answer a few hundred KiB); ``errors_total``
# then says how many there were.
MAX_ERRORS = 20
_TYPE_BASE = "urn:usermgmt:problem:"


class Problem(falcon.HTTPError):
    """An HTTP error with a problem type and, for validation, field errors."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        problem_type: str | None = None,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, title=title, description=detail, headers=headers)
        self.problem_type = problem_type
        self.errors = errors
        self.errors_total: int | None = None
        if errors is not None and len(errors) > MAX_ERRORS:
            self.errors, self.errors_total = errors[:MAX_ERRORS], len(errors)


def problem_body(req: falcon.Request, error: falcon.HTTPError) -> dict[str, Any]:
    """The problem+json document for ``error``."""
    problem_type = getattr(error, "problem_type", None)
    body: dict[str, Any] = {
        "type": f"{_TYPE_BASE}{problem_type}" if problem_type else "about:blank",
        "title": error.title,
        "status": error.status_code,
        "detail": error.description or error.title,
    }
    request_id = getattr(req.context, "request_id", None)
    if request_id:
        body["instance"] = f"urn:usermgmt:request:{request_id}"
    errors = getattr(error, "errors", None)
    if errors is not None:
        body["errors"] = errors
        total = getattr(error, "errors_total", None)
        if total is not None:
            body["errors_total"] = total
    return body


def current_password_required(detail: str) -> Problem:
    """403: changing one's own password or email needs ``current_password``."""
    return Problem(403, detail, problem_type="current-password-required", title="Forbidden",
                   errors=[{"field": "current_password", "message": "is required for this change"}])


def _serialize(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    resp.content_type = PROBLEM_JSON
    resp.data = orjson.dumps(problem_body(req, error))


def _unavailable_headers(retry_after: int) -> dict[str, str]:
    return {"Retry-After": str(retry_after)}


def install_error_handling(app: falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response],
                           retry_after: int = 1) -> None:
    """Map domain errors to problems and render every error as problem+json."""

    async def on_validation(req: falcon.Request, resp: falcon.Response, ex: Exception,
                      params: dict[str, Any]) -> None:
        assert isinstance(ex, ValidationFailed)
        raise Problem(
            422,
            "the request is not valid; see errors",
            problem_type="validation",
            title="Unprocessable Content",
            errors=[e.to_json() for e in ex.errors],
        )

    async def on_domain(req: falcon.Request, resp: falcon.Response, ex: Exception,
                  params: dict[str, Any]) -> None:
        if isinstance(ex, NotFound):
            raise Problem(404, str(ex), problem_type="not-found", title="Not Found")
        if isinstance(ex, DuplicateEmail):
            raise Problem(409, str(ex), problem_type="duplicate-email", title="Conflict",
                          errors=[{"field": "email", "message": "is already taken"}])
        if isinstance(ex, LastAdmin):
            raise Problem(409, str(ex), problem_type="last-admin", title="Conflict")
        if isinstance(ex, PreconditionFailed):
            raise Problem(412, str(ex), problem_type="precondition-failed",
                          title="Precondition Failed")
        if isinstance(ex, InvalidData):
            raise Problem(422, str(ex), problem_type="validation",
                          title="Unprocessable Content", errors=[])
        if isinstance(ex, InvalidCredentials):
            raise Problem(401, str(ex), problem_type="invalid-credentials", title="Unauthorized",
                          headers={"WWW-Authenticate": 'Bearer realm="usermgmt"'})
        if isinstance(ex, WrongPassword):
            raise Problem(403, str(ex), problem_type="wrong-password", title="Forbidden",
                          errors=[{"field": "current_password", "message": "is not correct"}])
        if isinstance(ex, CurrentPasswordRequired):
            raise current_password_required(str(ex))
        if isinstance(ex, RateLimited):
            raise Problem(429, str(ex), problem_type="rate-limited", title="Too Many Requests",
                          headers={"Retry-After": str(ex.retry_after)})
        if isinstance(ex, Unavailable):
            raise Problem(503, str(ex), problem_type="unavailable", title="Service Unavailable",
                          headers=_unavailable_headers(retry_after))
        raise ex  # pragma: no cover - every UsermgmtError is mapped above

    async def on_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception,
                      params: dict[str, Any]) -> None:
        if isinstance(ex, falcon.HTTPError):
            # Falcon's own errors keep their status and headers.
            raise ex
        logger.exception("unhandled error", extra={"event": "unhandled_error"})
        raise Problem(500, "an unexpected error occurred", title="Internal Server Error")

    # Falcon picks the most specific handler for an exception's type.
    app.add_error_handler(Exception, on_unexpected)
    app.add_error_handler(ValidationFailed, on_validation)
    app.add_error_handler(UsermgmtError, on_domain)
    app.set_error_serializer(_serialize)
