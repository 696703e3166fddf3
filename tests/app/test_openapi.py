"""The OpenAPI document as API consumers and their generators read it.

Fast, structural checks of :func:`app.openapi.openapi_document`; that real
responses conform to it is checked by every HTTP test (``CheckedClient``),
and ``tests/integration/test_generated_client.py`` generates a client from
it and walks through the API with that.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import jsonschema

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


def test_the_api_is_served_where_the_document_is_and_licensed() -> None:
    assert DOCUMENT["servers"] == [{"url": "/", "description": DOCUMENT["servers"][0]["description"]}]
    assert DOCUMENT["info"]["license"] == {"name": "MIT", "identifier": "MIT"}


def test_every_operation_has_an_id_a_summary_a_description_and_one_declared_tag() -> None:
    declared = [tag["name"] for tag in DOCUMENT["tags"]]
    assert all(tag.get("description") for tag in DOCUMENT["tags"])
    used = set()
    ids = set()
    for method, path, operation in operations():
        where = f"{method} {path}"
        assert operation.get("operationId") and operation["operationId"] not in ids, where
        ids.add(operation["operationId"])
        assert operation.get("summary") and operation.get("description"), where
        assert len(operation.get("tags", [])) == 1 and operation["tags"][0] in declared, where
        used.add(operation["tags"][0])
    assert used == set(declared)


def walk(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every object in the document with its JSON pointer."""
    found = []
    if isinstance(node, dict):
        found.append((where, node))
        for key, value in node.items():
            found.extend(walk(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(walk(value, f"{where}/{index}"))
    return found


def test_every_integer_has_a_format_and_ids_and_versions_are_int64() -> None:
    integers = {where: node for where, node in walk(DOCUMENT) if node.get("type") == "integer"}
    assert integers
    for where, schema in integers.items():
        assert schema.get("format") in ("int32", "int64"), where
    schemas = DOCUMENT["components"]["schemas"]
    for schema in (schemas["User"]["properties"]["id"], schemas["User"]["properties"]["version"],
                   schemas["Session"]["properties"]["user_id"],
                   schemas["NewSession"]["properties"]["user_id"],
                   DOCUMENT["paths"]["/api/users/{user_id}"]["parameters"][0]["schema"]):
        assert schema["format"] == "int64"


def test_every_json_body_is_a_named_schema_so_that_generated_models_are_not_empty() -> None:
    for method, path, operation in operations():
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                if media_type == "application/json":
                    assert set(content["schema"]) == {"$ref"}, (method, path, status)
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["Liveness"]["properties"] == {"status": {"const": "ok"}}
    assert schemas["Readiness"]["required"] == ["status", "checks"]


def test_x_request_id_is_a_parameter_of_every_path_and_a_header_of_every_response() -> None:
    parameter = {"$ref": "#/components/parameters/RequestId"}
    header = {"$ref": "#/components/headers/RequestId"}
    responses = list(DOCUMENT["components"]["responses"].values())
    for path, item in DOCUMENT["paths"].items():
        assert parameter in item["parameters"], path
        responses.extend(response for method, operation in item.items() if method != "parameters"
                         for response in operation["responses"].values())
    for response in responses:
        assert "$ref" in response or response["headers"]["X-Request-ID"] == header, response
    assert DOCUMENT["components"]["parameters"]["RequestId"]["name"] == "X-Request-ID"


def test_every_error_is_a_problem_and_those_any_request_may_get_are_shared_responses() -> None:
    shared = DOCUMENT["components"]["responses"]
    for status in ("400", "414", "422", "431"):
        assert list(shared[f"E{status}"]["content"]) == ["application/problem+json"]
        for method, path, operation in operations():
            assert operation["responses"][status] == {"$ref": f"#/components/responses/E{status}"}, (
                method, path)
    media_types = {media_type for _, node in walk(DOCUMENT) if isinstance(node.get("content"), dict)
                   for media_type in node["content"]}
    assert "text/html" not in media_types
    for name, response in shared.items():
        assert list(response["content"]) == ["application/problem+json"], name


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def examples() -> list[tuple[str, Any, dict[str, Any]]]:
    """Every (where, example, schema): of parameters, request bodies and responses."""
    found = []
    for where, node in walk(DOCUMENT):
        if "in" in node and "schema" in node:  # a parameter
            assert "example" in node, f"{where}: a parameter without an example"
            found.append((where, node["example"], node["schema"]))
        for media_type, content in (node.get("content") or {}).items():
            if isinstance(content, dict) and "schema" in content:
                assert "example" in content, f"{where} {media_type}: a body without an example"
                found.append((f"{where} {media_type}", content["example"], content["schema"]))
    return found


def test_every_parameter_and_body_has_an_example_that_its_schema_accepts() -> None:
    found = examples()
    assert len(found) >= 40
    for where, example, schema in found:
        validator = jsonschema.Draft202012Validator(
            {**schema, "components": DOCUMENT["components"]},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        errors = [error.message for error in validator.iter_errors(example)]
        assert not errors, f"{where}: {errors}"



def test_python_m_app_openapi_prints_the_served_document() -> None:
    done = subprocess.run([sys.executable, "-m", "app.openapi"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == DOCUMENT
