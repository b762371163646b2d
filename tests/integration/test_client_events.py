"""Client events: a 201 promises the `client.registered` event, even with the broker away.

Registrations answered while RabbitMQ is unreachable keep their events in the outbox
collection; once the broker is back the relay publishes them, and each client is announced
exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from oidc_common.config import Settings
from oidc_common.events import CLIENT_REGISTERED
from oidc_common.mongo import Collections, open_client
from registration_service.events.client_events import RELAY_INTERVAL
from tests.conftest import SettingsFactory
from tests.support.load import Seen, collect_events
from tests.support.proxy import CuttableProxy
from tests.support.registration import dcr_stack
from tests.support.services import with_overrides
from tests.support.waiting import eventually

BODY = {"client_name": "Agent", "redirect_uris": ["https://agent.example/cb"]}
CLIENTS = 12


@pytest.fixture
async def broker_path(settings_for: SettingsFactory) -> AsyncIterator[CuttableProxy]:
    """A cuttable path to RabbitMQ for the registration service only."""
    proxy = CuttableProxy.for_url(settings_for("probe").rabbitmq_url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def _outbox(settings: Settings, tenant_id: str) -> set[str]:
    client = open_client(settings.mongodb_url)
    try:
        entries = client[settings.mongodb_database][Collections.CLIENT_EVENT_OUTBOX]
        return {
            str(doc["client_id"])
            async for doc in entries.find({"tenant_id": tenant_id, "type": CLIENT_REGISTERED})
        }
    finally:
        await client.close()


async def test_events_of_registrations_while_the_broker_is_down_are_delivered_once_later(
    settings_for: SettingsFactory, broker_path: CuttableProxy
) -> None:
    direct = settings_for("registration")
    through_proxy = with_overrides(direct, rabbitmq_url=broker_path.url(direct.rabbitmq_url))
    async with (
        collect_events(direct.rabbitmq_url, direct.events_exchange, CLIENT_REGISTERED) as seen,
        dcr_stack(through_proxy, settings_for("tenant-settings")) as dcr,
    ):
        await dcr.patch_settings(
            {
                "flags": {"enable_dynamic_client_registration": True},
                "dynamic_client_registration": {"rate_limit": {"requests": 1000}},
            }
        )
        await broker_path.cut()
        # Concurrent registrations: their events share batches, like under load.
        answers = await asyncio.gather(*(dcr.register(BODY) for _ in range(CLIENTS)))
        assert [status for status, _, _ in answers] == [201] * CLIENTS, answers
        client_ids = {body["client_id"] for _, body, _ in answers}
        assert len(client_ids) == CLIENTS
        # Acknowledged, so stored durably before the answer, and not published yet.
        assert await _outbox(direct, dcr.tenant_id) == client_ids
        assert not any(seen.clients[client_id] for client_id in client_ids)

        await broker_path.restore()

        async def all_delivered() -> bool:
            return all(seen.clients[client_id] for client_id in client_ids)

        assert await eventually(all_delivered, timeout=30), "events kept in the outbox never left"
        # Later relay passes publish nothing again, and the outbox is empty.
        await asyncio.sleep(3 * RELAY_INTERVAL)
        assert {c: seen.clients[c] for c in client_ids} == dict.fromkeys(client_ids, 1)
        assert await _outbox(direct, dcr.tenant_id) == set()


async def test_events_are_published_at_once_while_the_broker_is_up(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("registration")
    async with (
        collect_events(settings.rabbitmq_url, settings.events_exchange, CLIENT_REGISTERED) as seen,
        dcr_stack(settings, settings_for("tenant-settings")) as dcr,
    ):
        await dcr.set_registration(True)
        answers = await asyncio.gather(*(dcr.register(BODY) for _ in range(4)))
        client_ids = {body["client_id"] for _, body, _ in answers}

        async def delivered(events: Seen = seen) -> bool:
            return all(events.clients[client_id] == 1 for client_id in client_ids)

        # Confirmed before the 201: nothing waits in the outbox.
        assert await _outbox(settings, dcr.tenant_id) == set()
        assert await eventually(delivered, timeout=5)
