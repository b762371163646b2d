"""What counts as a user's email address, and its one stored form (lowercase), which the
unique index on (tenant_id, email) turns into case-insensitive uniqueness."""

from __future__ import annotations

import re

MAX_LENGTH = 254  # RFC 5321 §4.5.3.1.3: a forward-path of 256 octets, less the brackets
MAX_LOCAL_LENGTH = 64  # RFC 5321 §4.5.3.1.1

# RFC 5322 dot-atom on both sides, widened to non-ASCII letters as RFC 6531 allows; the domain
# needs at least two labels (no "user@localhost" accounts), each at most 63 characters.
_NON_ASCII = "\u00a1-\ud7ff\ue000-\U0010ffff"
_ATEXT = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~\-{_NON_ASCII}]"
_LABEL_CHAR = rf"[A-Za-z0-9{_NON_ASCII}]"
_LABEL = rf"{_LABEL_CHAR}(?:[A-Za-z0-9\-{_NON_ASCII}]{{0,61}}{_LABEL_CHAR})?"
_EMAIL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+")


class InvalidEmailError(ValueError):
    """Not an email address this service accepts for an account."""


def normalize_email(value: str) -> str:
    """The stored form of the email address `value`: lowercase, otherwise unchanged.

    Raises `InvalidEmailError` for anything but `local@domain.tld` in dot-atom form within
    RFC 5321's lengths (no spaces, quotes, comments or control characters)."""
    if (
        not 3 <= len(value) <= MAX_LENGTH
        or not value.isprintable()  # also refuses lone surrogates and Unicode line breaks
        or not _EMAIL.fullmatch(value)
        or len(value.rpartition("@")[0]) > MAX_LOCAL_LENGTH
    ):
        raise InvalidEmailError("Payload validation error: email is not a valid email address.")
    return value.lower()


def lookup_form(value: str) -> str | None:
    """`value` as stored, for a lookup (typed on a login form: surrounding spaces dropped);
    None when no account can have it, so a lookup can be skipped."""
    try:
        return normalize_email(value.strip())
    except InvalidEmailError:
        return None
