"""The rules both references share: placeholders, cursors, validation, preconditions, tokens."""

from __future__ import annotations

import pytest

from perf.reference.users_api import (
    Invalid,
    bearer_token,
    decode_cursor,
    encode_cursor,
    if_match_versions,
    none_match,
    numbered,
    user_queries,
    validate_user,
)


def test_numbered_turns_each_placeholder_into_its_position() -> None:
    assert numbered("UPDATE t SET a = COALESCE(%s::text, a) WHERE id = %s AND v = ANY(%s)") == (
        "UPDATE t SET a = COALESCE($1::text, a) WHERE id = $2 AND v = ANY($3)")


def test_every_shared_statement_numbers_cleanly() -> None:
    queries = user_queries(["id", "name", "email", "role", "version"])
    for sql in (queries.select_one, queries.select_page_by_email, queries.update_if_version):
        converted = numbered(sql)
        assert "%s" not in converted
        assert converted.count("$") == sql.count("%s")


def test_user_queries_show_role_only_when_the_schema_has_it() -> None:
    assert "role" in user_queries(["id", "role"]).names
    assert "role" not in user_queries(["id"]).names


def test_cursors_round_trip_and_garbage_is_invalid() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    with pytest.raises(Invalid):
        decode_cursor("not-a-cursor")


def test_validate_user_requires_both_fields_unless_partial() -> None:
    assert validate_user({"name": " Ann ", "email": "ann@example.com"}, partial=False) == (
        "Ann", "ann@example.com")
    assert validate_user({"name": "Ann"}, partial=True) == ("Ann", None)
    with pytest.raises(Invalid):
        validate_user({"name": "Ann"}, partial=False)
    with pytest.raises(Invalid):
        validate_user({"name": "Ann", "role": "admin"}, partial=True)


def test_if_match_names_versions_or_any_or_none_of_this_user() -> None:
    assert if_match_versions(None, 7) is None
    assert if_match_versions("*", 7) == []
    assert if_match_versions('"7-3", "7-4"', 7) == [3, 4]
    assert if_match_versions('"8-3"', 7) == [0]


def test_if_none_match_compares_weakly() -> None:
    assert none_match('W/"7-3"', '"7-3"')
    assert none_match("*", '"7-3"')
    assert not none_match('"7-2"', '"7-3"')
    assert not none_match(None, '"7-3"')


def test_bearer_token_is_the_credential_of_a_well_formed_header() -> None:
    assert bearer_token("Bearer abc-_123") == "abc-_123"
    assert bearer_token("Basic abc") is None
    assert bearer_token(None) is None
