"""The OpenAPI document as API consumers and their generators read it.

Fast, structural checks of :func:`app.openapi.openapi_document`; that real
responses conform to it is checked by every HTTP test (``CheckedClient``),
and ``tests/integration/test_generated_client.py`` generates a client from
it and walks through the API with that.
"""

from __future__ import annotations

from typing import Any

from app.openapi import openapi_document

DOCUMENT = openapi_document()


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    """Every (method, path, operation) of the document."""
    return [(method.upper(), path, operation)
            for path, item in DOCUMENT["paths"].items()
            for method, operation in item.items() if method != "parameters"]


def test_patch_takes_one_media_type_so_that_generators_require_a_body_and_send_that_type() -> None:
    body = DOCUMENT["paths"]["/api/users/{user_id}"]["patch"]["requestBody"]
    assert body["required"] is True
    assert list(body["content"]) == ["application/merge-patch+json"]
