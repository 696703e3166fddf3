"""Checks that a real response conforms to the service's OpenAPI document."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jsonschema
import orjson

from app.openapi import openapi_document

__all__ = ["assert_conforms", "find_operation"]


@cache
def _document() -> dict[str, Any]:
    return openapi_document()


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The (template, operation) of the documented route matching ``path``."""
    path = path.split("?", 1)[0].rstrip("/") or "/"
    for template, item in _document()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    return None


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = _document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def assert_conforms(method: str, path: str, result: Any) -> None:
    """Assert that a falcon.testing.Result (or requests.Response) is documented.

    The status must be listed for the operation (or be a documented error
    for an undocumented route/method: 404, 405), the media type must match
    and the body must validate against the schema.
    """
    status = str(result.status_code)
    found = find_operation(method, path)
    content_type = (result.headers.get("content-type") or "").split(";")[0].strip()
    body_bytes = result.content if hasattr(result, "content") else b""
    if found is None:
        # Unknown routes and methods still answer with documented problems.
        assert status in ("404", "405"), f"{method} {path}: undocumented route answered {status}"
        assert content_type == "application/problem+json"
        response: dict[str, Any] = _resolve({"$ref": f"#/components/responses/E{status}"})
    else:
        template, operation = found
        responses = operation["responses"]
        assert status in responses, (
            f"{method} {template}: status {status} is not documented "
            f"(documented: {sorted(responses)}); body={body_bytes[:300]!r}"
        )
        response = _resolve(responses[status])
    content = response.get("content")
    if not content:
        assert not body_bytes, f"{method} {path} {status}: expected no body"
        return
    assert content_type in content, (
        f"{method} {path} {status}: content-type {content_type!r} not in {list(content)}"
    )
    schema = content[content_type]["schema"]
    validator = jsonschema.Draft202012Validator(
        {**schema, "components": _document()["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    if content_type.startswith("text/"):
        return
    validator.validate(orjson.loads(body_bytes))
    for name in response.get("headers", {}):
        if name in ("ETag", "Cache-Control", "Location", "Retry-After", "Allow", "X-Request-ID"):
            assert result.headers.get(name) is not None, (
                f"{method} {path} {status}: documented header {name} missing"
            )
