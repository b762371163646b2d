"""The tenant-settings service application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from oidc_common.config import Settings
from oidc_common.management_auth import setup_management_auth
from oidc_common.mongo import Collections
from oidc_common.service import BROKER, DB, METRICS, REDIS, SETTINGS, SHUTDOWN, create_service_app

from .handlers import routes
from .publisher import SettingsPublisher
from .repository import SettingsRepository
from .resources import PUBLISHER, REPOSITORY

OWNED_COLLECTIONS = (Collections.TENANTS, Collections.TENANT_SETTINGS)


async def _settings_context(app: web.Application) -> AsyncIterator[None]:
    repository = SettingsRepository(app[DB], registry=app[METRICS].registry)
    publisher = SettingsPublisher(
        repository, app[BROKER], app[REDIS], app[SETTINGS].redis_prefix, app[METRICS].registry
    )
    app[REPOSITORY] = repository
    app[PUBLISHER] = publisher
    recovery = asyncio.create_task(publisher.recover_forever(), name="settings-outbox")
    yield
    recovery.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await recovery
    # Shutdown, after the in-flight PATCHes: one last pass publishes any change still
    # flagged (its PATCH found the broker down), while the broker is open. What it cannot
    # publish stays flagged in MongoDB for the next process: nothing is lost either way.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(publisher.publish_pending(), app[SHUTDOWN].remaining())


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(settings, OWNED_COLLECTIONS)
    setup_management_auth(app, lambda: app[DB])
    app.cleanup_ctx.append(_settings_context)
    app.add_routes(routes())
    return app
