"""A registration's admission: its rate-limit token and a place under the client cap, in
one Redis round trip.

Every registration attempt spends a token; one that is about to store a client also needs
a place under the cap. For those, one script takes the token and, only if it was granted,
reserves the place: half the Redis calls on the hot path. Attempts that store nothing (bad
body, bad metadata, an idempotent replay) spend only the token, so they never hold a place
a valid registration could have had. When no place could be had (cap reached, or no
counter yet) the registration takes the slow path of `ClientCap.reserve`, with eviction.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from .client_cap import RESERVE_LUA, ClientCap
from .rate_limit import TAKE_TOKEN_LUA, RateDecision, bucket_key

# KEYS[1] bucket; ARGV[1] capacity, ARGV[2] window seconds. Returns {allowed, retry_after_ms}.
_TAKE = (
    TAKE_TOKEN_LUA
    + """
local allowed, retry = take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {allowed, retry}
"""
)

# KEYS[1] bucket, KEYS[2] cap counter; ARGV[1] capacity, ARGV[2] window seconds, ARGV[3]
# cap. Returns {allowed, retry_after_ms, slot} with slot as in reserve_slot (0 if refused).
_ADMIT = (
    TAKE_TOKEN_LUA
    + RESERVE_LUA
    + """
local allowed, retry = take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if allowed == 0 then return {0, retry, 0} end
return {1, 0, reserve_slot(KEYS[2], tonumber(ARGV[3]))}
"""
)


@dataclass(frozen=True)
class Admission:
    rate: RateDecision
    slot_reserved: bool


class Admitter:
    def __init__(self, redis: Redis, prefix: str, cap: ClientCap) -> None:
        self._admit = redis.register_script(_ADMIT)
        self._take = redis.register_script(_TAKE)
        self._prefix = prefix
        self._cap = cap

    async def admit(
        self,
        scope: str,
        client: str,
        tenant_id: str,
        *,
        requests: int,
        window_seconds: int,
        max_clients: int,
    ) -> Admission:
        """The token and, if it was granted, a place under the cap."""
        result = await self._admit(
            keys=[bucket_key(self._prefix, scope, client), self._cap.key(tenant_id)],
            args=[requests, window_seconds, max_clients],
        )
        return Admission(RateDecision.from_script(result[0], result[1]), int(result[2]) == 1)

    async def take_token(
        self, scope: str, client: str, *, requests: int, window_seconds: int
    ) -> RateDecision:
        """The token only, for an attempt that will store no client."""
        result = await self._take(
            keys=[bucket_key(self._prefix, scope, client)], args=[requests, window_seconds]
        )
        return RateDecision.from_script(result[0], result[1])
