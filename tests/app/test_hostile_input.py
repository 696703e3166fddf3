"""Hostile input: injection strings, NUL bytes, invalid UTF-8, oversized values."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from app.runtime import Runtime
from tests.app.conftest import ADMIN_EMAIL, Account, CheckedClient, make_client

INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "\" OR \"\"=\"",
    "1; SELECT pg_sleep(5)",
    "admin@example.com' --",
    "x' UNION SELECT token_hash::text, NULL FROM sessions --",
    "%' OR email LIKE '%",
    "$1 $2 %s %(x)s {0}",
    "\\'; COPY users TO '/tmp/x'; --",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "${jndi:ldap://x/a}",
    "a@example.com\r\nX-Injected: 1",
]
# What a leaked database error would contain.
LEAKS = ("syntax error", "psycopg", "SELECT ", "Traceback", "pg_", "token_hash", "argon2")


def assert_nothing_leaks(result: Any, evil: str) -> None:
    """No 5xx, and nothing that looks like a database error beyond the echoed input."""
    assert result.status_code < 500, result.text
    text = result.text
    for echoed in {evil, evil.strip()}:
        text = text.replace(json.dumps(echoed, ensure_ascii=False)[1:-1], "").replace(echoed, "")
    for leak in LEAKS:
        assert leak.lower() not in text.lower(), (leak, result.text)


def table_sizes(db: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = db.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM sessions),"
                     " (SELECT count(*) FROM pg_tables WHERE tablename IN ('users', 'sessions'))"
                     ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_in_every_field_and_filter_are_data_and_leak_nothing(
    client: CheckedClient, anonymous: CheckedClient, db: psycopg.Connection[Any], evil: str
) -> None:
    tables_before = table_sizes(db)[2]
    # As a name (stored exactly as given, trimmed), in an email, a password,
    # a login, each query parameter, a precondition and an id.
    created = client.simulate_post("/api/users", json={"name": evil, "email": "e@example.com",
                                                       "password": evil + " padding!"})
    assert_nothing_leaks(created, evil)
    if created.status_code == 201:
        user = created.json
        assert user["name"] == evil.strip()
        path = f"/api/users/{user['id']}"
        assert_nothing_leaks(client.simulate_patch(path, json={"name": evil}), evil)
        assert_nothing_leaks(client.simulate_put(path, json={"name": evil, "email": evil}), evil)
        assert_nothing_leaks(client.simulate_patch(path, json={"email": evil}), evil)
        assert_nothing_leaks(client.simulate_delete(path, headers={"If-Match": evil}), evil)
        assert_nothing_leaks(client.simulate_patch(path, json={"name": "ok"}, headers={"If-Match": evil}), evil)
        assert_nothing_leaks(client.simulate_get(path, headers={"If-None-Match": evil}), evil)
    for param in ("email", "after", "limit", evil):
        assert_nothing_leaks(client.simulate_get("/api/users", params={param: evil}), evil)
    assert_nothing_leaks(client.simulate_get("/api/users/" + evil), evil)
    login = anonymous.simulate_post("/api/sessions", json={"email": evil, "password": evil},
                                    remote_addr="10.9.9.9")
    assert login.status_code in (401, 422, 429)
    assert_nothing_leaks(login, evil)
    login = anonymous.simulate_post("/api/sessions", json={"email": ADMIN_EMAIL, "password": evil},
                                    remote_addr="10.9.9.8")
    assert login.status_code in (401, 422, 429)
    assert_nothing_leaks(anonymous.simulate_get("/api/users", headers={"Authorization": "Bearer " + evil}), evil)
    # Nothing was dropped, copied or created behind the API's back.
    users, _, tables = table_sizes(db)
    assert tables == tables_before == 2
    assert users <= 2
    assert db.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone() == (1,)


def test_a_wildcard_email_filter_matches_only_itself(client: CheckedClient) -> None:
    client.simulate_post("/api/users", json={"name": "A", "email": "a@example.com"})
    result = client.simulate_get("/api/users", params={"email": "%@example.com"})
    assert result.status_code in (200, 422)
    if result.status_code == 200:
        assert result.json["data"] == []


# -- NUL bytes ---------------------------------------------------------------------

@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/users", {"name": "a\u0000b", "email": "a@example.com"}, "name"),
    ("/api/users", {"name": "A", "email": "a\u0000@example.com"}, "email"),
    ("/api/users", {"name": "A", "email": "a@example.com", "password": "twelve chars\u0000"}, "password"),
])
def test_nul_in_a_body_field_is_422(client: CheckedClient, db: psycopg.Connection[Any],
                                    path: str, body: dict[str, Any], field: str) -> None:
    result = client.simulate_post(path, json=body)
    assert result.status_code == 422
    assert field in [e["field"] for e in result.json["errors"]]
    assert db.execute("SELECT count(*) FROM users WHERE role = 'member'").fetchone() == (0,)


@pytest.mark.parametrize("body", [{"email": "a\u0000@example.com", "password": "whatever it is"},
                                  {"email": ADMIN_EMAIL, "password": "pass\u0000word"}])
def test_nul_in_a_login_is_422(anonymous: CheckedClient, body: dict[str, Any]) -> None:
    assert anonymous.simulate_post("/api/sessions", json=body).status_code == 422


@pytest.mark.parametrize("query", ["email=a%00@example.com", "after=dTE6MA%00", "limit=1%00",
                                   "email=%0d%0aX:1", "x%00=1"])
def test_nul_or_control_characters_in_the_query_string_are_400(client: CheckedClient, query: str) -> None:
    result = client.simulate_get("/api/users", query_string=query)
    assert result.status_code == 400
    assert result.json["type"].endswith("malformed-request")


@pytest.mark.parametrize("query", ["email=%FF@example.com", "after=%C3%28", "limit=%ED%A0%80"])
def test_invalid_utf8_in_the_query_string_is_400(client: CheckedClient, query: str) -> None:
    assert client.simulate_get("/api/users", query_string=query).status_code == 400


def test_valid_utf8_in_the_query_string_is_decoded(client: CheckedClient) -> None:
    created = client.simulate_post("/api/users", json={"name": "Zoë", "email": "zoë@exämple.com"})
    assert created.status_code == 201
    result = client.simulate_get("/api/users", query_string="email=zo%C3%AB%40ex%C3%A4mple.com")
    assert [u["id"] for u in result.json["data"]] == [created.json["id"]]


@pytest.mark.parametrize("value", ["id\u0000", "id\x01", "bad\xe9id", "\xff\xfe"])
def test_nul_control_or_non_utf8_bytes_in_x_request_id_are_400(client: CheckedClient, value: str) -> None:
    # WSGI carries header bytes as latin-1 characters: "\xe9" alone is not UTF-8.
    result = client.simulate_get("/livez", headers={"X-Request-ID": value})
    assert result.status_code == 400
    assert result.headers["X-Request-ID"] != value and len(result.headers["X-Request-ID"]) == 32


def test_a_utf8_x_request_id_is_replaced_not_refused(client: CheckedClient) -> None:
    value = "zoë".encode().decode("latin-1")  # the header's bytes are valid UTF-8
    result = client.simulate_get("/livez", headers={"X-Request-ID": value})
    assert result.status_code == 200 and result.headers["X-Request-ID"] != value


@pytest.mark.parametrize("value", ["Bearer abc\u0000def", "Bearer \xff\xfe", "Bearer tok\x7f",
                                   "Bearer zo\xc3\xab"])
def test_unprintable_bytes_in_authorization_are_400_invalid_request(
    anonymous: CheckedClient, value: str
) -> None:
    result = anonymous.simulate_get("/api/users", headers={"Authorization": value})
    assert result.status_code == 400
    assert 'error="invalid_request"' in result.headers["WWW-Authenticate"]


# -- sizes ----------------------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ({"name": "n" * 201, "email": "a@example.com"}, "name"),
    ({"name": "A", "email": "a" * 64 + "@" + "b" * 186 + ".com"}, "email"),
    ({"name": "A", "email": "a@example.com", "password": "p" * 1025}, "password"),
    ({"name": "A", "email": "a@example.com", "password": "p" * 11}, "password"),
    ({"name": "A", "email": "a@example.com", "role": "r" * 10_000}, "role"),
])
def test_oversized_or_undersized_values_are_422(client: CheckedClient, body: dict[str, Any], field: str) -> None:
    result = client.simulate_post("/api/users", json=body)
    assert result.status_code == 422
    assert field in [e["field"] for e in result.json["errors"]]
    assert "p" * 100 not in result.text  # a refused password is never echoed


def test_passwords_of_exactly_12_and_1024_characters_are_accepted(client: CheckedClient) -> None:
    for n, length in enumerate((12, 1024)):
        result = client.simulate_post("/api/users", json={"name": "A", "email": f"p{n}@example.com",
                                                          "password": "p" * length})
        assert result.status_code == 201


def test_a_login_with_an_oversized_email_is_422(anonymous: CheckedClient) -> None:
    result = anonymous.simulate_post("/api/sessions", json={"email": "a" * 255, "password": "x"})
    assert result.status_code == 422


def test_a_login_body_over_64_kib_is_413(anonymous: CheckedClient) -> None:
    body = '{"email": "a@example.com", "password": "' + "x" * (64 * 1024) + '"}'
    result = anonymous.simulate_post("/api/sessions", body=body,
                                     headers={"Content-Type": "application/json"})
    assert result.status_code == 413


def test_deeply_nested_login_json_is_400(anonymous: CheckedClient) -> None:
    result = anonymous.simulate_post("/api/sessions", body="[" * 100 + "]" * 100,
                                     headers={"Content-Type": "application/json"})
    assert result.status_code == 400


def test_a_lone_surrogate_in_json_is_400(client: CheckedClient) -> None:
    result = client.simulate_post("/api/users", body='{"name": "\\ud800", "email": "a@example.com"}',
                                  headers={"Content-Type": "application/json"})
    assert result.status_code == 400


def test_no_hostile_request_reaches_the_database_as_sql(runtime: Runtime, admin: Account,
                                                        db: psycopg.Connection[Any]) -> None:
    """A name that is SQL round-trips as text, through the cache and the database alike."""
    client = make_client(runtime, admin)
    evil = "Robert'); DROP TABLE users;--"
    created = client.simulate_post("/api/users", json={"name": evil, "email": "bobby@example.com"})
    assert created.status_code == 201
    for _ in range(2):  # database, then cache
        assert client.simulate_get(f"/api/users/{created.json['id']}").json["name"] == evil
    assert db.execute("SELECT name FROM users WHERE email = 'bobby@example.com'").fetchone() == (evil,)


# -- non-ASCII in every header the service reads -------------------------------------

# Latin-1 characters that str.isdigit(), str.isspace() or a careless
# parser take for something they are not, and the rest of the upper half.
LATIN1_TRAPS = ["\xb2", "\xb3", "\xb9", "\xbc", "\xbd", "\xa0", "\x85", "\xb5", "\xaa", "\xba",
                "\xff", "\xe9", "\x80", "\x9b"]


def header_values(trap: str, user_id: int) -> dict[str, list[str]]:
    return {
        "If-Match": [f'"{user_id}-{trap}"', f'"{user_id}-1{trap}"', f'"{user_id}-{trap}1"',
                     trap, f'W/"{user_id}-{trap}"', f'"{user_id}-1", "{trap}"', f"*{trap}"],
        "If-None-Match": [f'"{user_id}-{trap}"', f'"{user_id}-1{trap}"', trap, f"*{trap}",
                          f'W/"{user_id}-1"{trap}'],
        "Content-Type": [f"application/json{trap}", f"application/json; charset={trap}",
                         trap, f"application/json; charset=utf-8; x={trap}"],
        "X-Request-ID": [trap, f"id-{trap}", trap * 200],
        "Authorization": [f"Bearer {trap}", f"Bearer x{trap}y", f"{trap}earer x", trap],
    }


def all_header_cases(user_id: int) -> list[tuple[str, str]]:
    import random

    cases = [(name, value) for trap in LATIN1_TRAPS
             for name, values in header_values(trap, user_id).items() for value in values]
    rng = random.Random(20261201)
    for _ in range(40):
        noise = bytes(rng.randrange(0x20, 0x100) for _ in range(rng.randrange(1, 24)))
        for name in ("If-Match", "If-None-Match", "Content-Type", "X-Request-ID", "Authorization"):
            cases.append((name, noise.decode("latin-1")))
    return cases


def test_non_ascii_bytes_in_every_header_the_service_reads_never_answer_500(
    client: CheckedClient, admin: Account
) -> None:
    created = client.simulate_post("/api/users", json={"name": "H", "email": "h@example.com"})
    user_id = created.json["id"]
    path = f"/api/users/{user_id}"
    seen: set[int] = set()
    for name, value in all_header_cases(user_id):
        headers = {**admin.headers, "Content-Type": "application/json", name: value}
        requests = [
            ("GET", path, None), ("GET", "/api/users", None),
            ("PATCH", path, {"name": "H"}), ("DELETE", f"/api/users/{user_id + 10_000}", None),
            ("POST", "/api/sessions", {"email": "h@example.com", "password": "wrong"}),
        ]
        for method, target, body in requests:
            result = client.simulate_request(
                method, target, headers=headers, remote_addr="10.77.0.1",
                body=None if body is None else json.dumps(body))
            assert result.status_code < 500, (method, target, name, value, result.text)
            seen.add(result.status_code)
    assert {200, 400, 401, 404, 412, 415} <= seen


@pytest.mark.parametrize("tag", ['"{id}-\xb2"', '"{id}-2\xb2"', '"{id}-\xbd"', '"{id}-\xd9\xa3"',
                                 '"{id}-1_0"', '"{id}-+1"', '"{id}- 1"'])
def test_an_if_match_version_of_anything_but_ascii_digits_matches_nothing(
    client: CheckedClient, tag: str
) -> None:
    user = client.simulate_post("/api/users", json={"name": "M", "email": "m@example.com"}).json
    for method, kwargs in (("PATCH", {"json": {"name": "N"}}), ("DELETE", {})):
        result = client.simulate_request(method, f"/api/users/{user['id']}",
                                         headers={"If-Match": tag.format(id=user["id"])}, **kwargs)
        assert result.status_code == 412, (method, result.text)


@pytest.mark.parametrize("spelling", ["1_0", "+10", "\u0661\u0660", "\uff11\uff10", "010"])
def test_a_user_id_in_a_path_is_ascii_digits_only(client: CheckedClient, spelling: str) -> None:
    from urllib.parse import quote

    result = client.simulate_get("/api/users/" + quote(spelling))
    if spelling == "010":
        assert result.status_code == 404 or result.json["id"] == 10
    else:
        assert result.status_code == 404


# -- the size of a 422 ----------------------------------------------------------------

def test_a_body_of_thousands_of_unknown_keys_answers_a_bounded_422(client: CheckedClient) -> None:
    body: dict[str, object] = {f"k{n:05d}": 1 for n in range(5000)}
    body.update({"name": "A", "email": "a@example.com"})
    encoded = json.dumps(body)
    assert len(encoded) < 64 * 1024
    result = client.simulate_post("/api/users", body=encoded,
                                  headers={"Content-Type": "application/json"})
    assert result.status_code == 422
    assert len(result.json["errors"]) == 20
    assert result.json["errors_total"] == 5000
    assert len(result.content) < 4096


def test_an_unknown_field_s_name_is_echoed_cut_to_a_bound(client: CheckedClient) -> None:
    result = client.simulate_post("/api/users", json={"k" * 50_000: 1, "name": "A",
                                                      "email": "a@example.com"})
    assert result.status_code == 422
    assert "errors_total" not in result.json
    [error] = result.json["errors"]
    assert len(error["field"]) <= 65 and len(result.content) < 1024


@pytest.mark.parametrize("name", ["\u200b\u200b", "\u3164", "a\r\nb", "a\tb", "\u202eevil"])
def test_invisible_or_control_names_are_422_on_every_write(
    client: CheckedClient, db: psycopg.Connection[Any], name: str
) -> None:
    created = client.simulate_post("/api/users", json={"name": name, "email": "n@example.com"})
    assert created.status_code == 422
    user = client.simulate_post("/api/users", json={"name": "N", "email": "n@example.com"}).json
    for method in ("PATCH", "PUT"):
        result = client.simulate_request(method, f"/api/users/{user['id']}",
                                         json={"name": name, "email": "n@example.com"})
        assert result.status_code == 422 and result.json["errors"][0]["field"] == "name"
    assert db.execute("SELECT name FROM users WHERE id = %s", (user["id"],)).fetchone() == ("N",)
