"""The backing services are real: a unique index, a Redis round trip, a confirmed publish."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from pamqp.commands import Basic
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from oidc_common.mongo import open_client
from tests.support.backing import BackingServices


async def test_unique_index_rejects_a_duplicate(backing: BackingServices, tag: str) -> None:
    client = open_client(backing.mongodb_url)
    try:
        collection = client[f"t_{tag}"]["things"]
        await collection.create_index("name", unique=True)
        await collection.insert_one({"name": "only-one"})
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"name": "only-one"})
        assert await collection.count_documents({"name": "only-one"}) == 1
    finally:
        await client.drop_database(f"t_{tag}")
        await client.close()


async def test_redis_round_trip_with_ttl(backing: BackingServices, tag: str) -> None:
    redis = Redis.from_url(backing.redis_url, decode_responses=True)
    try:
        await redis.set(f"t_{tag}:greeting", "hello", ex=30)
        assert await redis.get(f"t_{tag}:greeting") == "hello"
        assert 0 < await redis.ttl(f"t_{tag}:greeting") <= 30
        assert await redis.get(f"t_{tag}:absent") is None
    finally:
        await redis.delete(f"t_{tag}:greeting")
        await redis.aclose()


async def test_confirmed_publish_is_consumed_by_another_connection(
    backing: BackingServices, tag: str
) -> None:
    exchange_name = f"oidc.events.t_{tag}"
    consumer_conn = await aio_pika.connect_robust(backing.rabbitmq_url)
    publisher_conn = await aio_pika.connect_robust(backing.rabbitmq_url)
    try:
        consumer_channel = await consumer_conn.channel()
        exchange = await consumer_channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await consumer_channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="tenant.#")

        publisher_channel = await publisher_conn.channel(publisher_confirms=True)
        publish_exchange = await publisher_channel.get_exchange(exchange_name)
        confirmation = await publish_exchange.publish(
            aio_pika.Message(b'{"hello":"world"}', delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key="tenant.settings.updated",
        )
        # With publisher confirms the broker answers Basic.Ack (not Nack) for a routed message.
        assert isinstance(confirmation, Basic.Ack)

        message = None
        for _ in range(50):
            message = await queue.get(fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.05)
        assert message is not None, "the published message never reached the consumer"
        await message.ack()
        assert message.body == b'{"hello":"world"}'
        assert message.routing_key == "tenant.settings.updated"
    finally:
        await publisher_conn.close()
        await consumer_conn.close()
