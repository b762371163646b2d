"""What was revoked before it expired, for the checks this provider makes itself (`/userinfo`,
`/oauth/introspect`, refresh-token issuance).

Access tokens are JWTs verified by APIs on their own, so revocation reaches what this provider
serves (and every API that introspects); their short lifetime bounds the rest. Three kinds of
marker in Redis, each kept as long as the longest token it guards:

- a revoked sign-in (`grant_id`: a code that was replayed, a refresh token reused or revoked):
  every access token whose `jti` starts with `{grant_id}.`, and its refresh-token family;
- one revoked access token (RFC 7009), by `jti`, until its `exp`;
- a user's access taken back from a client (a grant deleted, the connected-apps page, the user
  or the client deleted): every access token of that user and client issued at or before that
  second (`iat`).

`is_revoked(claims)` is the one rule that combines them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from oidc_common.token_denylist import denylist_key

from ..redis_store import RedisStore


class Revocations(RedisStore):
    # The namespace the sign-in markers always had: markers written before an upgrade still hold.
    namespace = "revoked-grant"

    def __init__(self, redis: Redis, prefix: str, ttl: int) -> None:
        super().__init__(redis, prefix)
        self._ttl = ttl  # as long as a token a marker guards can live, seconds

    async def revoke(self, grant_id: str) -> None:
        """Revoke a sign-in (its access tokens and refresh-token family)."""
        await self._redis.set(self.key(grant_id), "1", ex=self._ttl)

    async def is_revoked_grant(self, grant_id: str) -> bool:
        return bool(await self._redis.exists(self.key(grant_id)))

    async def revoke_access_token(self, jti: str, expires_at: int) -> None:
        """Deny one access token until it expires (`expires_at`: its `exp`, seconds)."""
        ttl = expires_at - int(time.time()) + 60  # the verifiers' leeway, and then some
        if ttl > 0:
            await self._redis.set(denylist_key(self._prefix, jti), "1", ex=min(ttl, self._ttl))

    def _access_key(self, tenant_id: str, user_id: str, client_id: str) -> str:
        return self.key("access", tenant_id, user_id, client_id)

    async def revoke_access(self, tenant_id: str, user_id: str, client_id: str) -> None:
        """Every access token of `user_id` for `client_id` issued until now stops working."""
        await self._redis.set(
            self._access_key(tenant_id, user_id, client_id), str(int(time.time())), ex=self._ttl
        )

    async def taken_back_since(
        self, tenant_id: str, user_id: str, client_id: str, issued_at: int | None
    ) -> bool:
        """Whether the user's access to the client was taken back at or after `issued_at`
        (seconds; None: unknown, so any taking back counts)."""
        revoked_at = await self._redis.get(self._access_key(tenant_id, user_id, client_id))
        return revoked_at is not None and (issued_at is None or int(revoked_at) >= issued_at)

    async def issuable_at(self, tenant_id: str, user_id: str, client_id: str) -> int:
        """The `iat` for a new access token of `user_id` at `client_id`: now, or, in the very
        second the user's access to the client was taken back, once that second is over (a
        marker is whole seconds, like `iat`: a token stamped in that second would read as
        revoked). Waits at most a second, and only right after such a revocation."""
        now = time.time()
        revoked_at = await self._redis.get(self._access_key(tenant_id, user_id, client_id))
        if revoked_at is not None and int(revoked_at) >= int(now):
            await asyncio.sleep(int(revoked_at) + 1 - now)
            return int(revoked_at) + 1
        return int(now)

    async def is_revoked(self, tenant_id: str, claims: Mapping[str, Any]) -> bool:
        """Whether the access token with these (verified) claims was revoked, by any marker."""
        jti, sub = claims.get("jti"), claims.get("sub")
        client_id = claims.get("client_id", claims.get("azp"))
        keys = []
        if isinstance(jti, str):
            keys.append(denylist_key(self._prefix, jti))
            if "." in jti:
                keys.append(self.key(jti.split(".", 1)[0]))
        access = (
            self._access_key(tenant_id, sub, client_id)
            if isinstance(sub, str) and isinstance(client_id, str)
            else None
        )
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        if access is not None:
            pipe.get(access)
        answers = await pipe.execute()
        if any(answers[: len(keys)]):
            return True
        revoked_at = answers[-1] if access is not None else None
        issued_at = claims.get("iat")
        return revoked_at is not None and (
            not isinstance(issued_at, int) or issued_at <= int(revoked_at)
        )
