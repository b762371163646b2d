"""Revoked grants: access tokens of a sign-in whose code was replayed or whose refresh token
was reused stop working at this provider's `/userinfo`.

Access tokens are JWTs verified by APIs on their own, so revocation reaches what this
provider serves; their short lifetime bounds the rest. An access token's `jti` starts with
its grant id (`{grant_id}.{random}`), which is what is looked up here.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ..redis_store import RedisStore


class RevokedGrants(RedisStore):
    namespace = "revoked-grant"

    def __init__(self, redis: Redis, prefix: str, ttl: int) -> None:
        super().__init__(redis, prefix)
        self._ttl = ttl  # as long as an access token of the grant can live

    async def revoke(self, grant_id: str) -> None:
        await self._redis.set(self.key(grant_id), "1", ex=self._ttl)

    async def is_revoked_grant(self, grant_id: str) -> bool:
        return bool(await self._redis.exists(self.key(grant_id)))

    async def is_revoked(self, jti: object) -> bool:
        """Whether the access token with this `jti` belongs to a revoked grant."""
        if not isinstance(jti, str) or "." not in jti:
            return False
        return await self.is_revoked_grant(jti.split(".", 1)[0])
