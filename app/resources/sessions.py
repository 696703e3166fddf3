"""``/api/sessions`` (log in) and ``/api/sessions/current`` (who am I, log out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import falcon
import falcon.asgi

from app.auth import client_address, principal_of
from app.config import Network
from app.http import JSON, read_json, require_media_type, send_json
from app.sessions_service import SessionsService
from app.validation import validate_login

__all__ = ["CurrentSession", "SessionsCollection"]

# A token is a credential: no cache (shared or private) may keep it.
NO_STORE = "no-store"


class SessionsCollection:
    """``POST``: exchange an email and a password for a bearer token."""

    # The only way in: it cannot require a token itself.
    anonymous_methods = frozenset({"POST"})
    # The dashboard logs in with it on the metrics listener too (see app.auth).
    for_operators = True

    def __init__(self, sessions: SessionsService,
                 trusted_proxies: Sequence[Network] = ()) -> None:
        self._sessions = sessions
        self._trusted_proxies = trusted_proxies

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.Response) -> None:
        require_media_type(req, (JSON,))
        login = validate_login(await read_json(req))
        session = await self._sessions.login(login.email, login.password,
                                            client_address(req, self._trusted_proxies))
        resp.set_header("Cache-Control", NO_STORE)
        resp.set_header("Location", "/api/sessions/current")
        send_json(resp, {"token": session.token, "expires_at": session.expires_at,
                         "user_id": session.user_id}, status=201)


class CurrentSession:
    """The session of the presented token: ``GET`` describes it, ``DELETE`` revokes it."""

    for_operators = True

    def __init__(self, sessions: SessionsService) -> None:
        self._sessions = sessions

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal = principal_of(req)
        resp.set_header("Cache-Control", NO_STORE)
        send_json(resp, {
            "user_id": principal.user_id,
            "role": principal.role,
            "expires_at": datetime.fromtimestamp(principal.expires_at, UTC),
        })

    async def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self._sessions.logout(principal_of(req))
        resp.status = falcon.HTTP_204
