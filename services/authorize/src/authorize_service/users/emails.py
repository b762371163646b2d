"""What counts as a user's email address, and its one stored form (lowercase), which the
unique index on (tenant_id, email) turns into case-insensitive uniqueness."""

from __future__ import annotations

from oidc_common.text import is_email_address


class InvalidEmailError(ValueError):
    """Not an email address this service accepts for an account."""


def normalize_email(value: str) -> str:
    """The stored form of the email address `value`: lowercase, otherwise unchanged.

    Raises `InvalidEmailError` for anything but `local@domain.tld` in dot-atom form within
    RFC 5321's lengths (no spaces, quotes, comments or control characters)."""
    if not is_email_address(value):
        raise InvalidEmailError("Payload validation error: email is not a valid email address.")
    return value.lower()


def lookup_form(value: str) -> str | None:
    """`value` as stored, for a lookup (typed on a login form: surrounding spaces dropped);
    None when no account can have it, so a lookup can be skipped."""
    try:
        return normalize_email(value.strip())
    except InvalidEmailError:
        return None
