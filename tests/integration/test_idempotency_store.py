"""The Idempotency-Key store against a real Redis: an attempt replaces only its own record."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from oidc_common.errors import OAuthError
from registration_service.idempotency import Attempt, IdempotencyStore, Replay
from tests.conftest import SettingsFactory

KEY = "0f6c2b5e-4d8a-4d1e-9a53-7c1f0e2b9d44"


@pytest.fixture
async def redis(settings_for: SettingsFactory) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings_for("registration").redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def store(settings_for: SettingsFactory, redis: Redis) -> IdempotencyStore:
    return IdempotencyStore(redis, settings_for("registration").redis_prefix)


async def test_an_attempt_that_outlived_its_record_cannot_overwrite_a_retry(
    redis: Redis, store: IdempotencyStore
) -> None:
    first = await store.begin("t1", KEY, "fp")
    assert isinstance(first, Attempt)
    # The first attempt's in-flight record expires; a retry begins with the same key.
    await redis.delete(store._redis_key("t1", KEY))
    retry = await store.begin("t1", KEY, "fp")
    assert isinstance(retry, Attempt) and retry.id != first.id

    # The first attempt finishes late: the retry's record is not its to replace.
    await store.complete("t1", KEY, first, "fp", 201, {"client_id": "first"})
    with pytest.raises(OAuthError) as still_running:
        await store.begin("t1", KEY, "fp")
    assert still_running.value.status == 409
    await store.abandon("t1", KEY, first)  # nor to remove
    with pytest.raises(OAuthError):
        await store.begin("t1", KEY, "fp")

    await store.complete("t1", KEY, retry, "fp", 201, {"client_id": "retry"})
    replay = await store.begin("t1", KEY, "fp")
    assert replay == Replay(201, {"client_id": "retry"})


async def test_a_failed_attempt_frees_the_key(store: IdempotencyStore) -> None:
    attempt = await store.begin("t1", KEY, "fp")
    assert isinstance(attempt, Attempt)
    await store.abandon("t1", KEY, attempt)
    assert isinstance(await store.begin("t1", KEY, "fp"), Attempt)
