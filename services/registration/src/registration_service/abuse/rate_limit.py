"""Token-bucket rate limit per tenant and client IP, shared by all replicas through Redis.

The bucket holds `capacity` tokens and refills at `capacity / window` per second; each
registration attempt takes one. The Lua script runs atomically in Redis and uses Redis's
clock, so replicas with skewed clocks agree.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS[1] bucket; ARGV[1] capacity, ARGV[2] window seconds. Returns {allowed, retry_after_ms}.
_BUCKET = """
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local rate = capacity / (window * 1000)
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + (now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], window * 2000)
return {allowed, retry}
"""


def client_key(ip: str) -> str:
    """The bucket of a client address: the address for IPv4, its /64 for IPv6 (one host
    holds a whole /64, so per-address buckets would be free to multiply)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._script = redis.register_script(_BUCKET)
        self._prefix = prefix

    async def take(self, scope: str, key: str, capacity: int, window: int) -> RateDecision:
        result = await self._script(
            keys=[f"{self._prefix}ratelimit:{scope}:{key}"], args=[capacity, window]
        )
        allowed, retry_ms = int(result[0]), int(result[1])
        return RateDecision(bool(allowed), max(1, math.ceil(retry_ms / 1000)) if not allowed else 0)
