"""Per-test isolation and in-process service apps over real HTTP."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import aio_pika
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from authorize_service.grants.client_deletions import client_deletions_queue
from oidc_common.config import Settings
from oidc_common.mongo import open_client
from registration_service.events.settings_consumer import shared_queue_name

from .backing import BackingServices


def random_kek() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def isolated_settings(backing: BackingServices, service: str, tag: str) -> Settings:
    """Settings whose database, Redis prefix and exchange belong to one test only."""
    return Settings(
        service_name=service,
        port=0,
        mongodb_url=backing.mongodb_url,
        mongodb_database=f"t_{tag}",
        redis_url=backing.redis_url,
        redis_prefix=f"t_{tag}:",
        rabbitmq_url=backing.rabbitmq_url,
        events_exchange=f"oidc.events.t_{tag}",
        key_encryption_key=base64.urlsafe_b64decode(random_kek()),
        access_log=False,
        # Cheap Argon2id, so suites that create users and sign them in stay fast.
        argon2_time_cost=1,
        argon2_memory_cost=8192,
        argon2_parallelism=1,
        # Service processes of a test sit behind no load balancer polling /readyz: a short
        # drain after SIGTERM (the default, 5 s, would only slow every stack's teardown).
        shutdown_drain_seconds=0.2,
    )


def new_tag() -> str:
    return uuid.uuid4().hex[:12]


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as environment variables, for services run as processes."""
    env = settings.to_env()
    for per_process in ("PORT", "BIND_HOST", "INSTANCE_ID"):  # the launcher sets these
        env.pop(per_process)
    env["LOG_LEVEL"] = "WARNING"
    return env


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """Run `app` on a real socket on 127.0.0.1 and yield an HTTP client for it."""
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def cleanup_isolated(backing: BackingServices, tag: str) -> None:
    """Drop what `isolated_settings(..., tag)` may have created in the backing services."""
    client = open_client(backing.mongodb_url)
    await client.drop_database(f"t_{tag}")
    await client.close()
    redis = Redis.from_url(backing.redis_url)
    keys = [key async for key in redis.scan_iter(match=f"t_{tag}:*", count=500)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    connection = await aio_pika.connect(backing.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        exchange = f"oidc.events.t_{tag}"
        await channel.exchange_delete(exchange)
        await channel.queue_delete(shared_queue_name(exchange))
        await channel.queue_delete(client_deletions_queue(exchange))


def with_overrides(settings: Settings, **changes: object) -> Settings:
    return replace(settings, **changes)  # type: ignore[arg-type]
