"""Argon2id password hashing (RFC 9106) with the cost parameters from configuration.

Hashing is deliberately expensive (64 MiB and about 0.1 s by default), so it runs in worker
threads (argon2-cffi releases the GIL) and at most `max_concurrent` at a time: the event loop
keeps serving, and a burst of logins cannot ask for more memory than that many hashes use.
"""

from __future__ import annotations

import asyncio
import os
import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from oidc_common.config import Settings


def _secret_bytes(password: str) -> bytes:
    # "surrogatepass": a JSON body may carry a lone surrogate; it must hash (and fail to
    # match) like any other input rather than raise.
    return password.encode("utf-8", "surrogatepass")


class Passwords:
    """Hashes and verifies user passwords with Argon2id at the configured cost."""

    def __init__(
        self,
        time_cost: int,
        memory_cost: int,
        parallelism: int,
        *,
        max_concurrent: int | None = None,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        # More concurrent hashes than cores only adds memory, not throughput.
        self._slots = asyncio.Semaphore(max_concurrent or os.cpu_count() or 1)
        self._dummy_hash: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        """A hasher with `ARGON2_TIME_COST`, `ARGON2_MEMORY_COST` and `ARGON2_PARALLELISM`."""
        return cls(
            settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism
        )

    @property
    def parameters(self) -> argon2.Parameters:
        """The parameters new hashes are made with (type, version, costs, lengths)."""
        hasher = self._hasher
        return argon2.Parameters(
            type=hasher.type,
            version=argon2.low_level.ARGON2_VERSION,
            salt_len=hasher.salt_len,
            hash_len=hasher.hash_len,
            time_cost=hasher.time_cost,
            memory_cost=hasher.memory_cost,
            parallelism=hasher.parallelism,
        )

    async def hash(self, password: str) -> str:
        """A new PHC-format hash (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `password`,
        with a fresh random salt."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, _secret_bytes(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches `password_hash`; False on a mismatch and for a stored
        value that is not a valid Argon2 hash (never raises for either)."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, _secret_bytes(password))

    def _verify(self, password_hash: str, secret: bytes) -> bool:
        try:
            return self._hasher.verify(password_hash, secret)
        except (VerificationError, InvalidHashError):  # VerifyMismatchError is a subclass
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when `password_hash` was not made with the configured parameters (or is not an
        Argon2id hash at all), so the password should be hashed again once it is known."""
        try:
            # Compares every parameter, the type (argon2i/d/id) and version included.
            return self._hasher.check_needs_rehash(password_hash)
        except ValueError:  # InvalidHashError: not a PHC string argon2 can read
            return True

    async def verify_dummy(self, password: str) -> None:
        """Spend what verifying `password` against a real hash costs, and match nothing: for
        an unknown account, so that it answers no faster than a wrong password."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(24))
        await self.verify(self._dummy_hash, password)
