"""The authorize service application."""

from __future__ import annotations

from aiohttp import web

from oidc_common.config import Settings
from oidc_common.cors import cors_middleware
from oidc_common.management_auth import setup_management_auth
from oidc_common.mongo import Collections
from oidc_common.service import DB, create_service_app

from .authorization.endpoint import authorization_routes
from .discovery import discovery_routes
from .grants.client_deletions import client_deletions_context
from .grants.management_api import grants_routes
from .interaction.demo_callback import demo_callback_routes
from .interaction.handlers import interaction_routes
from .jwks import jwks_routes
from .logout.deliveries import deliveries_context
from .logout.endpoint import logout_routes
from .resource_servers.management_api import resource_server_routes
from .resources import authorize_resources
from .tokens.endpoint import token_routes
from .tokens.introspection import introspection_routes
from .tokens.revocation import revocation_routes
from .userinfo import userinfo_routes
from .users.management_api import users_routes

OWNED_COLLECTIONS = (
    Collections.SIGNING_KEYS,
    Collections.RESOURCE_SERVERS,
    Collections.CLIENT_GRANTS,
    Collections.USERS,
    Collections.GRANTS,
    Collections.REFRESH_TOKENS,
    Collections.LOGOUT_DELIVERIES,
)


# Called from browsers of other origins with tokens or client credentials, never cookies.
CORS_PATHS = ("/oauth/token", "/oauth/revoke", "/userinfo")


def _cross_origin(path: str) -> bool:
    return path in CORS_PATHS or path.startswith("/.well-known/")


def create_app(settings: Settings) -> web.Application:
    cors = cors_middleware(
        _cross_origin,
        allow_methods="GET, POST, OPTIONS",
        allow_headers="Authorization, Content-Type, X-Request-ID",
        expose_headers="WWW-Authenticate, X-Request-ID",
    )
    app = create_service_app(settings, OWNED_COLLECTIONS, outer_middlewares=[cors])
    # After the shared resources: the key store and settings cache use MongoDB and Redis.
    app.cleanup_ctx.append(authorize_resources)
    # After the resources: the back-channel logout deliverer signs with the key store.
    app.cleanup_ctx.append(deliveries_context)
    # client.deleted: the grants users gave a deleted client, and its refresh tokens, go.
    app.cleanup_ctx.append(client_deletions_context)
    app.add_routes([*discovery_routes(), *jwks_routes(), *token_routes(), *userinfo_routes()])
    app.add_routes([*revocation_routes(), *introspection_routes()])
    app.add_routes([*authorization_routes(), *interaction_routes(), *demo_callback_routes()])
    app.add_routes(logout_routes())
    # The Management API routes below (users, APIs) verify bearer tokens with these keys.
    setup_management_auth(app, lambda: app[DB])
    app.add_routes([*users_routes(), *resource_server_routes(), *grants_routes()])
    return app
