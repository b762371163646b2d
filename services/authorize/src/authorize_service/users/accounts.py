"""Creating a user account: the checks and steps the Management API and the admin CLI share."""

from __future__ import annotations

from oidc_common.text import UNSAFE_TEXT

from .emails import normalize_email
from .password_policy import check_password
from .passwords import Passwords
from .repository import DuplicateEmailError, User, Users

MAX_NAME_LENGTH = 300  # Auth0's limit on a user's `name`


class InvalidNameError(ValueError):
    """The display name is empty, too long or holds control characters."""


def check_name(name: str) -> None:
    """Raise `InvalidNameError` unless `name` is 1..300 characters of text without controls."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH or UNSAFE_TEXT.search(name) or not name.strip():
        raise InvalidNameError(
            f"Payload validation error: name must be 1 to {MAX_NAME_LENGTH} characters of text."
        )


async def create_user(
    users: Users,
    hasher: Passwords,
    tenant_id: str,
    email: str,
    password: str,
    *,
    email_verified: bool = False,
    name: str | None = None,
) -> User:
    """Create a `Username-Password-Authentication` user with an Argon2id hash of `password`.

    Raises `InvalidEmailError`, `WeakPasswordError` (the password rule, `check_password`),
    `InvalidNameError`, or `DuplicateEmailError` when the tenant has the email in any case.
    Nothing is hashed for a request refused by these checks."""
    email = normalize_email(email)
    check_password(password, email)
    if name is not None:
        check_name(name)
    # Cheap early answer for a taken email (no hashing); the unique index is the real guard.
    if await users.find_by_email(tenant_id, email) is not None:
        raise DuplicateEmailError(f"a user with email {email!r} already exists")
    password_hash = await hasher.hash(password)
    return await users.create(
        tenant_id, email, password_hash, email_verified=email_verified, name=name
    )
