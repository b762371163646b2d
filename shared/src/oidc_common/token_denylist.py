"""Access tokens revoked one by one (RFC 7009), by `jti`, until they expire: the one key
format that the authorize service writes (`/oauth/revoke`) and every service that verifies
an access token itself reads (the Management API of all three services, `/userinfo`,
introspection), in the Redis they share.
"""

from __future__ import annotations

from redis.asyncio import Redis

__all__ = ["denied", "denylist_key"]


def denylist_key(prefix: str, jti: str) -> str:
    """`{REDIS_PREFIX}revoked-grant:jti:{jti}` (the namespace of the authorize service's
    revocation markers, `tokens.revocations`)."""
    return f"{prefix}revoked-grant:jti:{jti}"


async def denied(redis: Redis, prefix: str, jti: object) -> bool:
    """Whether the access token with this `jti` was revoked."""
    return isinstance(jti, str) and bool(await redis.exists(denylist_key(prefix, jti)))
