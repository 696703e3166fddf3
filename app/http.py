"""Small HTTP helpers shared by the resources: bodies, media types, ETags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import falcon
import falcon.asgi
import orjson

from app.encoding import dumps
from app.problems import Problem

__all__ = [
    "JSON",
    "MAX_BODY_BYTES",
    "MERGE_PATCH_JSON",
    "AsciiIntConverter",
    "parse_if_match",
    "read_json",
    "require_media_type",
    "send_json",
]

JSON = "application/json"
MERGE_PATCH_JSON = "application/merge-patch+json"
MAX_BODY_BYTES = 64 * 1024
# How much of an oversized chunked body is read and dropped so that the
# client reliably gets its 413 (see _discard).
DRAIN_LIMIT = 1024 * 1024
# orjson nests up to 1024 levels; nothing here needs more than 2.
MAX_JSON_DEPTH = 16


class AsciiIntConverter(falcon.routing.IntConverter):
    """Falcon's ``int`` path converter, for ASCII digits only.

    ``int()`` also reads ``"1_0"``, ``"+3"`` and other scripts' digits
    (``"٣"``): each id would have many spellings in paths, caches and logs.
    """

    def convert(self, value: str) -> int | None:
        if not (value.isascii() and value.isdigit()):
            return None
        return super().convert(value)


def require_media_type(req: falcon.Request, allowed: Iterable[str]) -> None:
    """Refuse a body that is not one of ``allowed`` (UTF-8 JSON).

    Raises:
        Problem: 415 naming the accepted media types.
    """
    allowed = tuple(allowed)
    raw = req.content_type
    if raw:
        media_type, params = falcon.parse_header(raw)
        charset = params.get("charset", "utf-8").lower()
        if media_type.lower() in allowed and charset in ("utf-8", "utf8"):
            return
    accepted = ", ".join(allowed)
    raise Problem(
        415,
        f"the body must be {accepted} (UTF-8)",
        problem_type="unsupported-media-type",
        title="Unsupported Media Type",
        headers={"Accept-Patch" if MERGE_PATCH_JSON in allowed else "Accept": accepted},
    )


def _too_large() -> Problem:
    # The rest of the body is not read: the connection cannot carry another
    # request after it, so it is closed once the answer is out.
    return Problem(
        413,
        f"the body must be at most {MAX_BODY_BYTES} bytes",
        problem_type="body-too-large",
        title="Content Too Large",
        headers={"Connection": "close"},
    )


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


async def _discard(stream: Any) -> None:
    """Read and drop the rest of an oversized chunked body, up to :data:`DRAIN_LIMIT`.

    Closing a connection with unread bytes in its receive buffer makes the
    kernel reset it, and the client, still sending, may then lose the 413
    it was about to read. Past the limit the connection is cut regardless.
    """
    left = DRAIN_LIMIT
    while left > 0:
        chunk = await stream.read(min(left, 64 * 1024))
        if not chunk:
            return
        left -= len(chunk)


async def read_json(req: falcon.asgi.Request) -> Any:
    """Read and decode the JSON body, at most :data:`MAX_BODY_BYTES`.

    A declared ``Content-Length`` over the limit is refused before reading;
    a chunked body is cut off as soon as it passes the limit. How long a
    client may take to send it is bounded by the server (see
    :mod:`app.edge`), not here.

    Raises:
        Problem: 413 too large, 400 empty, not UTF-8, not JSON or too deep.
    """
    length = req.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise _too_large()
    stream = req.stream
    raw = await stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        if length is None:
            await _discard(stream)
        raise _too_large()
    if not raw.strip():
        raise Problem(400, "the request body is empty; a JSON object is required",
                      problem_type="malformed-json", title="Bad Request")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"the body is not valid UTF-8 JSON: {exc}",
                      problem_type="malformed-json", title="Bad Request") from None
    if _depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise Problem(400, f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels",
                      problem_type="malformed-json", title="Bad Request")
    return body


def send_json(resp: falcon.Response, body: Any, status: int = 200) -> None:
    """Encode ``body`` as the response (orjson; datetimes as RFC 3339 UTC)."""
    resp.status = status
    resp.content_type = JSON
    resp.data = dumps(body)


def parse_if_match(header: str | None, tag_version: Any) -> tuple[int, ...] | None:
    """Turn an If-Match header into the versions it accepts.

    ``tag_version`` maps one entity-tag (with quotes) to a version or None.
    Returns None without the header, ``()`` for ``*``, otherwise the
    versions named by the strong tags that belong to this resource; weak
    and foreign tags never match (strong comparison, RFC 9110 13.1.1), so
    a header with none of ours yields a version no row has.
    """
    if header is None:
        return None
    header = header.strip()
    if header == "*":
        return ()
    versions = []
    for tag in header.split(","):
        version = tag_version(tag.strip())
        if version is not None:
            versions.append(version)
    return tuple(versions) if versions else (0,)
