"""``POST /admin/chaos/kill``: crash an actor of this worker process.

Mounted only when the server runs with ``USERMGMT_CHAOS=1``; otherwise the
route does not exist (404). A kill is a crash (``supervisors.crash``), not
a clean stop, so supervisors see an abnormal exit and restart the actor.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable
from typing import Any

import falcon
import falcon.asgi
import pykka

from app.auth import require_admin
from app.encoding import dumps
from app.http import JSON, read_json, require_media_type
from app.problems import Problem
from app.tree import CHAOS_KINDS
from app.validation import FieldError, ValidationFailed
from supervisors import crash

__all__ = ["KINDS", "ChaosResource"]

KINDS = CHAOS_KINDS

Victims = Callable[[str], list[tuple[str, pykka.ActorRef[Any]]]]


class ChaosResource:
    """Kills one running actor of the requested kind, chosen at random.

    Args:
        victims: ``kind -> [(child id, ref), ...]`` of running actors.
    """

    def __init__(self, victims: Victims) -> None:
        self._victims = victims
        self._random = random.Random()

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.Response) -> None:
        require_admin(req)
        require_media_type(req, (JSON,))
        body = await read_json(req)
        kind = body.get("kind", "db_worker") if isinstance(body, dict) else None
        if kind not in KINDS or (isinstance(body, dict) and set(body) - {"kind"}):
            raise ValidationFailed([FieldError("kind", f"must be one of {', '.join(KINDS)}")])
        # Asks the supervisors (a blocking round trip): off the event loop.
        candidates = await asyncio.to_thread(self._victims, kind)
        if not candidates:
            raise Problem(409, f"no {kind} actor is running in this worker right now",
                          problem_type="no-victim", title="Conflict")
        child_id, ref = self._random.choice(candidates)
        try:
            crash(ref, reason="chaos")
        except pykka.ActorDeadError:
            raise Problem(409, f"{child_id} stopped before it could be killed",
                          problem_type="no-victim", title="Conflict") from None
        resp.content_type = JSON
        resp.data = dumps({"killed": child_id, "kind": kind, "pid": os.getpid()})
