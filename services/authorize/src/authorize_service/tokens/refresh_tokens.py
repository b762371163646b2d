"""Refresh tokens (RFC 6749 §6), rotated on every use (RFC 9700 §4.14.2).

Stored in MongoDB `refresh_tokens` as SHA-256 hashes (`_id`), one family per sign-in (the
`family_id` is the grant id of the authorization code that started it). Using a token marks
it used and issues its successor; presenting a used token again means it leaked, and the
whole family is revoked, successors included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from oidc_common.mongo import Collections, Document, insert_idempotent, retry_once

from ..redis_store import RedisStore

REFRESH_TOKEN_TTL = dt.timedelta(days=30)
_MAX_TOKEN = 128


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class RefreshGrant:
    tenant_id: str
    client_id: str
    user_id: str
    family_id: str
    scopes: list[str]
    audience: str | None
    auth_time: int


@dataclass(frozen=True)
class Rotation:
    grant: RefreshGrant | None  # None: unknown, expired, revoked or reused
    reused_family: str | None = None  # the family revoked because a used token came back


@dataclass(frozen=True)
class RefreshTokenState:
    """A stored refresh token as introspection and revocation see it, without spending it."""

    grant: RefreshGrant
    issued_at: dt.datetime
    expires_at: dt.datetime
    active: bool  # neither used, revoked nor expired


class RefreshTokens(RedisStore):
    """Tokens in MongoDB; each one's single use claimed in Redis (SET NX), which is atomic
    where FerretDB's conditional updates are not."""

    namespace = "refresh-used"

    def __init__(self, db: AsyncDatabase[Document], redis: Redis, prefix: str) -> None:
        super().__init__(redis, prefix)
        self._tokens = db[Collections.REFRESH_TOKENS]

    async def issue(self, grant: RefreshGrant) -> tuple[str, dt.datetime]:
        """A new refresh token of `grant`'s family and when it expires."""
        token = secrets.token_urlsafe(32)
        now = dt.datetime.now(dt.UTC)
        expires_at = now + REFRESH_TOKEN_TTL
        # The `_id` is the hash of a fresh random token: safe to insert again (see
        # insert_idempotent) after the database restarted under the first attempt.
        await insert_idempotent(
            self._tokens,
            {
                "_id": _hash(token),
                "tenant_id": grant.tenant_id,
                "client_id": grant.client_id,
                "user_id": grant.user_id,
                "family_id": grant.family_id,
                "scopes": grant.scopes,
                "audience": grant.audience,
                "auth_time": grant.auth_time,
                "created_at": now,
                "expires_at": expires_at,
                "used_at": None,
                "revoked_at": None,
            },
        )
        return token, expires_at

    async def use(
        self,
        token: str,
        tenant_id: str,
        client_id: str,
        check: Callable[[RefreshGrant], None] = lambda grant: None,
    ) -> Rotation:
        """Mark `token` used, once; a second use revokes its family (`reused_family`).

        `check` sees the grant before the token is spent and may raise (a request that names
        a wider scope or another resource is refused without costing the client its token).
        """
        if len(token) > _MAX_TOKEN or not token.isascii():
            return Rotation(None)
        key = {"_id": _hash(token), "tenant_id": tenant_id, "client_id": client_id}
        doc = await self._tokens.find_one(key)
        if doc is None:
            return Rotation(None)
        family_id = str(doc["family_id"])
        if doc.get("used_at") is not None:
            await self.revoke_family(family_id)
            return Rotation(None, family_id)
        if doc.get("revoked_at") is not None or doc["expires_at"] <= dt.datetime.now(dt.UTC):
            return Rotation(None)
        grant = RefreshGrant(
            tenant_id=tenant_id,
            client_id=client_id,
            user_id=str(doc["user_id"]),
            family_id=family_id,
            scopes=[str(scope) for scope in doc.get("scopes") or ()],
            audience=doc.get("audience"),
            auth_time=int(doc["auth_time"]),
        )
        check(grant)
        ttl = max(1, int((doc["expires_at"] - dt.datetime.now(dt.UTC)).total_seconds()))
        if not await self._redis.set(self.key(key["_id"]), "1", nx=True, ex=ttl):
            await self.revoke_family(family_id)  # another request used it in between: a replay
            return Rotation(None, family_id)
        used_at = dt.datetime.now(dt.UTC)
        await retry_once(lambda: self._tokens.update_one(key, {"$set": {"used_at": used_at}}))
        return Rotation(grant)

    async def find(self, token: str, tenant_id: str, client_id: str) -> RefreshTokenState | None:
        """The refresh token `token` of `client_id` in `tenant_id`, spent or not; None when it
        is unknown or another client's (RFC 7009 §2.1, RFC 7662 §2.2: nothing is said about
        a token the caller does not hold)."""
        if len(token) > _MAX_TOKEN or not token.isascii():
            return None
        doc = await self._tokens.find_one(
            {"_id": _hash(token), "tenant_id": tenant_id, "client_id": client_id}
        )
        if doc is None:
            return None
        grant = RefreshGrant(
            tenant_id=tenant_id,
            client_id=client_id,
            user_id=str(doc["user_id"]),
            family_id=str(doc["family_id"]),
            scopes=[str(scope) for scope in doc.get("scopes") or ()],
            audience=doc.get("audience"),
            auth_time=int(doc["auth_time"]),
        )
        expires_at: dt.datetime = doc["expires_at"]
        active = (
            doc.get("used_at") is None
            and doc.get("revoked_at") is None
            and expires_at > dt.datetime.now(dt.UTC)
        )
        return RefreshTokenState(grant, doc["created_at"], expires_at, active)

    async def revoke_family(self, family_id: str) -> None:
        # Idempotent: a second run finds nothing left unrevoked.
        revoked_at = dt.datetime.now(dt.UTC)
        await retry_once(
            lambda: self._tokens.update_many(
                {"family_id": family_id, "revoked_at": None}, {"$set": {"revoked_at": revoked_at}}
            )
        )

    async def revoke_consent(
        self,
        tenant_id: str,
        user_id: str,
        client_id: str,
        audiences: Iterable[str | None] | None = None,
    ) -> int:
        """Revoke the refresh tokens of `user_id` held by `client_id`: those for `audiences`
        (None in it: sign-in alone), or all of them when `audiences` is None. Returns how
        many were revoked."""
        query: Document = {
            "tenant_id": tenant_id,
            "user_id": user_id,
            "client_id": client_id,
            "revoked_at": None,
        }
        if audiences is not None:
            query["audience"] = {"$in": list(audiences)}
        revoked_at = dt.datetime.now(dt.UTC)
        result = await retry_once(
            lambda: self._tokens.update_many(query, {"$set": {"revoked_at": revoked_at}})
        )
        return result.modified_count

    async def revoke_client(self, tenant_id: str, client_id: str) -> None:
        """Revoke every refresh token a client holds (the client was deleted)."""
        revoked_at = dt.datetime.now(dt.UTC)
        await retry_once(
            lambda: self._tokens.update_many(
                {"tenant_id": tenant_id, "client_id": client_id, "revoked_at": None},
                {"$set": {"revoked_at": revoked_at}},
            )
        )

    async def revoke_user(self, tenant_id: str, user_id: str) -> None:
        """Revoke every refresh token of a user (the user was deleted)."""
        revoked_at = dt.datetime.now(dt.UTC)
        await retry_once(
            lambda: self._tokens.update_many(
                {"tenant_id": tenant_id, "user_id": user_id, "revoked_at": None},
                {"$set": {"revoked_at": revoked_at}},
            )
        )
