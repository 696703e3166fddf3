"""Body and query validation, as pure functions."""

from __future__ import annotations

import pytest

from app.validation import (
    ValidationFailed,
    decode_cursor,
    encode_cursor,
    validate_list_query,
    validate_user,
)


def fields_of(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.field for e in exc.value.errors]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_user({"name": "", "email": "x", "extra": 1}, partial=False)
    assert sorted(fields_of(exc)) == ["email", "extra", "name"]


def test_a_partial_body_may_omit_fields() -> None:
    fields = validate_user({"email": "a@example.com"}, partial=True)
    assert fields.name is None and fields.email == "a@example.com"


def test_names_are_trimmed() -> None:
    assert validate_user({"name": "\t Ada \n", "email": "a@example.com"}, partial=False).name == "Ada"


@pytest.mark.parametrize("email", ["a@example.com", "first.last+tag@sub.example.co.uk",
                                   "Ünï@exämple.de", "x@y.io"])
def test_plausible_emails_are_accepted(email: str) -> None:
    assert validate_user({"name": "n", "email": email}, partial=False).email == email


@pytest.mark.parametrize("email", ["", "a", "a@", "@b.com", "a@b", "a b@c.com", "a@b..com",
                                   "a@@b.com", "a@b.com\n", "a\x00@b.com", "a@-b.com",
                                   "a" * 65 + "@b.com"])
def test_implausible_emails_are_refused(email: str) -> None:
    with pytest.raises(ValidationFailed):
        validate_user({"name": "n", "email": email}, partial=False)


def test_cursors_round_trip_and_are_opaque() -> None:
    cursor = encode_cursor(12345)
    assert "12345" not in cursor
    assert decode_cursor(cursor) == 12345


@pytest.mark.parametrize("cursor", ["", "!!!", "dTE6", "eDE6MTI", "x" * 65, "dTE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5"])
def test_bad_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor)


def test_list_query_defaults() -> None:
    query = validate_list_query({})
    assert (query.after_id, query.limit, query.email) == (0, 50, None)


def test_list_query_reads_every_parameter() -> None:
    query = validate_list_query({"limit": "100", "after": encode_cursor(7), "email": "a@b.co"})
    assert (query.after_id, query.limit, query.email) == (7, 100, "a@b.co")
