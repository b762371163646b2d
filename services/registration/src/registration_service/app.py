"""The registration service application."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from oidc_common.config import Settings
from oidc_common.mongo import Collections
from oidc_common.service import BROKER, DB, METRICS, REDIS, SETTINGS, create_service_app
from oidc_common.settings_cache import SettingsCache

from .events.settings_consumer import SettingsConsumer
from .keys import GATE, SETTINGS_CACHE, SETTINGS_CONSUMER
from .settings_gate import RegistrationGate

OWNED_COLLECTIONS = (Collections.CLIENTS, Collections.IDEMPOTENCY)


async def _gate_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cache = SettingsCache(app[REDIS], app[DB], settings.redis_prefix)
    gate = RegistrationGate(cache, app[BROKER])
    consumer = SettingsConsumer(
        app[BROKER], cache, gate, app[METRICS].registry, settings.instance_id
    )
    app[SETTINGS_CACHE] = cache
    app[GATE] = gate
    app[SETTINGS_CONSUMER] = consumer
    await app[BROKER].subscribe(consumer.subscribe)
    yield


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(settings, OWNED_COLLECTIONS)
    app.cleanup_ctx.append(_gate_context)
    return app
