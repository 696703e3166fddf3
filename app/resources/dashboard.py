"""The dashboard: its page, the page's script and style, its data, its kill switch.

* ``GET /dashboard`` (and ``/dashboard/dashboard.js``, ``/dashboard/dashboard.css``):
  static files shipped in the package, served without a token (they hold
  no data) under a Content-Security-Policy that allows nothing but them
  and requests to this origin.
* ``GET /api/dashboard``: every live worker's snapshot, folded (admin only).
* ``POST /api/dashboard/kill``: crash one actor of any worker (admin only,
  and only with ``USERMGMT_CHAOS=1``, like the chaos route: otherwise an
  admin gets 404, and everyone else the 401 or 403 of any route, so the
  route documented in ``/openapi.json`` behaves the same under either
  setting). The answering worker crashes its own actors itself; another
  worker's it asks through the shared directory and waits for the answer.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources

import falcon
import falcon.asgi

from app.auth import require_admin
from app.dashboard.board import TooManyCommands
from app.dashboard.service import Dashboard
from app.encoding import dumps
from app.http import JSON, read_json, require_media_type
from app.problems import Problem
from app.validation import validate_kill

__all__ = ["CONTENT_SECURITY_POLICY", "DashboardAsset", "DashboardData", "DashboardKill",
           "dashboard_assets"]

# Nothing but this origin's own script, style and JSON; no inline code, no
# framing, no form posting anywhere (the login form is sent by the script).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_STATIC = {
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


def dashboard_assets() -> dict[str, DashboardAsset]:
    """Route → resource for the page and its files, read from the package once."""
    static = resources.files("app.dashboard").joinpath("static")
    return {
        "/dashboard": DashboardAsset(static.joinpath("dashboard.html").read_bytes(),
                                     _STATIC["dashboard.html"]),
        **{f"/dashboard/{name}": DashboardAsset(static.joinpath(name).read_bytes(), media)
           for name, media in _STATIC.items() if name != "dashboard.html"},
    }


class DashboardAsset:
    """One static file of the dashboard; anonymous (it holds no data).

    Also served on the metrics listener, for operators (see :mod:`app.auth`).
    """

    anonymous_methods = frozenset({"GET"})
    for_operators = True

    def __init__(self, body: bytes, media_type: str) -> None:
        self._body = body
        self._media_type = media_type

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = self._media_type
        resp.data = self._body
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.set_header("X-Frame-Options", "DENY")


class DashboardData:
    """``GET /api/dashboard``: every live worker, for an admin."""

    for_operators = True

    def __init__(self, dashboard: Dashboard) -> None:
        self._dashboard = dashboard

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req)
        # Reads the other workers' files: off the event loop.
        view = await asyncio.to_thread(self._dashboard.view)
        resp.content_type = JSON
        resp.set_header("Cache-Control", "no-store")
        resp.data = dumps(view)


class DashboardKill:
    """``POST /api/dashboard/kill``: crash one actor of one worker (chaos only, else 404).

    Args:
        dashboard: this worker's dashboard.
        answer_within: seconds another worker has to carry out the kill
            (default :attr:`ANSWER_WITHIN`).
    """

    for_operators = True
    ANSWER_WITHIN = 2.0
    _POLL = 0.02

    def __init__(self, dashboard: Dashboard, answer_within: float | None = None) -> None:
        self._dashboard = dashboard
        self._answer_within = self.ANSWER_WITHIN if answer_within is None else answer_within

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.Response) -> None:
        require_admin(req)
        if not self._dashboard.chaos:
            raise Problem(404, "kills are off: the server runs without USERMGMT_CHAOS=1",
                          problem_type="not-found", title="Not Found")
        require_media_type(req, (JSON,))
        kill = validate_kill(await read_json(req))
        dashboard = self._dashboard
        if kill.pid == dashboard.pid:
            error = await asyncio.to_thread(dashboard.kill_here, kill.supervisor, kill.child)
        else:
            error = await self._kill_elsewhere(kill.pid, kill.supervisor, kill.child)
        if error is not None:
            raise Problem(409, error, problem_type="no-victim", title="Conflict")
        resp.content_type = JSON
        resp.data = dumps({"pid": kill.pid, "supervisor": kill.supervisor,
                           "killed": kill.child})

    async def _kill_elsewhere(self, pid: int, supervisor: str, child: str) -> str | None:
        board = self._dashboard.board
        if not await asyncio.to_thread(board.is_live_worker, pid):
            return f"no live worker process {pid}"
        try:
            nonce = await asyncio.to_thread(board.send, pid,
                                            {"supervisor": supervisor, "child": child})
        except TooManyCommands as exc:
            raise Problem(503, str(exc), problem_type="busy", title="Service Unavailable",
                          headers={"Retry-After": "1"}) from None
        deadline = time.monotonic() + self._answer_within
        while time.monotonic() < deadline:
            await asyncio.sleep(self._POLL)
            answer = await asyncio.to_thread(board.take_answer, nonce)
            if answer is not None:
                error = answer.get("error")
                return None if error is None else str(error)
        await asyncio.to_thread(board.forget, nonce, pid)
        return f"worker {pid} did not answer within {self._answer_within:g} s"
