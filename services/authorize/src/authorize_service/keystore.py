"""Per-tenant signing keys: the current private key to sign with, the public keys to publish.

Documents of `signing_keys` have a `status`: `current` signs new tokens, `previous` is no
longer used for signing but stays published until its `publish_until` (so tokens it signed
keep verifying until they expire), `retired` is neither. Keys are cached in-process for a
short time so signing does not read MongoDB on every request.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.config import Settings
from oidc_common.mongo import Collections, Document
from oidc_common.signing_keys import SIGNING_ALG, SigningKey, open_private_key

CURRENT = "current"
PREVIOUS = "previous"
RETIRED = "retired"

# Signing may use a key read up to a minute ago; rotation leaves the old key published for
# ACCESS_TOKEN_TTL + 5 min (key_rotation.py), which covers tokens signed in that minute.
SIGNING_CACHE_SECONDS = 60.0
# The JWKS is re-read more often so that a key another replica already signs with is
# published quickly; verifiers re-fetch the JWKS on an unknown `kid` (OIDC Core §10.1.1).
JWKS_CACHE_SECONDS = 5.0

# RFC 7517 §4 and RFC 7518 §6.3.1: the members of a public RSA signing key, nothing else.
PUBLIC_JWK_MEMBERS = ("kty", "n", "e", "kid", "use", "alg")


class NoSigningKeyError(RuntimeError):
    """The tenant has no current signing key (a bootstrap or rotation went wrong)."""


@dataclass(frozen=True)
class StoredKey:
    kid: str
    status: str
    created_at: dt.datetime
    public_jwk: dict[str, Any]
    sealed_private_key: str | None
    publish_until: dt.datetime | None

    @classmethod
    def from_document(cls, doc: Document) -> StoredKey:
        return cls(
            kid=str(doc["kid"]),
            status=str(doc.get("status", "")),
            created_at=doc.get("created_at") or dt.datetime.min.replace(tzinfo=dt.UTC),
            public_jwk=dict(doc.get("public_jwk") or {}),
            sealed_private_key=doc.get("sealed_private_key"),
            publish_until=doc.get("publish_until"),
        )

    def is_published(self, now: dt.datetime) -> bool:
        if self.status == CURRENT:
            return True
        return (
            self.status == PREVIOUS and self.publish_until is not None and self.publish_until > now
        )

    def public_member_jwk(self) -> dict[str, Any]:
        """The stored JWK reduced to its public members, whatever else the document holds."""
        stored = self.public_jwk
        jwk = {name: stored[name] for name in PUBLIC_JWK_MEMBERS if name in stored}
        jwk.update({"kid": self.kid, "use": "sig", "alg": SIGNING_ALG})
        return jwk


def newest_current(keys: Iterable[StoredKey]) -> StoredKey | None:
    """The key to sign with. Rotation inserts the new current key before it demotes the old
    one, so two keys may briefly both be current: the newest wins."""
    current = [key for key in keys if key.status == CURRENT and key.sealed_private_key]
    return max(current, key=lambda key: (key.created_at, key.kid), default=None)


@dataclass
class _Entry:
    loaded_at: float
    keys: tuple[StoredKey, ...]
    signing: SigningKey | None = None


class KeyStore:
    """Reads a tenant's keys from MongoDB, caching them per tenant in-process."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        settings: Settings,
        *,
        signing_cache_seconds: float = SIGNING_CACHE_SECONDS,
        jwks_cache_seconds: float = JWKS_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._collection = db[Collections.SIGNING_KEYS]
        self._settings = settings
        self._signing_ttl = signing_cache_seconds
        self._jwks_ttl = jwks_cache_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    async def _entry(self, tenant_id: str, max_age: float) -> _Entry:
        now = self._clock()
        entry = self._entries.get(tenant_id)
        if entry is not None and now - entry.loaded_at < max_age:
            return entry
        cursor = self._collection.find(
            {"tenant_id": tenant_id, "status": {"$in": [CURRENT, PREVIOUS]}}
        )
        keys = tuple([StoredKey.from_document(doc) async for doc in cursor])
        fresh = _Entry(loaded_at=now, keys=keys)
        # Keep the opened private key when the signing key did not change.
        newest = newest_current(keys)
        if entry is not None and entry.signing is not None and newest is not None:
            fresh.signing = entry.signing if entry.signing.kid == newest.kid else None
        self._entries[tenant_id] = fresh
        return fresh

    async def signing_key(self, tenant_id: str) -> SigningKey:
        """The tenant's current private key (raises NoSigningKeyError if it has none)."""
        entry = await self._entry(tenant_id, self._signing_ttl)
        if entry.signing is None:
            newest = newest_current(entry.keys)
            if newest is None or newest.sealed_private_key is None:
                raise NoSigningKeyError(f"tenant {tenant_id} has no current signing key")
            entry.signing = open_private_key(
                newest.kid, newest.sealed_private_key, self._settings.require_kek()
            )
        return entry.signing

    async def public_jwks(self, tenant_id: str) -> list[dict[str, Any]]:
        """The public JWKs to publish: current keys, and previous keys still in their window."""
        entry = await self._entry(tenant_id, self._jwks_ttl)
        now = dt.datetime.now(dt.UTC)
        published = [
            key for key in entry.keys if key.is_published(now) and {"n", "e"} <= set(key.public_jwk)
        ]
        published.sort(key=lambda key: (key.status != CURRENT, -key.created_at.timestamp()))
        return [key.public_member_jwk() for key in published]

    def forget(self, tenant_id: str) -> None:
        """Drop the cached keys of a tenant (the next read goes to MongoDB)."""
        self._entries.pop(tenant_id, None)
