"""``/api/users`` and ``/api/users/{id}``.

Who may do what is decided here, before a body is read: an admin
everything (but not demote or delete itself); a member only reads and
updates its own record, and any other id answers exactly like a missing
user (404). See :mod:`app.auth` for the roles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import urlencode

import falcon
import falcon.asgi

from actors.errors import NotFound
from app.auth import client_address, forbidden, principal_of, require_admin
from app.config import Network
from app.domain import Role, UserPage
from app.http import (
    JSON,
    MERGE_PATCH_JSON,
    parse_if_match,
    read_json,
    require_media_type,
    send_json,
)
from app.sessions_service import Principal, SessionsService
from app.users_service import UsersService
from app.validation import (
    ADMIN_CREATE_FIELDS,
    ADMIN_UPDATE_FIELDS,
    MAX_ID,
    MEMBER_UPDATE_FIELDS,
    UserFields,
    encode_cursor,
    validate_list_query,
    validate_user,
)

__all__ = ["UserItem", "UsersCollection"]

# Every representation may be stored only by the client, and must be
# revalidated before each use (cheap: a 304 carries no body).
CACHE_CONTROL = "private, no-cache"


def _tag_version(user_id: int):  # type: ignore[no-untyped-def]
    prefix = f'"{user_id}-'

    def version(tag: str) -> int | None:
        if tag.startswith(prefix) and tag.endswith('"'):
            digits = tag[len(prefix):-1]
            # isdigit() alone also takes "²" or "٣", which int() refuses or reads.
            if digits.isascii() and digits.isdigit() and len(digits) < 10:
                return int(digits)
        return None

    return version


def _none_match(req: falcon.Request, etag: str) -> bool:
    """Whether If-None-Match matches (weak comparison, RFC 9110 13.1.2)."""
    header = req.get_header("If-None-Match")
    if header is None:
        return False
    header = header.strip()
    if header == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _not_modified(resp: falcon.Response, etag: str) -> None:
    resp.status = falcon.HTTP_304
    resp.set_header("ETag", etag)
    resp.set_header("Cache-Control", CACHE_CONTROL)


def _check_id(user_id: int) -> int:
    if user_id > MAX_ID:
        raise NotFound(f"user {user_id} does not exist")
    return user_id


def _visible(req: falcon.Request, user_id: int) -> Principal:
    """The principal, if it may see ``user_id``; else the missing user's 404."""
    principal = principal_of(req)
    if principal.role != Role.ADMIN and principal.user_id != user_id:
        # Word for word what a missing user answers: ids cannot be probed.
        raise NotFound(f"user {user_id} does not exist")
    return principal


class UsersCollection:
    """List (keyset pagination) and create users."""

    def __init__(self, users: UsersService) -> None:
        self._users = users

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req)
        query = validate_list_query(req.params)
        page: UserPage = await self._users.list(query.after_id, query.limit, query.email)
        next_cursor = encode_cursor(page.users[-1].id) if page.has_more else None
        etag = _page_etag(page, next_cursor)
        if _none_match(req, etag):
            _not_modified(resp, etag)
            return
        if next_cursor is not None:
            params = {"limit": str(query.limit), "after": next_cursor}
            if query.email is not None:
                params["email"] = query.email
            resp.set_header("Link", f'</api/users?{urlencode(params)}>; rel="next"')
        resp.set_header("ETag", etag)
        resp.set_header("Cache-Control", CACHE_CONTROL)
        send_json(resp, {"data": [u.to_json() for u in page.users], "next": next_cursor})

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.Response) -> None:
        require_admin(req)
        require_media_type(req, (JSON,))
        fields = validate_user(await read_json(req), partial=False,
                               allowed=ADMIN_CREATE_FIELDS)
        assert fields.name is not None and fields.email is not None
        user = await self._users.create(fields.name, fields.email, fields.role or Role.MEMBER,
                                  fields.password)
        resp.set_header("Location", f"/api/users/{user.id}")
        resp.set_header("ETag", user.etag)
        send_json(resp, user.to_json(), status=201)


def _page_etag(page: UserPage, next_cursor: str | None) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for user in page.users:
        digest.update(f"{user.id}:{user.version};".encode())
    digest.update((next_cursor or "").encode())
    return f'"p-{digest.hexdigest()}"'


class UserItem:
    """Read, replace, patch and delete one user.

    PUT replaces ``name`` and ``email`` (both required); ``role`` and
    ``password`` are optional in PUT and PATCH alike (absent: unchanged).
    """

    def __init__(self, users: UsersService, sessions: SessionsService,
                 trusted_proxies: Sequence[Network] = ()) -> None:
        self._users = users
        self._sessions = sessions
        self._trusted_proxies = trusted_proxies

    async def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        user_id = _check_id(user_id)
        _visible(req, user_id)
        # A cache hit costs no await.
        view = self._users.cached(user_id) or await self._users.get(user_id)
        if _none_match(req, view.etag):
            _not_modified(resp, view.etag)
            return
        resp.set_header("ETag", view.etag)
        resp.set_header("Cache-Control", CACHE_CONTROL)
        resp.content_type = JSON
        resp.data = view.body

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.Response, user_id: int) -> None:
        await self._update(req, resp, _check_id(user_id), (JSON,), partial=False)

    async def on_patch(self, req: falcon.asgi.Request, resp: falcon.Response,
                       user_id: int) -> None:
        await self._update(req, resp, _check_id(user_id), (MERGE_PATCH_JSON, JSON), partial=True)

    async def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        user_id = _check_id(user_id)
        principal = _visible(req, user_id)
        if principal.role != Role.ADMIN:
            raise forbidden("a member cannot delete users, not even itself")
        if principal.user_id == user_id:
            raise forbidden("an admin cannot delete itself; ask another admin")
        if_match = parse_if_match(req.get_header("If-Match"), _tag_version(user_id))
        await self._users.delete(user_id, if_match)
        resp.status = falcon.HTTP_204

    async def _update(self, req: falcon.asgi.Request, resp: falcon.Response, user_id: int,
                      media_types: tuple[str, ...], *, partial: bool) -> None:
        principal = _visible(req, user_id)
        require_media_type(req, media_types)
        fields = self._validate(await read_json(req), principal, user_id, partial=partial)
        own = principal.user_id == user_id
        if own:
            self._users.check_own_change(fields.password, fields.current_password)
        # Checked before the If-Match precondition is even looked at: a
        # wrong current password must count as a failed attempt either way.
        expected_hash = None
        if fields.current_password is not None:
            expected_hash = await self._sessions.check_password(
                user_id, fields.current_password, client_address(req, self._trusted_proxies))
        if_match = parse_if_match(req.get_header("If-Match"), _tag_version(user_id))
        user = await self._users.update(
            user_id, fields.name, fields.email, if_match, role=fields.role,
            password=fields.password, expected_password_hash=expected_hash,
            # The caller's own session survives its own password change.
            keep_session=principal.token_hash,
            own=own,
        )
        resp.set_header("ETag", user.etag)
        send_json(resp, user.to_json())

    @staticmethod
    def _validate(body: object, principal: Principal, user_id: int, *,
                  partial: bool) -> UserFields:
        if principal.role != Role.ADMIN:
            return validate_user(body, partial=partial, allowed=MEMBER_UPDATE_FIELDS)
        fields = validate_user(body, partial=partial, allowed=ADMIN_UPDATE_FIELDS)
        if principal.user_id == user_id and fields.role not in (None, Role.ADMIN):
            # Someone must remain who can undo a mistake.
            raise forbidden("an admin cannot demote itself; ask another admin")
        return fields
