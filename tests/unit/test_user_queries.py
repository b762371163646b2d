"""What an account's email may be, its stored form, and the supported user-search syntax."""

from __future__ import annotations

import pytest

from authorize_service.users.emails import InvalidEmailError, lookup_form, normalize_email
from authorize_service.users.search import UserQuery, UserQueryError, parse_user_query


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Jane@Example.COM", "jane@example.com"),
        ("jane.doe+tag@mail.example.co.uk", "jane.doe+tag@mail.example.co.uk"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("Ünïcode@bücher.example", "ünïcode@bücher.example"),
    ],
)
def test_valid_emails_are_stored_lowercase(raw: str, stored: str) -> None:
    assert normalize_email(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "jane",
        "jane@localhost",
        "@example.com",
        "jane@",
        "jane@@example.com",
        "ja ne@example.com",
        "jane@exa mple.com",
        '"jane"@example.com',
        ".jane@example.com",
        "jane.@example.com",
        "ja..ne@example.com",
        "jane@example..com",
        "jane@-example.com",
        "jane@example.com\n",
        "jane\u2028@example.com",
        "\ud800@example.com",
        "x" * 65 + "@example.com",
        "jane@" + "a" * 64 + ".com",
        "j@" + ".".join(["a" * 60] * 5) + ".com",  # over 254 characters
    ],
)
def test_invalid_emails(raw: str) -> None:
    with pytest.raises(InvalidEmailError):
        normalize_email(raw)
    assert lookup_form(raw) is None or raw != raw.strip()


def test_lookup_form_forgives_surrounding_spaces() -> None:
    assert lookup_form("  Jane@Example.com\n") == "jane@example.com"
    assert lookup_form("not an email") is None


@pytest.mark.parametrize(
    ("q", "query"),
    [
        ('email:"Jane@Example.com"', UserQuery("email", "Jane@Example.com")),
        ("email:jane@example.com", UserQuery("email", "jane@example.com")),
        ('  email:"jane@example.com"  ', UserQuery("email", "jane@example.com")),
        ('email:"a\\"b\\\\c@example.com"', UserQuery("email", 'a"b\\c@example.com')),
        ('user_id:"auth0|abc123"', UserQuery("user_id", "auth0|abc123")),
        ("user_id:auth0|abc123", UserQuery("user_id", "auth0|abc123")),
    ],
)
def test_supported_queries(q: str, query: UserQuery) -> None:
    assert parse_user_query(q) == query


@pytest.mark.parametrize(
    "q",
    [
        "",
        "jane@example.com",
        'name:"Jane"',
        'email:"jane@example.com" AND email_verified:true',
        "email:jane@example.com OR email:john@example.com",
        'email:"a" email:"b"',
        "email:*@example.com",
        "email:jane*",
        "email:jane~",
        "email:[a TO z]",
        "email:(jane@example.com)",
        'email:"unterminated',
        'email:""',
        "email:",
        "-email:jane@example.com",
        "email:-jane@example.com",
        'EMAIL:"jane@example.com"',
        "x" * 601,
    ],
)
def test_unsupported_queries_are_refused(q: str) -> None:
    with pytest.raises(UserQueryError):
        parse_user_query(q)
