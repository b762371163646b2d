"""The registration service application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from oidc_common.config import Settings
from oidc_common.management_auth import setup_management_auth
from oidc_common.mongo import Collections
from oidc_common.service import BROKER, DB, METRICS, REDIS, SETTINGS, SHUTDOWN, create_service_app
from oidc_common.settings_cache import SettingsCache

from .abuse.admission import Admitter
from .abuse.client_cap import ClientCap
from .abuse.reaper import Reaper
from .clients.repository import ClientRepository
from .cors import cors_middleware
from .events.client_events import ClientEvents
from .events.settings_consumer import SettingsConsumer
from .idempotency import IdempotencyStore
from .management import clients_api
from .openapi import openapi_route
from .resources import (
    ADMITTER,
    CLIENT_CAP,
    CLIENT_EVENTS,
    CLIENTS,
    GATE,
    IDEMPOTENCY,
    REAPER,
    SETTINGS_CACHE,
    SETTINGS_CONSUMER,
)
from .rfc7591.endpoint import register
from .rfc7592.endpoint import delete_client, read_client, update_client
from .settings_gate import RegistrationGate

OWNED_COLLECTIONS = (Collections.CLIENTS,)

log = logging.getLogger(__name__)


async def _registration_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cache = SettingsCache(app[REDIS], app[DB], settings.redis_prefix)
    gate = RegistrationGate(cache, app[BROKER])
    consumer = SettingsConsumer(
        app[BROKER], cache, gate, app[METRICS].registry, settings.instance_id
    )
    clients = ClientRepository(app[DB])
    events = ClientEvents(
        app[BROKER], app[DB], app[REDIS], settings.redis_prefix, app[METRICS].registry
    )
    app[SETTINGS_CACHE] = cache
    app[GATE] = gate
    app[SETTINGS_CONSUMER] = consumer
    app[CLIENTS] = clients
    app[CLIENT_EVENTS] = events
    app[IDEMPOTENCY] = IdempotencyStore(app[REDIS], settings.redis_prefix)
    cap = ClientCap(app[REDIS], settings.redis_prefix)
    app[CLIENT_CAP] = cap
    app[ADMITTER] = Admitter(app[REDIS], settings.redis_prefix, cap, events.journal_key)
    app[REAPER] = Reaper(
        clients, cache, events, cap, app[REDIS], settings.redis_prefix, app[METRICS].registry
    )
    await app[BROKER].subscribe(consumer.subscribe)
    background = [
        asyncio.create_task(app[REAPER].run_forever(settings.reap_interval_seconds)),
        asyncio.create_task(events.relay_forever()),
    ]
    publisher = asyncio.create_task(events.publish_forever())
    yield
    # Shutdown, after the in-flight requests: what they queued is written, then published,
    # while the database and the broker are still open (their cleanup runs after this one).
    # What is not published by the deadline stays journaled for another replica's relay.
    for task in background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    shutdown = app[SHUTDOWN]
    if not await clients.drain(shutdown.remaining()):
        log.warning("client inserts still queued at shutdown")
    if not await events.drain(shutdown.remaining()):
        log.warning("client events left in the journal at shutdown")
    publisher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await publisher


def routes() -> list[web.RouteDef]:
    return [
        web.post("/oidc/register", register),
        web.get("/oidc/register/{client_id}", read_client, allow_head=False),
        web.put("/oidc/register/{client_id}", update_client),
        web.delete("/oidc/register/{client_id}", delete_client),
        *clients_api.routes(),
        openapi_route(),
    ]


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(settings, OWNED_COLLECTIONS, outer_middlewares=[cors_middleware()])
    setup_management_auth(app, lambda: app[DB])
    app.cleanup_ctx.append(_registration_context)
    app.add_routes(routes())
    return app
