"""The registration service application."""

from __future__ import annotations

from aiohttp import web

from oidc_common.config import Settings
from oidc_common.mongo import Collections
from oidc_common.service import create_service_app

OWNED_COLLECTIONS = (Collections.CLIENTS, Collections.IDEMPOTENCY)


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(settings, OWNED_COLLECTIONS)
    return app
