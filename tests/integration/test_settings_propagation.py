"""The settings event path: PATCH -> MongoDB -> RabbitMQ -> Redis + every replica's cache."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from oidc_common.broker import Broker
from oidc_common.config import Settings
from oidc_common.events import TENANT_SETTINGS_UPDATED, Event
from oidc_common.mongo import Collections, open_client
from oidc_common.settings_cache import SettingsSnapshot
from registration_service.app import create_app as create_registration_app
from registration_service.resources import GATE, SETTINGS_CACHE
from registration_service.settings_gate import GateState, RegistrationGate
from tenant_settings_service.app import create_app as create_settings_app
from tests.conftest import SettingsFactory
from tests.support.proxy import CuttableProxy
from tests.support.services import serve, with_overrides
from tests.support.tenants import bootstrap_tenant
from tests.support.tokens import management_token
from tests.support.waiting import eventually

HOST = "acme.example"
URL = "/api/v2/tenants/settings"


@dataclass
class SettingsApi:
    client: TestClient[Any, Any]
    headers: dict[str, str]

    async def set_flag(self, enabled: bool) -> int:
        response = await self.client.patch(
            URL,
            json={"flags": {"enable_dynamic_client_registration": enabled}},
            headers=self.headers,
        )
        assert response.status == 200, await response.text()
        version: int = (await response.json())["version"]
        return version


@contextlib.asynccontextmanager
async def settings_api(settings: Settings, tenant_id: str) -> AsyncIterator[SettingsApi]:
    token = await management_token(settings, tenant_id, f"http://{HOST}/")
    async with serve(create_settings_app(settings)) as client:
        yield SettingsApi(client, {"Host": HOST, "Authorization": f"Bearer {token}"})


@contextlib.asynccontextmanager
async def replica(settings: Settings, name: str) -> AsyncIterator[web.Application]:
    app = create_registration_app(with_overrides(settings, instance_id=name))
    async with serve(app):
        assert await eventually(lambda: _consuming(app[GATE]), timeout=15)
        yield app


@contextlib.asynccontextmanager
async def broker_proxy(settings: Settings) -> AsyncIterator[tuple[CuttableProxy, str]]:
    """A cuttable path to RabbitMQ, and the AMQP URL that goes through it."""
    proxy = CuttableProxy.for_url(settings.rabbitmq_url)
    await proxy.start()
    try:
        yield proxy, proxy.url(settings.rabbitmq_url)
    finally:
        await proxy.close()


async def _consuming(gate: RegistrationGate) -> bool:
    return gate.consuming


async def _state_is(gate: RegistrationGate, tenant_id: str, state: GateState) -> bool:
    return (await gate.decide(tenant_id)).state is state


async def test_one_patch_updates_every_replica_and_redis(settings_for: SettingsFactory) -> None:
    settings = settings_for("registration")
    tenant = await bootstrap_tenant(settings, HOST)
    async with (
        settings_api(settings_for("tenant-settings"), tenant.tenant_id) as api,
        replica(settings, "r1") as first,
        replica(settings, "r2") as second,
    ):
        for app in (first, second):  # warm both in-process caches with "disabled"
            assert (await app[GATE].decide(tenant.tenant_id)).state is GateState.DISABLED
        seen: dict[str, int] = {}
        first[GATE].on_change(lambda s: seen.__setitem__("r1", s.version))
        second[GATE].on_change(lambda s: seen.__setitem__("r2", s.version))

        version = await api.set_flag(True)

        async def both_applied() -> bool:
            return seen.get("r1") == version and seen.get("r2") == version

        assert await eventually(both_applied), seen
        for app in (first, second):
            decision = await app[GATE].decide(tenant.tenant_id)
            assert decision.state is GateState.ENABLED
            assert decision.snapshot is not None and decision.snapshot.version == version
        cached = await first[SETTINGS_CACHE].from_redis(tenant.tenant_id)
        assert cached is not None and cached.version == version

        version = await api.set_flag(False)
        assert await eventually(both_applied), seen
        for app in (first, second):
            assert (await app[GATE].decide(tenant.tenant_id)).state is GateState.DISABLED


async def test_lag_metric_is_exposed(settings_for: SettingsFactory) -> None:
    settings = settings_for("registration")
    tenant = await bootstrap_tenant(settings, HOST)
    app = create_registration_app(settings)
    async with (
        serve(app) as client,
        settings_api(settings_for("tenant-settings"), tenant.tenant_id) as api,
    ):
        assert await eventually(lambda: _consuming(app[GATE]), timeout=15)
        await api.set_flag(True)
        assert await eventually(lambda: _state_is(app[GATE], tenant.tenant_id, GateState.ENABLED))
        text = await (await client.get("/metrics")).text()
        count_line = next(
            line
            for line in text.splitlines()
            if line.startswith("tenant_settings_event_lag_seconds_count")
        )
        assert float(count_line.split()[-1]) >= 1


async def test_duplicated_and_out_of_order_events_never_move_backwards(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("registration")
    tenant = await bootstrap_tenant(settings, HOST)
    publisher = Broker(settings.rabbitmq_url, settings.events_exchange)
    publisher.start()
    assert await publisher.wait_connected(15)
    try:
        async with replica(settings, "r1") as app:
            gate = app[GATE]
            applied: list[int] = []
            gate.on_change(lambda s: applied.append(s.version))
            for version, enabled in [
                (5, True),
                (3, False),
                (5, True),
                (4, False),
                (7, False),
                (6, True),
                (7, False),
                (2, True),
            ]:
                await publisher.publish(
                    Event(
                        TENANT_SETTINGS_UPDATED,
                        tenant.tenant_id,
                        version=version,
                        data={
                            "settings": {"flags": {"enable_dynamic_client_registration": enabled}}
                        },
                    )
                )
            # A malformed message in between must not stop the consumer.
            await publisher.publish(
                Event(
                    "tenant.settings.updated",
                    tenant.tenant_id,
                    data={"settings": "not-an-object"},
                    version=99,
                )
            )
            await publisher.publish(
                Event(
                    TENANT_SETTINGS_UPDATED,
                    tenant.tenant_id,
                    version=8,
                    data={"settings": {"flags": {"enable_dynamic_client_registration": True}}},
                )
            )

            async def reached_8() -> bool:
                return 8 in applied

            assert await eventually(reached_8)
            assert applied == sorted(applied), applied  # never backwards
            assert applied == [5, 7, 8]
            decision = await gate.decide(tenant.tenant_id)
            assert decision.snapshot is not None and decision.snapshot.version == 8
            assert decision.state is GateState.ENABLED
            cached = await app[SETTINGS_CACHE].from_redis(tenant.tenant_id)
            assert cached is not None and cached.version == 8
    finally:
        await publisher.close()


async def test_patch_while_broker_is_down_is_published_when_it_returns(
    settings_for: SettingsFactory,
) -> None:
    registration_settings = settings_for("registration")
    tenant = await bootstrap_tenant(registration_settings, HOST)
    async with broker_proxy(registration_settings) as (proxy, through_proxy):
        publisher_settings = with_overrides(
            settings_for("tenant-settings"), rabbitmq_url=through_proxy
        )
        async with (
            replica(registration_settings, "r1") as app,
            settings_api(publisher_settings, tenant.tenant_id) as api,
        ):
            gate = app[GATE]
            assert await eventually(lambda: _state_is(gate, tenant.tenant_id, GateState.DISABLED))
            # A listener of our own, straight on the broker: the event must really be sent.
            listener = await aio_pika.connect(registration_settings.rabbitmq_url)
            channel = await listener.channel()
            exchange = await channel.declare_exchange(
                registration_settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            events = await channel.declare_queue(exclusive=True)
            await events.bind(exchange, TENANT_SETTINGS_UPDATED)
            mongo = open_client(registration_settings.mongodb_url)
            settings_docs = mongo[registration_settings.mongodb_database][
                Collections.TENANT_SETTINGS
            ]
            try:
                await proxy.cut()  # the broker is gone for the tenant-settings service
                version = await api.set_flag(True)  # still acknowledged
                assert version == 2
                doc = await settings_docs.find_one({"_id": tenant.tenant_id})
                assert doc is not None and doc["pending_publish"] is True and doc["version"] == 2

                await proxy.restore()
                published: list[int] = []

                async def event_delivered() -> bool:
                    message = await events.get(fail=False)
                    if message is not None:
                        await message.ack()
                        event = Event.from_json(message.body)
                        if event.tenant_id == tenant.tenant_id:
                            published.append(event.version)
                    return 2 in published

                assert await eventually(event_delivered, timeout=30), (
                    "the change stored while the broker was down was never published"
                )

                async def outbox_drained() -> bool:
                    doc = await settings_docs.find_one({"_id": tenant.tenant_id})
                    return doc is not None and not doc.get("pending_publish")

                assert await eventually(outbox_drained)
            finally:
                await mongo.close()
                await listener.close()
            assert await eventually(
                lambda: _state_is(gate, tenant.tenant_id, GateState.ENABLED), timeout=30
            ), "the change stored while the broker was down never reached the cache"
            cached = await app[SETTINGS_CACHE].from_redis(tenant.tenant_id)
            assert cached is not None and cached.version == 2


async def test_redis_flushed_gate_answers_from_mongodb_and_refills(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("registration")
    tenant = await bootstrap_tenant(settings, HOST)
    async with (
        settings_api(settings_for("tenant-settings"), tenant.tenant_id) as api,
        replica(settings, "r1") as app,
    ):
        version = await api.set_flag(True)
        cache = app[SETTINGS_CACHE]

        async def in_redis() -> bool:
            cached = await cache.from_redis(tenant.tenant_id)
            return cached is not None and cached.version == version

        assert await eventually(in_redis)
        redis = Redis.from_url(settings.redis_url)
        await redis.delete(cache.key(tenant.tenant_id))
        await redis.aclose()
        app[GATE].forget_all()  # as a freshly started replica
        assert await cache.from_redis(tenant.tenant_id) is None
        decision = await app[GATE].decide(tenant.tenant_id)
        assert decision.state is GateState.ENABLED
        assert await in_redis(), "the cold path did not refill Redis"


async def test_every_source_unreachable_means_unknown(settings_for: SettingsFactory) -> None:
    settings = settings_for("registration")
    tenant = await bootstrap_tenant(settings, HOST)
    redis_proxy = CuttableProxy.for_url(settings.redis_url)
    mongo_proxy = CuttableProxy.for_url(settings.mongodb_url)
    await redis_proxy.start()
    await mongo_proxy.start()
    proxied = with_overrides(
        settings,
        redis_url=redis_proxy.url(settings.redis_url),
        mongodb_url=mongo_proxy.url(settings.mongodb_url) + "?directConnection=true",
    )
    try:
        app = create_registration_app(with_overrides(proxied, instance_id="r1"))
        async with serve(app) as client:
            assert await eventually(lambda: _consuming(app[GATE]), timeout=15)
            gate = app[GATE]
            assert (await gate.decide(tenant.tenant_id)).state is GateState.DISABLED
            await redis_proxy.cut()
            await mongo_proxy.cut()
            gate.forget_all()
            decision = await gate.decide(tenant.tenant_id)
            assert decision.state is GateState.UNKNOWN
            assert decision.snapshot is None
            # Over HTTP: registration fails closed with 503 and Retry-After, never a 500.
            # (The tenant itself is still known from the in-process tenant directory.)
            response = await client.post(
                "/oidc/register",
                json={"redirect_uris": ["https://app.example/cb"]},
                headers={"Host": HOST},
            )
            assert response.status == 503
            assert response.headers["Retry-After"].isdigit()
            assert (await response.json())["error"] == "temporarily_unavailable"
            # Redis alone down: MongoDB still answers.
            await mongo_proxy.restore()
            assert await eventually(
                lambda: _state_is(gate, tenant.tenant_id, GateState.DISABLED), timeout=15
            )
    finally:
        await redis_proxy.close()
        await mongo_proxy.close()


async def test_turning_registration_off_wins_even_while_the_broker_is_down(
    settings_for: SettingsFactory,
) -> None:
    """No event can flow, yet the replica stops registering: it reads the database."""
    registration_settings = settings_for("registration")
    tenant = await bootstrap_tenant(registration_settings, HOST)
    async with (
        broker_proxy(registration_settings) as (proxy, through_proxy),
        replica(with_overrides(registration_settings, rabbitmq_url=through_proxy), "r1") as app,
        settings_api(
            with_overrides(settings_for("tenant-settings"), rabbitmq_url=through_proxy),
            tenant.tenant_id,
        ) as api,
    ):
        gate = app[GATE]
        await api.set_flag(True)
        assert await eventually(lambda: _state_is(gate, tenant.tenant_id, GateState.ENABLED))
        await proxy.cut()  # every broker connection is gone
        await api.set_flag(False)
        assert await eventually(
            lambda: _state_is(gate, tenant.tenant_id, GateState.DISABLED), timeout=5
        ), "registration stayed open while the broker was down"


async def test_the_gate_never_decides_from_an_older_version(settings_for: SettingsFactory) -> None:
    settings = settings_for("registration")
    tenant = await bootstrap_tenant(settings, HOST)
    async with replica(settings, "r1") as app:
        gate = app[GATE]
        flags_on = {"flags": {"enable_dynamic_client_registration": True}}
        flags_off = {"flags": {"enable_dynamic_client_registration": False}}
        gate.remember(SettingsSnapshot(tenant.tenant_id, 6, flags_off))
        # Redis holds an older version (e.g. restored from an old snapshot).
        redis = Redis.from_url(settings.redis_url)
        await redis.delete(app[SETTINGS_CACHE].key(tenant.tenant_id))
        await redis.aclose()
        await app[SETTINGS_CACHE].apply(SettingsSnapshot(tenant.tenant_id, 5, flags_on))
        gate._max_age = 0.0  # force the next decision past the in-process entry
        gate._untrusted_ttl = 0.0
        decision = await gate.decide(tenant.tenant_id)
        assert decision.snapshot is not None and decision.snapshot.version == 6
        assert decision.state is GateState.DISABLED
