"""The per-tenant cap on dynamically registered clients, enforced atomically in Redis.

A counter per tenant is seeded from MongoDB when absent and then moved with every
registration and deletion, so the hot path needs no count query, and concurrent replicas
cannot overshoot the cap: a slot is reserved (atomically, if below the cap) before the
client is stored, and released if storing fails. The reaper drops the counter after each
pass so any drift (a crash between reserve and insert) is corrected from the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

# A Lua function, composed into scripts: a place below `cap` in the counter at `key`.
# Returns -1: no counter yet (seed it from the database), 0: full, 1: reserved.
RESERVE_LUA = """
local function reserve_slot(key, cap)
  local current = redis.call('GET', key)
  if not current then return -1 end
  if tonumber(current) >= cap then return 0 end
  redis.call('INCR', key)
  return 1
end
"""

# KEYS[1] counter; ARGV[1] cap.
_RESERVE = RESERVE_LUA + "return reserve_slot(KEYS[1], tonumber(ARGV[1]))\n"

# KEYS[1] counter; ARGV[1] slots. A missing counter stays missing (re-seeded on next use).
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('DECRBY', KEYS[1], ARGV[1])
end
return 0
"""

COUNTER_TTL_SECONDS = 3600


class ClientCap:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)

    def key(self, tenant_id: str) -> str:
        return f"{self._prefix}dcr-clients:{tenant_id}"

    async def reserve(self, tenant_id: str, cap: int, count: Callable[[], Awaitable[int]]) -> bool:
        """Take a slot below `cap`; `count` seeds the counter from the database if needed."""
        key = self.key(tenant_id)
        for _ in range(3):
            result = int(await self._reserve(keys=[key], args=[cap]))
            if result >= 0:
                return result == 1
            await self._redis.set(key, await count(), nx=True, ex=COUNTER_TTL_SECONDS)
        return False

    async def release(self, tenant_id: str, slots: int = 1) -> None:
        await self._release(keys=[self.key(tenant_id)], args=[slots])

    async def forget(self, tenant_id: str) -> None:
        await self._redis.delete(self.key(tenant_id))
