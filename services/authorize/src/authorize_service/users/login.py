"""Checking a user's email and password, for the login page."""

from __future__ import annotations

import dataclasses
import logging

from pymongo.errors import PyMongoError

from .passwords import Passwords
from .repository import User, Users

log = logging.getLogger(__name__)


async def authenticate_user(
    users: Users, hasher: Passwords, tenant_id: str, email: str, password: str
) -> User | None:
    """The tenant's user with `email` (case-insensitive) when `password` is theirs, else None.

    An unknown email costs one Argon2 verification against a dummy hash, as a wrong password
    does, so response times do not tell which accounts exist. After a successful check, a hash
    made with other parameters than the configured ones is replaced by a new hash (the only
    moment the password is known); failing to store it does not fail the login.
    Backing-service errors of the lookup propagate (the caller answers 503)."""
    user = await users.find_by_email(tenant_id, email)
    if user is None:
        await hasher.verify_dummy(password)
        return None
    if not await hasher.verify(user.password_hash, password):
        return None
    if hasher.needs_rehash(user.password_hash):
        new_hash = await hasher.hash(password)
        try:
            stored = await users.replace_password_hash(
                tenant_id, user.user_id, new_hash, expected_hash=user.password_hash
            )
        except PyMongoError as exc:
            log.warning(
                "password rehash not stored",
                extra={"tenant_id": tenant_id, "user_id": user.user_id, "error": str(exc)},
            )
        else:
            if stored:
                user = dataclasses.replace(user, password_hash=new_hash)
    return user
