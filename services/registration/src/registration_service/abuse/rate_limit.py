"""Token-bucket rate limit per tenant and client IP, shared by all replicas through Redis.

The bucket holds `capacity` tokens and refills at `capacity / window` per second; each
registration attempt takes one. The Lua runs atomically in Redis (inside the admission
script, `admission.py`) and uses Redis's clock, so replicas with skewed clocks agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A Lua function, composed into scripts after `NOW_MS_LUA`: takes one token from the bucket
# at `key`. Returns allowed (1/0) and, when refused, the milliseconds until a token is back.
TAKE_TOKEN_LUA = """
local function take_token(key, capacity, window)
  local rate = capacity / (window * 1000)
  local now = now_ms()
  local state = redis.call('HMGET', key, 'tokens', 'ts')
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
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, window * 2000)
  return allowed, retry
end
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int

    @classmethod
    def from_script(cls, allowed: object, retry_ms: object) -> RateDecision:
        if int(str(allowed)):
            return cls(True, 0)
        return cls(False, max(1, math.ceil(int(str(retry_ms)) / 1000)))


def bucket_key(prefix: str, scope: str, client: str) -> str:
    return f"{prefix}ratelimit:{scope}:{client}"
