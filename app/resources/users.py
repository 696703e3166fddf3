"""``/api/users`` and ``/api/users/{id}``."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import falcon

from actors.messages import UserPage
from app.http import (
    JSON,
    MERGE_PATCH_JSON,
    parse_if_match,
    read_json,
    require_media_type,
    send_json,
)
from app.users_service import UsersService, user_etag
from app.validation import MAX_ID, encode_cursor, validate_list_query, validate_user

__all__ = ["UserItem", "UsersCollection"]

# Every representation may be stored only by the client, and must be
# revalidated before each use (cheap: a 304 carries no body).
CACHE_CONTROL = "private, no-cache"


def _tag_version(user_id: int):  # type: ignore[no-untyped-def]
    prefix = f'"{user_id}-'

    def version(tag: str) -> int | None:
        if tag.startswith(prefix) and tag.endswith('"'):
            digits = tag[len(prefix):-1]
            if digits.isdigit() and len(digits) < 10:
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
        raise falcon.HTTPNotFound(description=f"user {user_id} does not exist")
    return user_id


class UsersCollection:
    """List (keyset pagination) and create users."""

    def __init__(self, users: UsersService) -> None:
        self._users = users

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = validate_list_query(req.params)
        page: UserPage = self._users.list(query.after_id, query.limit, query.email)
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

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_media_type(req, (JSON,))
        fields = validate_user(read_json(req), partial=False)
        assert fields.name is not None and fields.email is not None
        user = self._users.create(fields.name, fields.email)
        resp.set_header("Location", f"/api/users/{user.id}")
        resp.set_header("ETag", user_etag(user))
        send_json(resp, user.to_json(), status=201)


def _page_etag(page: UserPage, next_cursor: str | None) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for user in page.users:
        digest.update(f"{user.id}:{user.version};".encode())
    digest.update((next_cursor or "").encode())
    return f'"p-{digest.hexdigest()}"'


class UserItem:
    """Read, replace, patch and delete one user."""

    def __init__(self, users: UsersService) -> None:
        self._users = users

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        view = self._users.get(_check_id(user_id))
        if _none_match(req, view.etag):
            _not_modified(resp, view.etag)
            return
        resp.set_header("ETag", view.etag)
        resp.set_header("Cache-Control", CACHE_CONTROL)
        resp.content_type = JSON
        resp.data = view.body

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        require_media_type(req, (JSON,))
        fields = validate_user(read_json(req), partial=False)
        self._update(req, resp, _check_id(user_id), fields.name, fields.email)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        require_media_type(req, (MERGE_PATCH_JSON, JSON))
        fields = validate_user(read_json(req), partial=True)
        self._update(req, resp, _check_id(user_id), fields.name, fields.email)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        user_id = _check_id(user_id)
        if_match = parse_if_match(req.get_header("If-Match"), _tag_version(user_id))
        self._users.delete(user_id, if_match)
        resp.status = falcon.HTTP_204

    def _update(self, req: falcon.Request, resp: falcon.Response, user_id: int,
                name: str | None, email: str | None) -> None:
        if_match = parse_if_match(req.get_header("If-Match"), _tag_version(user_id))
        user = self._users.update(user_id, name, email, if_match)
        resp.set_header("ETag", user_etag(user))
        send_json(resp, user.to_json())
