"""Schemathesis hooks of ``test_schemathesis.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

gunicorn's gthread worker answers a request line or a header section over
its limits (414, 431), or one it cannot parse (400), itself, with a small
HTML page, before the application sees the request. The OpenAPI document
describes those answers as the problem+json that the service's own HTTP
edge gives; an HTML page with one of those statuses is gunicorn's, not a
mismatch of the API's, and is not reported.
"""

from __future__ import annotations

from typing import Any

import schemathesis

_BEFORE_THE_APPLICATION = frozenset({400, 414, 431})


@schemathesis.hook
def filter_failure(context: schemathesis.HookContext, failure: Any, case: schemathesis.Case,
                   response: schemathesis.Response) -> bool:
    """Keep every failure but an undocumented Content-Type of gunicorn's own HTML pages."""
    content_type = (response.headers.get("content-type") or [""])[0]
    return not (failure.code == "ST105" and response.status_code in _BEFORE_THE_APPLICATION
                and content_type.startswith("text/html"))
