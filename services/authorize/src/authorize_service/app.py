"""The authorize service application."""

from __future__ import annotations

from aiohttp import web

from oidc_common.config import Settings
from oidc_common.management_auth import setup_management_auth
from oidc_common.mongo import Collections
from oidc_common.service import DB, create_service_app

from .discovery import discovery_routes
from .jwks import jwks_routes
from .resource_servers.management_api import resource_server_routes
from .resources import authorize_resources
from .token_endpoint import token_routes
from .users.management_api import users_routes

OWNED_COLLECTIONS = (
    Collections.SIGNING_KEYS,
    Collections.RESOURCE_SERVERS,
    Collections.CLIENT_GRANTS,
    Collections.USERS,
    Collections.CONSENTS,
)


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(settings, OWNED_COLLECTIONS)
    # After the shared resources: the key store and settings cache use MongoDB and Redis.
    app.cleanup_ctx.append(authorize_resources)
    app.add_routes([*discovery_routes(), *jwks_routes(), *token_routes()])
    # The Management API routes below (users, APIs) verify bearer tokens with these keys.
    setup_management_auth(app, lambda: app[DB])
    app.add_routes([*users_routes(), *resource_server_routes()])
    return app
