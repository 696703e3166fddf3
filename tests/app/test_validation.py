"""Body and query validation, as pure functions."""

from __future__ import annotations

import base64
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.validation import (
    BLANK_CHARACTERS,
    CURSOR_PATTERN,
    EMAIL_PATTERN,
    NAME_PATTERN,
    ValidationFailed,
    check_query_parameters,
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


@pytest.mark.parametrize("name", ["\u200b\u200b", "\u3164", " \u3164 ", "\u115f\u1160", "\uffa0",
                                  "\u2800", "\ufeff", "\u034f", "\ufe0f", "a\rb", "a\nb",
                                  "a\tb", "a\u202eb", "a\u200bb", "a\u2066b", "a\u00adb",
                                  "\u3164a", "a\u3164", "a\U000e0041", "a\x85b", "a\x9bb"])
def test_names_with_no_visible_edge_or_with_control_or_format_characters_are_refused(
        name: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_user({"name": name, "email": "a@example.com"}, partial=False)
    assert fields_of(exc) == ["name"]


@pytest.mark.parametrize(("name", "stored"), [
    ("Zoe\u0308", "Zo\u00eb"),              # NFC: one spelling of ë
    ("  Jos\u00e9  ", "Jos\u00e9"),
    ("a\u3164b", "a\u3164b"),               # a blank inside a name is not an edge
    ("\U0001f600", "\U0001f600"),
    ("\u0915\u094d\u0937", "\u0915\u094d\u0937"),
])
def test_names_are_normalised_to_nfc_and_trimmed(name: str, stored: str) -> None:
    assert validate_user({"name": name, "email": "a@example.com"}, partial=False).name == stored


def test_a_name_is_measured_after_normalisation() -> None:
    decomposed = "e\u0301" * 150  # 300 code points, 150 once composed
    assert validate_user({"name": decomposed, "email": "a@example.com"},
                         partial=False).name == "\u00e9" * 150


@pytest.mark.parametrize("email", ["a\u202e@example.com", "a\u200b@example.com",
                                   "a@exa\u200dmple.com", "\ufeffa@example.com",
                                   "a@example.com\u2066", "a\x9b@example.com",
                                   "a\U000e0041@example.com"])
def test_emails_with_control_or_format_characters_are_refused(email: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_user({"name": "n", "email": email}, partial=False)
    assert [e.message for e in exc.value.errors] == [
        "must not contain control or format characters"]


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


def test_query_parameters_other_than_the_allowed_ones_are_refused_by_name() -> None:
    check_query_parameters({"limit": "1"}, ("limit",))
    with pytest.raises(ValidationFailed) as refused:
        check_query_parameters({"limit": ["1", "2"], "sort": "name"}, ("limit",))
    assert [e.to_json() for e in refused.value.errors] == [
        {"field": "limit", "message": "must be given once"},
        {"field": "sort", "message": "unknown query parameter"}]


# -- the OpenAPI patterns say exactly what validation accepts ----------------------

# How a JSON Schema validator reads a pattern: "$" is the end of the string.
_NAME = re.compile(NAME_PATTERN.removesuffix("$") + r"\Z")
_CURSOR_RE = re.compile(CURSOR_PATTERN.removesuffix("$") + r"\Z")
_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_FORMAT = "".join(c for c in map(chr, range(0x10000)) if unicodedata.category(c) == "Cf")
_ODD = _SPACES + _FORMAT + "".join(BLANK_CHARACTERS) + "ab\x00\x01\x1f\x7f\x85\x9f\u0301"
_names = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(_ODD), max_size=8),
    st.text(alphabet=st.sampled_from(_ODD), min_size=199, max_size=202),
    st.builds(lambda pad, core: pad + core + pad, st.text(alphabet=_SPACES, max_size=3),
              st.text(min_size=198, max_size=202)),
    st.from_regex(_NAME, fullmatch=True),
)


def _accepts_name(name: str) -> bool:
    try:
        validate_user({"name": name, "email": "a@example.com"}, partial=False)
    except ValidationFailed:
        return False
    return True


def _astral_format(text: str) -> bool:
    return any(ord(c) > 0xFFFF and unicodedata.category(c) == "Cf" for c in text)


@settings(max_examples=600, deadline=None, database=None)
@given(_names)
def test_the_name_pattern_accepts_exactly_the_names_validation_accepts(name: str) -> None:
    """Of a name in NFC, as the schema's description says; the pattern names the
    format characters of the BMP only (also as described)."""
    name = unicodedata.normalize("NFC", name)
    if _astral_format(name):
        assert not _accepts_name(name)
        return
    assert bool(_NAME.search(name)) == _accepts_name(name)


_EMAIL_RE = re.compile(EMAIL_PATTERN.removesuffix("$") + r"\Z")


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(), st.text(alphabet=st.sampled_from(_ODD), max_size=6)))
def test_what_the_email_pattern_refuses_validation_refuses_with_the_same_reason(text: str) -> None:
    if _EMAIL_RE.match(text) or _astral_format(text):
        return
    with pytest.raises(ValidationFailed) as exc:
        validate_user({"name": "n", "email": "a" + text + "@example.com"}, partial=False)
    assert exc.value.errors[0].message in ("must not contain control or format characters",
                                           "must be at most 254 characters")


@settings(max_examples=300, deadline=None, database=None)
@given(st.from_regex(_CURSOR_RE, fullmatch=True))
def test_every_cursor_the_pattern_allows_is_a_valid_cursor(cursor: str) -> None:
    # The pattern allows "u1:" and 1 to 18 digits, base64url-encoded unpadded.
    digits = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).removeprefix(b"u1:")
    assert decode_cursor(cursor) == int(digits)


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_every_cursor_the_service_makes_matches_the_pattern(last_id: int) -> None:
    cursor = encode_cursor(last_id)
    assert _CURSOR_RE.match(cursor) and decode_cursor(cursor) == last_id


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=40))
def test_anything_else_is_not_a_cursor(text: str) -> None:
    if _CURSOR_RE.match(text):
        return
    with pytest.raises(ValidationFailed):
        decode_cursor(text)
