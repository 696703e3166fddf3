"""Who may do what: bearer-token authentication and the role rules.

Every request needs ``Authorization: Bearer <token>`` except the methods a
resource lists in its ``anonymous_methods`` (``POST /api/sessions``,
``/livez``, ``/readyz``, ``/openapi.json``, ``/metrics``, and the
dashboard's static page and files, which hold no data). A method a
resource does not implement is not guarded: Falcon answers it with 405
(or, for OPTIONS, with the ``Allow`` list), which reveals nothing the
OpenAPI document does not.

=========  =========================================================
role       may
=========  =========================================================
admin      everything; sets ``role`` and ``password`` of anyone, except
           that it cannot demote or delete itself (so one admin always
           remains who can undo a mistake)
member     read and update its own record only (``name``, ``email``,
           ``password``); other users' ids answer 404, so ids cannot be
           probed; ``role`` is refused (422)
=========  =========================================================

Anyone changing their *own* password or email must also send
``current_password`` (403 without it, 403 when wrong, 429 after too many
wrong ones): a stolen token alone cannot lock the owner out, neither by a
new password nor by a new login email.

Failures follow RFC 6750: no or another scheme's credentials → 401 with
``WWW-Authenticate: Bearer realm="usermgmt"``; an unknown, expired,
revoked or malformed token → 401 with ``error="invalid_token"``; an
``Authorization`` header with bytes outside printable ASCII (NUL, control
characters, invalid UTF-8) → 400 with ``error="invalid_request"``. A valid
token without the right → 403 (or 404, above).

With a metrics address configured (``USERMGMT_METRICS_BIND``),
:class:`ListenerSplit` keeps the two listeners apart: ``/metrics`` answers
only on the metrics port, and on it only ``/metrics`` and what operators
need besides (resources marked ``for_operators``: the dashboard, and the
sessions routes it logs in with) do.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import falcon

from app.config import Network
from app.domain import Role
from app.problems import Problem
from app.sessions_service import Principal, SessionsService

__all__ = [
    "AuthMiddleware",
    "ListenerSplit",
    "client_address",
    "forbidden",
    "principal_of",
    "require_admin",
]

REALM = "usermgmt"
# secrets.token_urlsafe(32) is 43 characters; anything much longer is not
# one of ours and is refused before it is hashed.
MAX_TOKEN_LENGTH = 256

_SCHEME = "Bearer "
_SCHEME_LENGTH = len(_SCHEME)
_MAX_HEADER_LENGTH = _SCHEME_LENGTH + MAX_TOKEN_LENGTH
# Methods worth remembering a decision for; any other string a client
# sends as a method is decided afresh, so it cannot grow the memo.
_KNOWN_METHODS = frozenset(falcon.constants.COMBINED_METHODS)
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_NOBODY: frozenset[str] = frozenset()

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _unauthorized(detail: str, error: str | None) -> Problem:
    challenge = f'Bearer realm="{REALM}"'
    if error is not None:
        challenge += f', error="{error}", error_description="{detail}"'
    return Problem(401, detail, problem_type="unauthenticated", title="Unauthorized",
                   headers={"WWW-Authenticate": challenge})


def _malformed_header() -> Problem:
    detail = "the Authorization header must be printable ASCII"
    return Problem(
        400, detail, problem_type="malformed-header", title="Bad Request",
        errors=[{"field": "Authorization", "message": "must be printable ASCII"}],
        headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_request", '
                                     f'error_description="{detail}"'},
    )


def forbidden(detail: str) -> Problem:
    """403: authenticated, but not allowed to do this."""
    return Problem(403, detail, problem_type="forbidden", title="Forbidden")


def client_address(req: falcon.Request, trusted_proxies: Sequence[Network] = ()) -> str:
    """The client address failed password checks are counted against.

    The socket's peer, unless the peer is one of ``trusted_proxies``
    (``USERMGMT_TRUSTED_PROXIES``): then the rightmost address of
    ``X-Forwarded-For`` that is not a trusted proxy. Each proxy appends
    the address it was connected from, so entries left of that one are
    whatever the client chose to send, and are never believed. Anyone
    else's ``X-Forwarded-For`` is ignored.

    An entry that is not an address (a typo in a proxy, ``unknown``)
    stops the walk: the nearest trusted hop is counted instead, so a
    client cannot hide behind garbage. IPv4-mapped IPv6 addresses count
    as the IPv4 address they carry.
    """
    peer = str(req.remote_addr or "unknown")
    if not trusted_proxies:
        return peer
    nearest = _address(peer)
    if nearest is None or not _trusted(nearest, trusted_proxies):
        return peer
    forwarded = req.get_header("X-Forwarded-For")
    if not forwarded:
        return str(nearest)
    for item in reversed(forwarded.split(",")):
        address = _address(item)
        if address is None:
            break
        if not _trusted(address, trusted_proxies):
            return str(address)
        nearest = address
    return str(nearest)


def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]" or "[2001:db8::1]:443"
        text, closed, port = text[1:].partition("]")
        if not closed or (port and not (port[0] == ":" and port[1:].isdigit())):
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def principal_of(req: falcon.Request) -> Principal:
    """The request's principal, set by :class:`AuthMiddleware`."""
    principal: Principal = req.context.principal
    return principal


def require_admin(req: falcon.Request) -> Principal:
    """The request's principal if it is an admin.

    Raises:
        Problem: 403 for a member.
    """
    principal: Principal = req.context.principal
    if principal.role != Role.ADMIN:
        raise forbidden("only an admin may do this")
    return principal


class ListenerSplit:
    """Serves ``/metrics`` on the metrics listener only, and there nothing else
    but the resources marked ``for_operators`` (also served on the API's).

    Only installed when a metrics address is configured, so the API's
    requests do not pay for it otherwise.

    Args:
        metrics_port: the port of the metrics listener, compared with the
            port of the socket the request came in on (the ASGI scope's
            ``server``, not the client's ``Host`` header).
    """

    def __init__(self, metrics_port: int) -> None:
        self._metrics_port = metrics_port

    async def process_resource(self, req: falcon.Request, resp: falcon.Response,
                               resource: object, params: dict[str, Any]) -> None:
        """Raises: Problem: 404 for a route on the wrong listener.

        Decided by the resource the router picked, not by the path as sent:
        ``//metrics`` or ``/%2Fmetrics`` reach the same resource as
        ``/metrics`` and are refused on the API's listener alike.
        """
        scope = req.scope  # type: ignore[attr-defined]
        server = scope.get("server")
        if server is not None and not isinstance(server, tuple):
            # The ASGI spec allows any iterable: read it once, keep it readable.
            server = scope["server"] = tuple(server)
        on_metrics_listener = server is not None and server[1] == self._metrics_port
        serves_metrics = getattr(resource, "serves_metrics", False) is True
        if on_metrics_listener:
            allowed = serves_metrics or getattr(resource, "for_operators", False) is True
        else:
            allowed = not serves_metrics
        if not allowed:
            raise Problem(404, "no such route on this address", problem_type="not-found",
                          title="Not Found")


class AuthMiddleware:
    """Authenticates every guarded request; sets ``req.context.principal``.

    Args:
        sessions: turns tokens into principals (cached).
    """

    def __init__(self, sessions: SessionsService) -> None:
        self._cached = sessions.cached
        self._authenticate = sessions.authenticate
        # (resource class, method) -> whether a principal is needed; at
        # most routes x known methods entries, filled on first sight.
        self._guarded: dict[tuple[type[Any], str], bool] = {}

    async def process_resource(self, req: falcon.Request, resp: falcon.Response,
                               resource: object, params: dict[str, Any]) -> None:
        """Set ``req.context.principal`` or refuse the request.

        Raises:
            Problem: 401 (no, unknown, expired or revoked token), 400
                (unprintable Authorization header).
            Unavailable: the token could not be checked right now (503).
        """
        if resource is None:  # no route: Falcon answers 404
            return
        method = req.method
        key = (type(resource), method)
        guarded = self._guarded.get(key)
        if guarded is None:
            guarded = (method not in getattr(resource, "anonymous_methods", _NOBODY)
                       and hasattr(resource, "on_" + method.lower()))
            if method in _KNOWN_METHODS:
                self._guarded[key] = guarded
        if not guarded:
            return
        header = req.get_header("Authorization")
        if header is None:
            raise _unauthorized("a bearer token is required", None)
        # The usual shape costs two checks. Its content is not validated
        # first: only a token this service issued (URL-safe base64) has a
        # session, so garbage simply fails the lookup, and only then is it
        # told apart (400 for unprintable bytes, 401 otherwise).
        if header.startswith(_SCHEME) and len(header) <= _MAX_HEADER_LENGTH:
            token = header[_SCHEME_LENGTH:]
        else:
            token = _token_or_refusal(header)
        principal = self._cached(token) or await self._authenticate(token)
        if principal is None:
            if not _PRINTABLE_ASCII.fullmatch(header):
                raise _malformed_header()
            raise _unauthorized("the token is unknown, expired or revoked", "invalid_token")
        req.context.principal = principal


def _token_or_refusal(header: str) -> str:
    """The token of a header off the usual shape, or why it is refused.

    The scheme is case-insensitive (RFC 9110 11.1) and may be followed by
    more than one space.

    Raises:
        Problem: 400 for bytes outside printable ASCII, 401 otherwise.
    """
    if not _PRINTABLE_ASCII.fullmatch(header):
        # Header bytes are handed over as latin-1: NUL, control characters,
        # UTF-8 (valid or not) all end up here.
        raise _malformed_header()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required", None)
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise _unauthorized("the token is malformed", "invalid_token")
    return token
