"""The login throttle's three counters against a real Redis (issue 21, point 3): pairs and
addresses are blocked, an account under a distributed attack is slowed, never locked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from authorize_service.interaction.throttle import (
    ACCOUNT_CEILING,
    ACCOUNT_SLOWDOWN_SECONDS,
    MAX_FAILURES_PER_ADDRESS,
    MAX_FAILURES_PER_PAIR,
    WINDOW_SECONDS,
    LoginThrottle,
    Verdict,
)
from tests.support.backing import BackingServices

TENANT = "tenant-1"
EMAIL = "owner@example.com"


@pytest.fixture
async def throttle(backing: BackingServices) -> AsyncIterator[LoginThrottle]:
    redis = Redis.from_url(backing.redis_url)
    prefix = f"t_{uuid.uuid4().hex[:12]}:"
    try:
        yield LoginThrottle(redis, prefix)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_a_pair_is_blocked_and_other_addresses_are_not(throttle: LoginThrottle) -> None:
    for _ in range(MAX_FAILURES_PER_PAIR):
        assert await throttle.attempt(TENANT, EMAIL, "203.0.113.1") == Verdict()
    blocked = await throttle.attempt(TENANT, EMAIL, "203.0.113.1")
    assert blocked.blocked and 0 < blocked.retry_after <= WINDOW_SECONDS
    # The same account from another address; another account from the same address.
    assert await throttle.attempt(TENANT, EMAIL, "198.51.100.5") == Verdict()
    assert await throttle.attempt(TENANT, "other@example.com", "203.0.113.1") == Verdict()
    # Same email in another case or with spaces: the same account.
    assert (await throttle.attempt(TENANT, f" {EMAIL.upper()} ", "203.0.113.1")).blocked


async def test_a_success_resets_the_pair(throttle: LoginThrottle) -> None:
    for _ in range(MAX_FAILURES_PER_PAIR - 1):
        await throttle.attempt(TENANT, EMAIL, "203.0.113.2")
    await throttle.succeeded(TENANT, EMAIL, "203.0.113.2")
    for _ in range(MAX_FAILURES_PER_PAIR):
        assert not (await throttle.attempt(TENANT, EMAIL, "203.0.113.2")).blocked


async def test_an_address_trying_many_accounts_is_blocked(throttle: LoginThrottle) -> None:
    for n in range(MAX_FAILURES_PER_ADDRESS):
        assert not (await throttle.attempt(TENANT, f"user{n}@example.com", "2001:db8::1")).blocked
    # Another host of the same IPv6 /64 is the same address.
    assert (await throttle.attempt(TENANT, "fresh@example.com", "2001:db8::ffff")).blocked
    assert not (await throttle.attempt(TENANT, "fresh@example.com", "2001:db8:0:1::1")).blocked


async def test_an_account_over_its_ceiling_is_slowed_not_locked(throttle: LoginThrottle) -> None:
    # A distributed attack: one failure from each of many addresses.
    for n in range(ACCOUNT_CEILING):
        verdict = await throttle.attempt(TENANT, EMAIL, f"10.{n // 250}.{n % 250}.1")
        assert verdict == Verdict(), n
    owner = await throttle.attempt(TENANT, EMAIL, "198.51.100.5")
    assert not owner.blocked and owner.delay == ACCOUNT_SLOWDOWN_SECONDS
    assert (await throttle.attempt(TENANT, "other@example.com", "198.51.100.5")) == Verdict()
