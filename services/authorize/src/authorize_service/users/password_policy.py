"""The one rule a new password must pass, wherever it is set (Management API, admin CLI).

Refused: fewer than 8 characters, or the account's own email (case-insensitively), the first
thing tried against an account. Auth0 names these failures `PasswordStrengthError` and
`PasswordNoUserInfoError`; the messages keep those names.
"""

from __future__ import annotations

MIN_LENGTH = 8
# Argon2 takes any length, but nobody types more, and each hash must stay cheap to compute.
MAX_LENGTH = 1024


class WeakPasswordError(ValueError):
    """The password is refused; the message says why, without repeating the password."""


def check_password(password: str, email: str) -> None:
    """Raise `WeakPasswordError` unless `password` may be set for the account `email`.

    Length counts characters (code points), as people do, not bytes.
    """
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(
            f"PasswordStrengthError: Password is too weak (at least {MIN_LENGTH} characters)"
        )
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(
            f"PasswordStrengthError: Password is too long (at most {MAX_LENGTH} characters)"
        )
    if password.strip().casefold() == email.strip().casefold():
        raise WeakPasswordError("PasswordNoUserInfoError: Password contains user information")
