"""A registration's admission: its rate-limit token and a place under the client cap.

Every registration attempt spends a token; one that is about to store a client also needs
a place under the cap. For those, the script takes the token and, only if it was granted,
reserves the place. Attempts that store nothing (bad body, bad metadata, an idempotent
replay) spend only the token, so they never hold a place a valid registration could have
had. When no place could be had (cap reached, or no counter yet) the registration takes the
slow path of `ClientCap.reserve`, with eviction.

A registration granted its place also has its `client.registered` event journaled by the
same script, tentatively (`events/client_events.py`): the 201 then waits for no other round
trip to announce the client.

Concurrent registrations share one script call (`oidc_common.group_commit`): the script
decides each of them in turn, atomically, exactly as separate calls would, so the limit and
the cap stay exact across replicas; redis-py's per-call CPU (framing, pool, futures) is paid
once per batch rather than once per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from oidc_common.group_commit import GroupCommit
from oidc_common.redis_client import NOW_MS_LUA

from ..events.client_events import JOURNAL_ADD_LUA
from .client_cap import RESERVE_LUA, ClientCap
from .rate_limit import TAKE_TOKEN_LUA, RateDecision, bucket_key

# KEYS[1] is the client event journal. Per decision i (1-based): KEYS[2i] its bucket,
# KEYS[2i+1] its cap counter; ARGV[4i-3] the bucket's capacity, ARGV[4i-2] its window in
# seconds, ARGV[4i-1] the cap, or -1 for a token alone, ARGV[4i] the journal entry to add
# once a place is reserved ('' for none).
# Returns {allowed, retry_after_ms, slot} per decision, flattened, with slot as
# `reserve_slot` returns it (0 when refused or not asked for).
_ADMIT = (
    NOW_MS_LUA
    + TAKE_TOKEN_LUA
    + RESERVE_LUA
    + JOURNAL_ADD_LUA
    + """
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local cap = tonumber(ARGV[4 * i - 1])
  local allowed, retry = take_token(KEYS[2 * i], tonumber(ARGV[4 * i - 3]),
                                    tonumber(ARGV[4 * i - 2]))
  local slot = 0
  if allowed == 1 and cap >= 0 then slot = reserve_slot(KEYS[2 * i + 1], cap) end
  if slot == 1 and ARGV[4 * i] ~= '' then journal_add(KEYS[1], ARGV[4 * i]) end
  out[3 * i - 2] = allowed
  out[3 * i - 1] = retry
  out[3 * i] = slot
end
return out
"""
)

TOKEN_ONLY = -1


@dataclass(frozen=True)
class Admission:
    rate: RateDecision
    slot_reserved: bool


@dataclass(frozen=True)
class _Ask:
    bucket: str
    counter: str
    requests: int
    window_seconds: int
    max_clients: int  # TOKEN_ONLY: the token alone
    journal_entry: str  # '' for none


class Admitter:
    def __init__(
        self, redis: Redis, prefix: str, cap: ClientCap, journal_key: str, max_batch: int = 64
    ) -> None:
        self._script = redis.register_script(_ADMIT)
        self._journal_key = journal_key
        self._prefix = prefix
        self._cap = cap
        self._commit: GroupCommit[_Ask, Admission] = GroupCommit(
            self._decide,
            max_batch=max_batch,
            # Redis unreachable: what queued behind the failed call answers 503 at once
            # instead of each waiting out the same timeout.
            sheds_queue=lambda exc: isinstance(exc, RedisConnectionError | RedisTimeoutError),
        )

    async def admit(
        self,
        scope: str,
        client: str,
        tenant_id: str,
        *,
        requests: int,
        window_seconds: int,
        max_clients: int,
        journal_entry: str,
    ) -> Admission:
        """The token from the bucket of (`scope`, `client`) holding `requests` per
        `window_seconds` and, if it was granted, a place below `max_clients` in the tenant's
        counter, with `journal_entry` journaled when the place is reserved
        (`Admission.slot_reserved`). Raises redis-py's error when Redis cannot be reached."""
        bucket = bucket_key(self._prefix, scope, client)
        return await self._commit.submit(
            _Ask(
                bucket,
                self._cap.key(tenant_id),
                requests,
                window_seconds,
                max_clients,
                journal_entry,
            )
        )

    async def take_token(
        self, scope: str, client: str, *, requests: int, window_seconds: int
    ) -> RateDecision:
        """The token only, for an attempt that will store no client."""
        bucket = bucket_key(self._prefix, scope, client)
        admission = await self._commit.submit(
            _Ask(bucket, bucket, requests, window_seconds, TOKEN_ONLY, "")
        )
        return admission.rate

    async def _decide(self, asks: list[_Ask]) -> Sequence[Admission]:
        keys: list[str] = [self._journal_key]
        args: list[int | str] = []
        for ask in asks:
            keys += (ask.bucket, ask.counter)
            args += (ask.requests, ask.window_seconds, ask.max_clients, ask.journal_entry)
        flat = await self._script(keys=keys, args=args)
        return [
            Admission(RateDecision.from_script(flat[i], flat[i + 1]), int(flat[i + 2]) == 1)
            for i in range(0, 3 * len(asks), 3)
        ]
