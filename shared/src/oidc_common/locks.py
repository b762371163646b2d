"""A short mutual-exclusion lock in Redis, for read-modify-write cycles on one document.

FerretDB (the embedded MongoDB-compatible test database) does not apply a conditional
update atomically: two `update_one({"_id": x, "version": n}, ...)` racing can both report a
match. Real MongoDB does. Code that must be correct on both serialises such cycles with this
lock (SET NX PX with a random token; released only by its holder, by compare-and-delete).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LockBusy(RuntimeError):
    """The lock stayed taken for longer than the caller was willing to wait."""


@asynccontextmanager
async def redis_lock(
    redis: Redis, key: str, ttl_ms: int = 5000, wait_seconds: float = 3.0
) -> AsyncIterator[None]:
    token = secrets.token_hex(16)
    deadline = time.monotonic() + wait_seconds
    delay = 0.002
    while not await redis.set(key, token, nx=True, px=ttl_ms):
        if time.monotonic() >= deadline:
            raise LockBusy(key)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    try:
        yield
    finally:
        await redis.eval(_RELEASE, 1, key, token)


async def claim_once(redis: Redis, key: str, ttl_seconds: int = 60) -> bool:
    """True for exactly one caller per key and TTL: who gets to do a one-off action."""
    return bool(await redis.set(key, "1", nx=True, ex=ttl_seconds))
