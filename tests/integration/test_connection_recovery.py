"""The first requests after a backing service restarted quickly succeed (issue 11, item 7).

A quick restart leaves every idle pooled connection dead without anything noticing (the
issue's "every pooled connection fails once"): the first command on each fails. Redis
commands are retried once on a fresh connection; MongoDB writes that are idempotent are run
again, and must count once even when the first attempt was applied before its reply was lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from oidc_common.mongo import Collections, open_client
from registration_service.clients.batching import InsertBatcher
from tenant_settings_service.repository import SettingsRepository
from tests.conftest import SettingsFactory
from tests.support.proxy import CuttableProxy
from tests.support.registration import dcr_stack
from tests.support.services import with_overrides
from tests.support.tenants import bootstrap_tenant

BODY = {"client_name": "After restart", "redirect_uris": ["https://app.example/cb"]}


@pytest.fixture
async def proxies(settings_for: SettingsFactory) -> AsyncIterator[tuple[CuttableProxy, ...]]:
    base = settings_for("registration")
    mongo, redis = CuttableProxy.for_url(base.mongodb_url), CuttableProxy.for_url(base.redis_url)
    await mongo.start()
    await redis.start()
    try:
        yield mongo, redis
    finally:
        await mongo.close()
        await redis.close()


async def test_first_requests_after_a_quick_restart_succeed(
    settings_for: SettingsFactory, proxies: tuple[CuttableProxy, CuttableProxy]
) -> None:
    mongo, redis = proxies

    def through_proxies(service: str) -> Any:
        settings = settings_for(service)
        return with_overrides(
            settings,
            mongodb_url=mongo.url(settings.mongodb_url) + "?directConnection=true",
            redis_url=redis.url(settings.redis_url),
        )

    async with dcr_stack(
        through_proxies("registration"), through_proxies("tenant-settings")
    ) as dcr:
        await dcr.set_registration(True)
        for _ in range(3):  # connections in both pools
            assert (await dcr.register(BODY))[0] == 201
        # Both restart while no request is in flight: every pooled connection is now dead.
        for proxy in (mongo, redis):
            await proxy.cut()
            await proxy.restore()
        # The registration's first database operation is the insert, its first Redis
        # command the rate limit: both meet a dead connection and are run again.
        status, body, _ = await dcr.register(BODY)
        assert status == 201, body
        for proxy in (mongo, redis):
            await proxy.cut()
            await proxy.restore()
        response = await dcr.settings_client.patch(
            "/api/v2/tenants/settings",
            json={"friendly_name": "after the restart"},
            headers=dcr.management_headers,
        )
        assert response.status == 200, await response.text()
        client = open_client(dcr.settings.mongodb_url.split("?")[0])
    try:
        stored = await client[dcr.settings.mongodb_database][Collections.CLIENTS].count_documents(
            {"_id": body["client_id"]}
        )
    finally:
        await client.close()
    assert stored == 1


class _LosesFirstReply:
    """A collection whose first call of `method` is applied, then its reply is lost (the
    connection breaks), as when the database restarts right after a write."""

    def __init__(self, collection: Any, method: str) -> None:
        self._collection = collection
        self._method = method
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if name != self._method:
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            result = await attribute(*args, **kwargs)
            if self.calls == 1:
                raise AutoReconnect("connection closed")
            return result

        return call


async def test_a_client_batch_whose_reply_was_lost_is_stored_once(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("registration")
    client = open_client(settings.mongodb_url)
    try:
        collection = client[settings.mongodb_database][Collections.CLIENTS]
        flaky = _LosesFirstReply(collection, "insert_many")
        batcher = InsertBatcher(flaky)  # type: ignore[arg-type]
        docs = [{"_id": f"client-{i}", "tenant_id": "t"} for i in range(5)]
        # The first batch is stored, its reply lost: inserted again, its duplicate `_id`
        # taken for "stored". The requests after it are not affected.
        await batcher.insert(docs[0])
        assert flaky.calls == 2
        await asyncio.gather(*(batcher.insert(doc) for doc in docs[1:]))
        assert await batcher.drain(5)
        assert await collection.count_documents({"tenant_id": "t"}) == 5
    finally:
        await client.close()


async def test_a_settings_change_whose_reply_was_lost_counts_once(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("tenant-settings")
    tenant = await bootstrap_tenant(settings, "lost-reply.example")
    client = open_client(settings.mongodb_url)
    try:
        repository = SettingsRepository(client[settings.mongodb_database])
        before = await repository.get(tenant.tenant_id)
        flaky = _LosesFirstReply(repository._collection, "find_one_and_update")
        repository._collection = flaky  # type: ignore[assignment]
        stored, changed = await repository.update(tenant.tenant_id, {"friendly_name": "once"})
        assert changed and flaky.calls == 1  # recognised as applied: not written again
        assert stored.version == before.version + 1
        assert stored.settings["friendly_name"] == "once"
        assert (await repository.get(tenant.tenant_id)).version == before.version + 1
    finally:
        await client.close()
