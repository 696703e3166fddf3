"""JSON encoding used by every response: orjson, datetimes as RFC 3339 UTC."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["dumps"]

_OPTIONS = orjson.OPT_UTC_Z


def dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON."""
    return orjson.dumps(value, option=_OPTIONS)
