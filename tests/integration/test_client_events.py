"""Client events: a 201 promises the `client.registered` event, even with the broker away.

A registration's event is journaled in Redis by its admission, before the answer, and
published off the request path. Registrations answered while RabbitMQ is unreachable keep
their events in the journal; once the broker is back they are published, each client
exactly once. What a replica left in the journal (it stopped before publishing) is published
by the relay, a registration's only if its client was stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from oidc_common.config import Settings
from oidc_common.events import CLIENT_DELETED, CLIENT_REGISTERED
from oidc_common.mongo import Collections
from oidc_common.redis_client import redis_clock_ms
from oidc_common.service import BROKER, DB, REDIS
from registration_service.app import create_app as create_registration_app
from registration_service.events.client_events import (
    HANDOFF_SECONDS,
    RELAY_AGE,
    ClientEvent,
    ClientEvents,
    JournalEntry,
)
from registration_service.resources import CLIENT_EVENTS
from tests.conftest import SettingsFactory
from tests.support.load import OPEN_POLICY, Seen, collect_events
from tests.support.proxy import CuttableProxy
from tests.support.registration import Dcr, dcr_stack
from tests.support.services import serve, with_overrides
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


def _via(broker_path: CuttableProxy, settings: Settings, **changes: object) -> Settings:
    """`settings` with RabbitMQ reached through the cuttable `broker_path`."""
    return with_overrides(settings, rabbitmq_url=broker_path.url(settings.rabbitmq_url), **changes)


async def _journal(dcr: Dcr) -> list[JournalEntry]:
    members = await dcr.registration_app[REDIS].zrange(
        dcr.registration_app[CLIENT_EVENTS].journal_key, 0, -1
    )
    return [JournalEntry.parse(member) for member in members]


async def _journaled_clients(dcr: Dcr, event_type: str = CLIENT_REGISTERED) -> set[str]:
    return {e.event.client_id for e in await _journal(dcr) if e.event.type == event_type}


async def test_events_of_registrations_while_the_broker_is_down_are_delivered_once_later(
    settings_for: SettingsFactory, broker_path: CuttableProxy
) -> None:
    direct = settings_for("registration")
    through_proxy = _via(broker_path, direct)
    async with (
        collect_events(direct.rabbitmq_url, direct.events_exchange, CLIENT_REGISTERED) as seen,
        dcr_stack(through_proxy, settings_for("tenant-settings")) as dcr,
    ):
        await dcr.patch_settings(OPEN_POLICY)
        await broker_path.cut()
        # Concurrent registrations: their events share batches, like under load.
        answers = await asyncio.gather(*(dcr.register(BODY) for _ in range(CLIENTS)))
        assert [status for status, _, _ in answers] == [201] * CLIENTS, answers
        client_ids = {body["client_id"] for _, body, _ in answers}
        assert len(client_ids) == CLIENTS
        # Acknowledged, so journaled before the answer; not published while the broker is away.
        assert await _journaled_clients(dcr) == client_ids
        await asyncio.sleep(1.5)
        assert not any(seen.clients[client_id] for client_id in client_ids)
        assert await _journaled_clients(dcr) == client_ids

        await broker_path.restore()

        async def all_delivered() -> bool:
            return all(seen.clients[client_id] for client_id in client_ids)

        assert await eventually(all_delivered, timeout=30), "journaled events never left"
        # Each client once, and the journal lets go of them.

        async def journal_empty() -> bool:
            return not await _journal(dcr)

        assert await eventually(journal_empty, timeout=5)
        await asyncio.sleep(1)
        assert {c: seen.clients[c] for c in client_ids} == dict.fromkeys(client_ids, 1)


async def test_events_are_published_at_once_and_refused_registrations_journal_nothing(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("registration")
    async with (
        collect_events(settings.rabbitmq_url, settings.events_exchange, CLIENT_REGISTERED) as seen,
        dcr_stack(settings, settings_for("tenant-settings")) as dcr,
    ):
        await dcr.patch_settings(
            {
                "flags": {"enable_dynamic_client_registration": True},
                "dynamic_client_registration": {"rate_limit": {"requests": 4}},
            }
        )
        answers = await asyncio.gather(*(dcr.register(BODY) for _ in range(6)))
        assert sorted(status for status, _, _ in answers) == [201] * 4 + [429] * 2
        client_ids = {body["client_id"] for status, body, _ in answers if status == 201}

        async def delivered(events: Seen = seen) -> bool:
            return all(events.clients[client_id] == 1 for client_id in client_ids)

        async def journal_empty() -> bool:
            return not await _journal(dcr)

        assert await eventually(delivered, timeout=5)
        # A refused registration left no entry behind (the relay would wait 20 s for it).
        assert await eventually(journal_empty, timeout=5)
        assert set(seen.clients) == client_ids


async def test_the_relay_publishes_what_a_stopped_replica_left_in_the_journal(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("registration")
    async with (
        collect_events(settings.rabbitmq_url, settings.events_exchange, "client.*") as seen,
        dcr_stack(settings, settings_for("tenant-settings")) as dcr,
    ):
        app = dcr.registration_app
        stored, never_stored, deleted = "stored-client", "never-stored-client", "deleted-client"
        now = dt.datetime.now(dt.UTC)
        await app[DB][Collections.CLIENTS].insert_one(
            {"_id": stored, "tenant_id": dcr.tenant_id, "dynamic": True, "created_at": now}
        )
        left = [
            JournalEntry.new(ClientEvent(CLIENT_REGISTERED, dcr.tenant_id, stored), tentative=True),
            JournalEntry.new(
                ClientEvent(CLIENT_REGISTERED, dcr.tenant_id, never_stored), tentative=True
            ),
            JournalEntry.new(ClientEvent(CLIENT_DELETED, dcr.tenant_id, deleted, "self")),
        ]
        # A journal of its own (the service's relay runs too, on the service's journal).
        relay = ClientEvents(
            app[BROKER], app[DB], app[REDIS], settings.redis_prefix + "stopped-replica:"
        )
        # Journaled a minute ago by a replica that stopped before publishing them.
        now = await redis_clock_ms(app[REDIS])
        await app[REDIS].zadd(relay.journal_key, {entry.member: now - 60_000 for entry in left})
        # Younger entries are left to their own publisher.
        young = JournalEntry.new(ClientEvent(CLIENT_DELETED, dcr.tenant_id, "young", "self"))
        await app[REDIS].zadd(relay.journal_key, {young.member: now})

        assert await relay.relay() == 2

        async def delivered() -> bool:
            return seen.clients[stored] == 1 and seen.clients[deleted] == 1

        assert await eventually(delivered, timeout=5)
        assert await app[REDIS].zrange(relay.journal_key, 0, -1) == [young.member.encode()]
        assert await relay.relay() == 0  # nothing twice
        await asyncio.sleep(0.5)
        assert seen.clients[never_stored] == 0 and seen.clients["young"] == 0
        assert (seen.clients[stored], seen.clients[deleted]) == (1, 1)


async def test_a_registration_stored_after_the_handoff_age_is_journaled_afresh(
    settings_for: SettingsFactory, broker_path: CuttableProxy
) -> None:
    """An insert slower than HANDOFF_SECONDS: the relay may have dropped the tentative entry
    meanwhile (its client was not stored yet), so the stored client's event is journaled
    again; a prompt one is only handed to the publisher."""
    direct = settings_for("registration")
    through_proxy = _via(broker_path, direct)
    async with (
        collect_events(direct.rabbitmq_url, direct.events_exchange, CLIENT_REGISTERED) as seen,
        dcr_stack(through_proxy, settings_for("tenant-settings")) as dcr,
    ):
        events = dcr.registration_app[CLIENT_EVENTS]
        prompt = events.registration(dcr.tenant_id, "prompt-client")
        slow = dataclasses.replace(
            events.registration(dcr.tenant_id, "slow-client"),
            made_at=time.monotonic() - HANDOFF_SECONDS - 1,
        )
        await broker_path.cut()
        assert await events.registered(prompt)
        assert await events.registered(slow)
        journaled = await _journal(dcr)
        assert [(e.event.client_id, e.tentative) for e in journaled] == [("slow-client", False)]

        await broker_path.restore()

        async def delivered() -> bool:
            return seen.clients["prompt-client"] == 1 and seen.clients["slow-client"] == 1

        assert await eventually(delivered, timeout=30)


async def test_events_a_replica_left_when_it_stopped_with_the_broker_away_are_relayed_once(
    settings_for: SettingsFactory, broker_path: CuttableProxy
) -> None:
    """The replica that answered the 201s is gone before it could publish (its publisher's
    memory with it); the journal outlives it, and another replica's relay delivers each
    client's event once, after RELAY_AGE."""
    direct = settings_for("registration")
    first_replica = _via(broker_path, direct, shutdown_grace_seconds=1.0)
    async with collect_events(
        direct.rabbitmq_url, direct.events_exchange, CLIENT_REGISTERED
    ) as seen:
        async with dcr_stack(first_replica, settings_for("tenant-settings")) as dcr:
            await dcr.patch_settings(OPEN_POLICY)
            journal_key = dcr.registration_app[CLIENT_EVENTS].journal_key
            await broker_path.cut()
            answers = await asyncio.gather(*(dcr.register(BODY) for _ in range(6)))
            assert [status for status, _, _ in answers] == [201] * 6, answers
            client_ids = {body["client_id"] for _, body, _ in answers}
            stopped_at = time.monotonic()
        # Stopped: what it could not publish is still journaled.
        left = {
            JournalEntry.parse(m).event.client_id for m in await redis_members(direct, journal_key)
        }
        assert left == client_ids
        assert not any(seen.clients[client_id] for client_id in client_ids)

        async with serve(create_registration_app(direct)):  # another replica, broker reachable

            async def all_delivered() -> bool:
                return all(seen.clients[client_id] for client_id in client_ids)

            assert await eventually(all_delivered, timeout=RELAY_AGE + 20)
            assert time.monotonic() - stopped_at >= RELAY_AGE - 1  # the relay, not a publisher
            await asyncio.sleep(2)  # a later relay pass publishes nothing again
            assert {c: seen.clients[c] for c in client_ids} == dict.fromkeys(client_ids, 1)
            assert await redis_members(direct, journal_key) == []


async def redis_members(settings: Settings, key: str) -> list[bytes]:
    redis = Redis.from_url(settings.redis_url)
    try:
        return list(await redis.zrange(key, 0, -1))
    finally:
        await redis.aclose()
