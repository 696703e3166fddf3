"""Every route of /api/users and every error it documents, through Falcon."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.app.conftest import Account, CheckedClient

JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}


def create(client: CheckedClient, name: str = "Ada Lovelace", email: str = "ada@example.com") -> dict[str, Any]:
    result = client.simulate_post("/api/users", json={"name": name, "email": email})
    assert result.status_code == 201, result.text
    created: dict[str, Any] = result.json
    return created


def count_users(db: psycopg.Connection[Any]) -> int:
    """Users the test made (the fixture's admin aside)."""
    row = db.execute("SELECT count(*) FROM users WHERE role = 'member'").fetchone()
    assert row is not None
    return int(row[0])


# -- create -------------------------------------------------------------------

def test_create_returns_201_with_the_user_and_its_location(client: CheckedClient) -> None:
    result = client.simulate_post("/api/users", json={"name": "  Ada  ", "email": "Ada@Example.com"})
    assert result.status_code == 201
    user = result.json
    assert user["name"] == "Ada"
    assert user["email"] == "Ada@Example.com"
    assert user["version"] == 1
    assert result.headers["Location"] == f"/api/users/{user['id']}"
    assert result.headers["ETag"] == f'"{user["id"]}-1"'
    assert user["inserted_at"].endswith("Z") and user["updated_at"] == user["inserted_at"]


def test_create_with_an_email_taken_in_another_case_is_409(client: CheckedClient, db: psycopg.Connection[Any]) -> None:
    create(client, email="grace@example.com")
    result = client.simulate_post("/api/users", json={"name": "G", "email": "GRACE@example.COM"})
    assert result.status_code == 409
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.json["status"] == 409
    assert count_users(db) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@example.com"}, "name"),
        ({"name": "A"}, "email"),
        ({"name": "", "email": "a@example.com"}, "name"),
        ({"name": "   ", "email": "a@example.com"}, "name"),
        ({"name": "x" * 201, "email": "a@example.com"}, "name"),
        ({"name": 5, "email": "a@example.com"}, "name"),
        ({"name": None, "email": "a@example.com"}, "name"),
        ({"name": "nul\u0000byte", "email": "a@example.com"}, "name"),
        ({"name": "A", "email": "not-an-email"}, "email"),
        ({"name": "A", "email": "a@" + "b" * 250 + ".com"}, "email"),
        ({"name": "A", "email": " a@example.com"}, "email"),
        ({"name": "A", "email": ["a@example.com"]}, "email"),
        ({"name": "A", "email": "a@example.com", "role": "superuser"}, "role"),
        ({"name": "A", "email": "a@example.com", "password": "short"}, "password"),
        ({"name": "A", "email": "a@example.com", "current_password": "whatever it is"},
         "current_password"),
    ],
)
def test_create_with_invalid_fields_is_422_naming_the_field(
    client: CheckedClient, db: psycopg.Connection[Any], body: dict[str, Any], field: str
) -> None:
    result = client.simulate_post("/api/users", json=body)
    assert result.status_code == 422
    assert result.headers["Content-Type"] == "application/problem+json"
    assert field in [e["field"] for e in result.json["errors"]]
    assert count_users(db) == 0


def test_a_name_of_exactly_200_characters_after_trimming_is_accepted(client: CheckedClient) -> None:
    user = create(client, name=" " + "n" * 200 + " ")
    assert len(user["name"]) == 200


def test_a_body_that_is_not_an_object_is_422(client: CheckedClient) -> None:
    result = client.simulate_post("/api/users", body="[1, 2]", headers=JSON)
    assert result.status_code == 422


@pytest.mark.parametrize("body", [b"{", b"", b'{"name": "\xff\xfe", "email": "a@b.co"}', b"nan"])
def test_malformed_json_or_utf8_is_400(client: CheckedClient, db: psycopg.Connection[Any], body: bytes) -> None:
    result = client.simulate_post("/api/users", body=body, headers=JSON)
    assert result.status_code == 400
    assert result.json["type"].endswith("malformed-json")
    assert count_users(db) == 0


def test_deeply_nested_json_is_400(client: CheckedClient) -> None:
    result = client.simulate_post("/api/users", body="[" * 100 + "]" * 100, headers=JSON)
    assert result.status_code == 400


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml",
                                          "application/json; charset=latin-1",
                                          "application/merge-patch+json"])
def test_create_with_a_wrong_content_type_is_415(client: CheckedClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = client.simulate_post("/api/users", body='{"name": "A", "email": "a@example.com"}',
                                  headers=headers)
    assert result.status_code == 415


def test_json_with_a_utf8_charset_is_accepted(client: CheckedClient) -> None:
    result = client.simulate_post("/api/users", body='{"name": "Zoë", "email": "z@example.com"}',
                                  headers={"Content-Type": "application/json; charset=UTF-8"})
    assert result.status_code == 201
    assert result.json["name"] == "Zoë"


def test_a_declared_body_over_64_kib_is_refused_with_413(client: CheckedClient, db: psycopg.Connection[Any]) -> None:
    big = '{"name": "' + "x" * (64 * 1024) + '", "email": "a@example.com"}'
    result = client.simulate_post("/api/users", body=big, headers=JSON)
    assert result.status_code == 413
    assert count_users(db) == 0


def test_a_body_of_exactly_64_kib_is_read(client: CheckedClient) -> None:
    body = '{"name": "A", "email": "a@example.com"}'
    body = body + " " * (64 * 1024 - len(body))
    result = client.simulate_post("/api/users", body=body, headers=JSON)
    assert result.status_code == 201


# -- read ---------------------------------------------------------------------

def test_get_returns_the_user_with_etag_and_cache_control(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_get(f"/api/users/{user['id']}")
    assert result.status_code == 200
    assert result.json == user
    assert result.headers["ETag"] == f'"{user["id"]}-1"'
    assert result.headers["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize("path", ["/api/users/999", "/api/users/9223372036854775807",
                                  "/api/users/99999999999999999999", "/api/users/0",
                                  "/api/users/-1", "/api/users/abc", "/api/nothing", "/"])
def test_unknown_ids_and_routes_are_404_problems(client: CheckedClient, path: str) -> None:
    result = client.simulate_get(path)
    assert result.status_code == 404
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.json["status"] == 404


def test_if_none_match_with_the_current_etag_is_304_without_body(client: CheckedClient) -> None:
    user = create(client)
    etag = f'"{user["id"]}-1"'
    result = client.simulate_get(f"/api/users/{user['id']}", headers={"If-None-Match": f'"x", W/{etag}'})
    assert result.status_code == 304
    assert result.content == b""
    assert result.headers["ETag"] == etag
    assert result.headers["Cache-Control"] == "private, no-cache"


def test_if_none_match_with_an_old_etag_returns_the_user(client: CheckedClient) -> None:
    user = create(client)
    client.simulate_patch(f"/api/users/{user['id']}", json={"name": "New"})
    result = client.simulate_get(f"/api/users/{user['id']}", headers={"If-None-Match": f'"{user["id"]}-1"'})
    assert result.status_code == 200
    assert result.json["version"] == 2


# -- list ---------------------------------------------------------------------

def test_list_pages_through_every_user_in_id_order(client: CheckedClient, admin: Account) -> None:
    created = [admin.user_id] + [create(client, name=f"U{i}", email=f"u{i}@example.com")["id"]
                                 for i in range(7)]
    seen: list[int] = []
    url = "/api/users?limit=3"
    pages = 0
    while url:
        path, _, query = url.partition("?")
        result = client.simulate_get(path, query_string=query)
        assert result.status_code == 200
        seen += [u["id"] for u in result.json["data"]]
        pages += 1
        link = result.headers.get("Link")
        if result.json["next"] is None:
            assert link is None
            url = ""
        else:
            assert link is not None and link.endswith('; rel="next"')
            url = link[link.index("<") + 1 : link.index(">")]
            assert result.json["next"] in url
    assert seen == created
    assert pages == 3


def test_list_defaults_to_50_per_page(client: CheckedClient, db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO users (name, email) SELECT 'n', 'u' || g || '@example.com' FROM generate_series(1, 51) g")
    result = client.simulate_get("/api/users")
    assert len(result.json["data"]) == 50
    assert result.json["next"] is not None


def test_list_filters_by_email_case_insensitively(client: CheckedClient) -> None:
    create(client, email="a@example.com")
    wanted = create(client, name="B", email="B@Example.com")
    result = client.simulate_get("/api/users", params={"email": "b@EXAMPLE.com"})
    assert result.status_code == 200
    assert [u["id"] for u in result.json["data"]] == [wanted["id"]]


def test_list_has_an_etag_that_changes_when_a_user_changes(client: CheckedClient) -> None:
    user = create(client)
    first = client.simulate_get("/api/users")
    again = client.simulate_get("/api/users", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    client.simulate_put(f"/api/users/{user['id']}", json={"name": "Other", "email": "ada@example.com"})
    after = client.simulate_get("/api/users", headers={"If-None-Match": first.headers["ETag"]})
    assert after.status_code == 200
    assert after.headers["ETag"] != first.headers["ETag"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"),
     ("limit=", "limit"), ("after=garbage!", "after"), ("after=dTE6YWJj", "after"),
     ("email=nope", "email"), ("limit=1&limit=2", "limit"), ("sort=name", "sort")],
)
def test_list_with_bad_parameters_is_422(client: CheckedClient, query: str, field: str) -> None:
    result = client.simulate_get("/api/users", query_string=query)
    assert result.status_code == 422
    assert field in [e["field"] for e in result.json["errors"]]


# -- update -------------------------------------------------------------------

def test_put_replaces_the_user_and_bumps_version(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_put(f"/api/users/{user['id']}", json={"name": "Ada King", "email": "king@example.com"})
    assert result.status_code == 200
    assert result.json["name"] == "Ada King"
    assert result.json["email"] == "king@example.com"
    assert result.json["version"] == 2
    assert result.json["updated_at"] >= user["updated_at"]
    assert result.headers["ETag"] == f'"{user["id"]}-2"'


def test_put_requires_every_field(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_put(f"/api/users/{user['id']}", json={"name": "Only"})
    assert result.status_code == 422


@pytest.mark.parametrize("headers", [MERGE, JSON])
def test_patch_changes_only_the_given_fields(client: CheckedClient, headers: dict[str, str]) -> None:
    user = create(client)
    result = client.simulate_patch(f"/api/users/{user['id']}", body='{"name": "Countess"}', headers=headers)
    assert result.status_code == 200
    assert result.json["name"] == "Countess"
    assert result.json["email"] == user["email"]
    assert result.json["version"] == 2


def test_an_update_that_changes_nothing_keeps_the_version(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_patch(f"/api/users/{user['id']}", json={})
    assert result.status_code == 200
    assert result.json["version"] == 1


def test_patch_with_null_is_422_because_no_field_can_be_removed(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_patch(f"/api/users/{user['id']}", body='{"email": null}', headers=MERGE)
    assert result.status_code == 422


def test_updating_to_an_email_another_user_has_is_409_and_changes_nothing(
    client: CheckedClient, db: psycopg.Connection[Any]
) -> None:
    create(client, email="one@example.com")
    two = create(client, name="Two", email="two@example.com")
    result = client.simulate_patch(f"/api/users/{two['id']}", json={"email": "ONE@example.com"})
    assert result.status_code == 409
    row = db.execute("SELECT email, version FROM users WHERE id = %s", (two["id"],)).fetchone()
    assert row == ("two@example.com", 1)


def test_updating_a_missing_user_is_404(client: CheckedClient) -> None:
    assert client.simulate_put("/api/users/4242", json={"name": "A", "email": "a@example.com"}).status_code == 404
    assert client.simulate_patch("/api/users/4242", json={"name": "A"}).status_code == 404


def test_patch_with_a_text_body_is_415(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_patch(f"/api/users/{user['id']}", body="name=x",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status_code == 415
    assert "application/merge-patch+json" in result.headers["Accept-Patch"]


def test_if_match_with_the_current_etag_applies_the_update(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_patch(f"/api/users/{user['id']}", json={"name": "B"},
                                   headers={"If-Match": f'"{user["id"]}-1"'})
    assert result.status_code == 200
    assert result.headers["ETag"] == f'"{user["id"]}-2"'


def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(client: CheckedClient, db: psycopg.Connection[Any]) -> None:
    user = create(client)
    client.simulate_patch(f"/api/users/{user['id']}", json={"name": "B"})
    result = client.simulate_put(f"/api/users/{user['id']}", json={"name": "C", "email": "c@example.com"},
                                 headers={"If-Match": f'"{user["id"]}-1"'})
    assert result.status_code == 412
    assert db.execute("SELECT name FROM users WHERE id = %s", (user["id"],)).fetchone() == ("B",)


def test_if_match_star_on_a_missing_user_is_412(client: CheckedClient) -> None:
    result = client.simulate_patch("/api/users/777", json={"name": "x"}, headers={"If-Match": "*"})
    assert result.status_code == 412
    assert client.simulate_delete("/api/users/777", headers={"If-Match": "*"}).status_code == 412


def test_a_weak_etag_never_satisfies_if_match(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_delete(f"/api/users/{user['id']}", headers={"If-Match": f'W/"{user["id"]}-1"'})
    assert result.status_code == 412


# -- delete -------------------------------------------------------------------

def test_delete_is_204_and_then_404(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_delete(f"/api/users/{user['id']}")
    assert result.status_code == 204
    assert result.content == b""
    assert client.simulate_get(f"/api/users/{user['id']}").status_code == 404
    assert client.simulate_delete(f"/api/users/{user['id']}").status_code == 404


def test_delete_with_if_match_current_etag_deletes(client: CheckedClient) -> None:
    user = create(client)
    result = client.simulate_delete(f"/api/users/{user['id']}", headers={"If-Match": f'"{user["id"]}-1"'})
    assert result.status_code == 204


# -- methods ------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/api/users", {"GET", "POST"}),
    ("PUT", "/api/users", {"GET", "POST"}),
    ("POST", "/api/users/1", {"GET", "PUT", "PATCH", "DELETE"}),
])
def test_an_unsupported_method_is_405_with_allow(client: CheckedClient, method: str, path: str, allowed: set[str]) -> None:
    result = client.simulate_request(method, path)
    assert result.status_code == 405
    assert result.headers["Content-Type"] == "application/problem+json"
    assert allowed <= {m.strip() for m in result.headers["Allow"].split(",")}


def test_openapi_document_describes_every_route(client: CheckedClient) -> None:
    result = client.simulate_get("/openapi.json")
    assert result.status_code == 200
    doc = result.json
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]["/api/users"]) == {"parameters", "get", "post"}
    assert set(doc["paths"]["/api/users/{user_id}"]) >= {"get", "put", "patch", "delete"}
